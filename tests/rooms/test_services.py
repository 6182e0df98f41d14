"""Room lifecycle services against the real Synapse: the chat server matches each action,
and each action leaves one audit entry with its outcome (the rules alone, on the fast
layer's in-memory chat server, are in test_rules.py)."""

from __future__ import annotations

import uuid

import pytest

from portal.models import AuditEntry, Outcome
from rooms import index
from rooms.backend.errors import ChatBackendError, ChatNotFound, RoomCreationIncomplete
from rooms.backend.matrix.base import TRIES
from rooms.backend.records import Invitations, Privacy, Role, RoomSettings
from rooms.models import RoomSubmission
from rooms.services import rooms as room_services
from tests.conftest import unique
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db


def last_audit(action: str) -> AuditEntry:
    return AuditEntry.objects.filter(action=action).order_by("-id").first()


def new_settings(category_id: str, **changes) -> RoomSettings:
    values = {"name": unique("Room "), "description": "", "category_id": category_id} | changes
    return RoomSettings(**values)


@pytest.mark.parametrize("privacy", list(Privacy))
def test_creator_creates_a_room_and_becomes_its_manager(chat, creator, category_world, privacy):
    settings = new_settings(category_world["category"].id, privacy=privacy, auditorium=True)
    room = room_services.room_create(actor=creator, settings=settings, submission=uuid.uuid4())
    on_server = chat.get_room(room.id)
    assert on_server.settings == settings
    assert on_server.managers == {creator.chat_id}
    # A Member of a Closed or Secret room; Open rooms have no member list.
    assert (creator.chat_id in on_server.members) is (privacy is not Privacy.OPEN)
    entry = last_audit("room.create")
    assert (entry.outcome, entry.target_id, entry.actor) == (Outcome.SUCCEEDED, room.id, creator)
    assert entry.after["name"] == settings.name
    assert entry.category_label == category_world["category"].name


def test_administrator_creates_anywhere(chat, category_world):
    admin = AdministratorFactory()
    settings = new_settings(category_world["category"].id)
    room = room_services.room_create(actor=admin, settings=settings, submission=uuid.uuid4())
    assert chat.get_room(room.id).managers == set()  # a local admin has no chat ID


def test_invitations_are_off_where_the_category_does_not_allow_them(chat, creator, category_world):
    category = category_world["category"]
    chat._put_state(category.id, "org.roomportal.category", {"invitations_allowed": False})
    chat.reindex(category.id)
    room = room_services.room_create(
        actor=creator, settings=new_settings(category.id), submission=uuid.uuid4()
    )
    assert room.settings.invitations is Invitations.OFF


def test_posting_the_same_form_twice_makes_one_room(chat, creator, category_world):
    settings, token = new_settings(category_world["category"].id), uuid.uuid4()
    first = room_services.room_create(actor=creator, settings=settings, submission=token)
    second = room_services.room_create(actor=creator, settings=settings, submission=token)
    assert first.id == second.id
    assert chat.get_category(category_world["category"].id).room_ids == (first.id,)


def test_html_in_names_reaches_the_chat_server_as_plain_text(chat, make_room):
    room = make_room(name=unique("<b>Bold</b> <script>x</script> "), description="<i>hi</i>")
    state = chat._state(room.id)
    assert state.content("m.room.name")["name"] == room.name
    assert state.content("m.room.topic")["topic"] == "<i>hi</i>"


def test_a_half_made_room_is_rolled_back_and_the_failure_audited(
    chat, failing_chat, creator, category_world, monkeypatch
):
    failing = failing_chat("m.space.child", times=TRIES)
    monkeypatch.setattr(room_services, "chat_backend", lambda: failing)
    settings = new_settings(category_world["category"].id)
    with pytest.raises(RoomCreationIncomplete) as raised:
        room_services.room_create(actor=creator, settings=settings, submission=uuid.uuid4())
    assert raised.value.rolled_back
    with pytest.raises(ChatNotFound):
        chat.get_room(raised.value.room_id)
    assert not chat.room_name_taken(settings.name)
    entry = last_audit("room.create")
    assert entry.outcome == Outcome.FAILED
    assert not RoomSubmission.objects.exists()


