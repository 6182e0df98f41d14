"""Every chat backend client operation against a real Synapse."""

from __future__ import annotations

import pytest

from rooms.backend.errors import ChatNotFound, ChatServerDenied
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.backend.records import Invitations, Privacy, Role, RoomSettings
from tests.conftest import PASSWORD, unique

# The tests' chat client indexes what it arranges, in the test database.
pytestmark = pytest.mark.django_db


def settings_for(category_id: str, **changes) -> RoomSettings:
    values = {
        "name": unique("Room "),
        "description": "A test room",
        "category_id": category_id,
        "privacy": Privacy.CLOSED,
    } | changes
    return RoomSettings(**values)


def test_service_account_is_a_server_admin(chat: MatrixChatBackend):
    assert chat.whoami() == "@roomportal:portal.test"
    assert chat.is_server_admin()


def test_login_checks_the_password_and_keeps_no_session(chat, make_chat_user):
    person = make_chat_user("login", display_name="Login Person")
    principal = chat.login(person.user_id, PASSWORD)
    assert principal.id == person.user_id
    assert principal.display_name == "Login Person"
    with pytest.raises(ChatServerDenied):
        chat.login(person.user_id, "wrong password")


def test_get_user_and_unknown_users(chat, make_chat_user):
    person = make_chat_user("lookup", display_name="Look Up")
    assert chat.get_user(person.user_id).display_name == "Look Up"
    with pytest.raises(ChatNotFound):
        chat.get_user("@nobody-here:portal.test")
    with pytest.raises(ChatNotFound):
        chat.get_user("@someone:other.example")


def test_search_users_by_name_or_id(chat, make_chat_user):
    person = make_chat_user("searchable", display_name="Searchable Sam")
    found = chat.search_users(person.user_id[1:9])
    assert person.user_id in {p.id for p in found}
    assert chat.service_user not in {p.id for p in chat.search_users("roomportal")}


def test_create_and_get_category(chat, make_chat_user):
    creator, member = make_chat_user("creator"), make_chat_user("member")
    name = unique("Category ")
    category = chat.create_category(
        name=name, description="All about it", invitations_allowed=False, creators=[creator.user_id]
    )
    chat.add_to_category_scope(category.id, [creator.user_id, member.user_id])
    category = chat.get_category(category.id)
    assert (category.name, category.description) == (name, "All about it")
    assert category.invitations_allowed is False
    assert category.creators == {creator.user_id}
    assert category.allowed_members == {creator.user_id, member.user_id}
    assert category.is_creator(creator.user_id)
    assert not category.is_creator(member.user_id)
    assert category.id in {c.id for c in chat.list_categories()}


def test_find_categories_with_create_rights(chat, category_world):
    world = category_world
    mine = chat.find_categories_with_create_rights(world["creator"].user_id)
    assert [c.id for c in mine] == [world["category"].id]
    assert world["category"].id not in {
        c.id for c in chat.find_categories_with_create_rights(world["member"].user_id)
    }


def test_a_room_is_not_a_category(chat, category_world):
    room = chat.create_room(settings_for(category_world["category"].id))
    with pytest.raises(ChatNotFound):
        chat.get_category(room.id)
    with pytest.raises(ChatNotFound):
        chat.get_room(category_world["category"].id)


@pytest.mark.parametrize("privacy", list(Privacy))
def test_create_room_with_settings(chat, category_world, privacy):
    world = category_world
    creator = world["creator"].user_id
    settings = settings_for(world["category"].id, privacy=privacy, auditorium=True)
    room = chat.create_room(settings, managers=[creator], members=[creator])
    assert room.settings == settings
    assert room.managers == {creator}
    assert room.members == {creator}
    assert room.id in chat.get_category(world["category"].id).room_ids
    assert chat.get_room(room.id) == room


def test_room_names_are_unique_in_any_letter_case(chat, category_world):
    room = chat.create_room(settings_for(category_world["category"].id))
    assert chat.room_name_taken(room.name.upper())
    assert not chat.room_name_taken(room.name.upper(), exclude_room_id=room.id)
    assert not chat.room_name_taken(room.name + " and more")