def test_update_changes_the_chat_server_and_records_before_and_after(chat, creator, make_room):
    room = make_room(auditorium=True)
    chat.add_to_role(room.id, Role.MEMBER, [creator.chat_id])
    chat.add_to_role(room.id, Role.PRESENTER, [creator.chat_id])
    updated = room_services.room_update(
        actor=creator,
        room_id=room.id,
        name=room.name + " renamed",
        description="New description",
        auditorium=False,
        invitations=Invitations.OFF,
        version=room_services.room_version(chat.get_room(room.id)),
    )
    on_server = chat.get_room(room.id)
    assert on_server == updated
    assert (on_server.name, on_server.settings.description) == (
        room.name + " renamed",
        "New description",
    )
    assert not on_server.settings.auditorium
    assert on_server.presenters == set()  # Presenters exist only in auditoriums
    entry = last_audit("room.update")
    assert entry.before["name"] == room.name
    assert entry.after["name"] == room.name + " renamed"


def test_a_rename_the_chat_server_refuses_leaves_the_new_name_free(
    chat, creator, make_room, injected
):
    room = make_room()
    wanted = room.name + " renamed"
    injected.arm(1, "500", outage=True)
    with pytest.raises(ChatBackendError):
        room_services.room_update(
            actor=creator,
            room_id=room.id,
            name=wanted,
            description="",
            auditorium=False,
            invitations=Invitations.INHERIT,
            version=room_services.room_version(room),
        )
    injected.arm(0, "")
    assert not index.name_taken(wanted)
    assert chat.get_room(room.id).name == room.name


def test_privacy_toggle_changes_what_real_users_can_do(chat, creator, make_room, category_world):
    room = make_room(privacy=Privacy.SECRET)
    person = category_world["member"]
    space = category_world["category"].id
    assert room.id not in person.visible_rooms(space)
    room_services.room_set_privacy(actor=creator, room_id=room.id, privacy=Privacy.CLOSED)
    assert room.id in person.visible_rooms(space)
    assert person.join(room.id).status_code == 403
    room_services.room_set_privacy(actor=creator, room_id=room.id, privacy=Privacy.OPEN)
    assert person.join(room.id).status_code == 200
    room_services.room_set_privacy(actor=creator, room_id=room.id, privacy=Privacy.SECRET)
    # The member list is kept across the switches: the person who joined stays a member.
    assert person.user_id in chat.get_room(room.id).members
    assert last_audit("room.privacy").after["privacy"] == "secret"


def test_disable_and_enable_are_audited(chat, creator, make_room):
    room = make_room()
    room_services.room_set_disabled(actor=creator, room_id=room.id, disabled=True)
    assert chat.get_room(room.id).disabled
    room_services.room_set_disabled(actor=creator, room_id=room.id, disabled=False)
    assert not chat.get_room(room.id).disabled
    assert last_audit("room.disable").outcome == Outcome.SUCCEEDED
    assert last_audit("room.enable").outcome == Outcome.SUCCEEDED


def test_move_removes_people_outside_the_new_scope(chat, creator, make_room, category_world):
    room = make_room()
    stays, leaves = category_world["creator"].user_id, category_world["member"].user_id
    chat.add_to_role(room.id, Role.MEMBER, [leaves])
    target = chat.create_category(name=unique("Target "), description="", creators=[stays])
    chat.add_to_category_scope(target.id, [stays])
    room = chat.get_room(room.id)
    target = chat.get_category(target.id)
    assert room_services.people_leaving_scope(room, target) == [(leaves, [Role.MEMBER])]
    moved = room_services.room_move(
        actor=creator,
        room_id=room.id,
        category_id=target.id,
        version=room_services.room_version(room),
    )
    assert moved.settings.category_id == target.id
    assert leaves not in moved.members
    assert stays in moved.members
    assert room.id in chat.get_category(target.id).room_ids