def test_update_room_settings(chat, category_world):
    world = category_world
    room = chat.create_room(settings_for(world["category"].id))
    changed = settings_for(
        world["category"].id,
        name=unique("Renamed "),
        description="New words",
        privacy=Privacy.SECRET,
        auditorium=True,
        invitations=Invitations.OFF,
    )
    assert chat.update_room(room.id, changed).settings == changed


def test_move_room_to_another_category(chat, category_world):
    world = category_world
    room = chat.create_room(settings_for(world["category"].id, privacy=Privacy.OPEN))
    target = chat.create_category(name=unique("Target "), description="")
    moved = chat.update_room(room.id, settings_for(target.id, name=room.name, privacy=Privacy.OPEN))
    assert moved.settings.category_id == target.id
    assert room.id in chat.get_category(target.id).room_ids
    assert room.id not in chat.get_category(world["category"].id).room_ids


def test_disable_and_enable_keep_settings_and_roles(chat, category_world):
    world = category_world
    creator = world["creator"].user_id
    room = chat.create_room(
        settings_for(world["category"].id, auditorium=True), managers=[creator], members=[creator]
    )
    disabled = chat.set_room_disabled(room.id, True)
    assert disabled.disabled
    assert disabled.settings == room.settings
    assert (disabled.managers, disabled.members) == (room.managers, room.members)
    enabled = chat.set_room_disabled(room.id, False)
    assert not enabled.disabled
    assert enabled.settings == room.settings


def test_add_and_remove_roles(chat, category_world):
    world = category_world
    member = world["member"].user_id
    room = chat.create_room(settings_for(world["category"].id, auditorium=True))
    for role in (Role.MEMBER, Role.PRESENTER, Role.MANAGER):
        chat.add_to_role(room.id, role, [member])
        assert member in chat.get_room(room.id).principals(role)
    for role in (Role.MANAGER, Role.MEMBER):
        chat.remove_from_role(room.id, role, [member])
        assert member not in chat.get_room(room.id).principals(role)
    chat.add_to_role(room.id, Role.PRESENTER, [member])
    chat.remove_from_role(room.id, Role.PRESENTER, [member])
    assert member not in chat.get_room(room.id).presenters


def test_a_manager_is_not_a_member_by_that_alone(chat, category_world):
    world = category_world
    room = chat.create_room(settings_for(world["category"].id))
    chat.add_to_role(room.id, Role.MANAGER, [world["member"].user_id])
    room = chat.get_room(room.id)
    assert world["member"].user_id in room.managers
    assert world["member"].user_id not in room.members


def test_invitations_decide_how_members_are_added(chat, category_world, make_chat_user):
    world = category_world
    invited = chat.create_room(settings_for(world["category"].id))
    chat.add_to_role(invited.id, Role.MEMBER, [world["member"].user_id])
    direct = chat.create_room(settings_for(world["category"].id, invitations=Invitations.OFF))
    chat.add_to_role(direct.id, Role.MEMBER, [world["member"].user_id])
    invite_state = chat._state(invited.id).memberships("invite")
    join_state = chat._state(direct.id).memberships("join")
    assert world["member"].user_id in invite_state
    assert world["member"].user_id in join_state


def test_making_a_manager_a_presenter_does_not_demote_them(chat, category_world):
    world = category_world
    manager = world["member"].user_id
    room = chat.create_room(settings_for(world["category"].id, auditorium=True))
    chat.add_to_role(room.id, Role.MANAGER, [manager])
    chat.add_to_role(room.id, Role.PRESENTER, [manager])
    assert manager in chat.get_room(room.id).managers


def test_get_rooms_reads_several_and_skips_deleted_ones(chat, category_world):
    kept = chat.create_room(settings_for(category_world["category"].id))
    gone = chat.create_room(settings_for(category_world["category"].id))
    chat.delete_room(gone.id)
    assert [room.id for room in chat.get_rooms([kept.id, gone.id])] == [kept.id]
    assert gone.id not in chat.get_category(category_world["category"].id).room_ids
