"""What real chat users, with their own Matrix logins, can do in rooms of each privacy."""

from __future__ import annotations

import pytest

from rooms.backend.records import Privacy, Role, RoomSettings
from tests.conftest import unique

# The tests' chat client indexes what it arranges, in the test database.
pytestmark = pytest.mark.django_db


@pytest.fixture
def make_room(chat, category_world):
    def make(privacy: Privacy, *, auditorium: bool = False) -> str:
        creator = category_world["creator"].user_id
        room = chat.create_room(
            RoomSettings(
                name=unique(f"{privacy} room "),
                description="",
                category_id=category_world["category"].id,
                privacy=privacy,
                auditorium=auditorium,
            ),
            managers=[creator],
            members=[creator],
        )
        return room.id

    return make


def test_open_room_an_in_scope_person_finds_and_joins(category_world, make_room):
    room = make_room(Privacy.OPEN)
    member = category_world["member"]
    assert room in member.visible_rooms(category_world["category"].id)
    assert member.join(room).status_code == 200
    assert member.send(room, "hello").status_code == 200


def test_closed_room_an_in_scope_person_sees_and_asks_but_does_not_get_in(
    chat, category_world, make_room
):
    room = make_room(Privacy.CLOSED)
    member = category_world["member"]
    assert room in member.visible_rooms(category_world["category"].id)
    assert member.join(room).status_code == 403
    assert member.knock(room).status_code == 200
    assert member.user_id in chat.get_room(room).knocking
    assert member.read(room).status_code == 403


def test_secret_room_is_invisible_to_an_in_scope_non_member(category_world, make_room):
    room = make_room(Privacy.SECRET)
    member = category_world["member"]
    assert room not in member.visible_rooms(category_world["category"].id)
    assert member.join(room).status_code == 403


@pytest.mark.parametrize("privacy", [Privacy.CLOSED, Privacy.SECRET])
def test_members_of_closed_and_secret_rooms_get_in(chat, category_world, make_room, privacy):
    room = make_room(privacy)
    member = category_world["member"]
    chat.add_to_role(room, Role.MEMBER, [member.user_id])
    assert member.join(room).status_code == 200  # accepts the invitation
    assert member.read(room).status_code == 200
    assert room in member.visible_rooms(category_world["category"].id)


@pytest.mark.parametrize("privacy", list(Privacy))
def test_a_person_outside_the_scope_can_do_none_of_it(category_world, make_room, privacy):
    room = make_room(privacy)
    outsider = category_world["outsider"]
    assert outsider.visible_rooms(category_world["category"].id) is None
    assert outsider.join(room).status_code == 403
    assert outsider.read(room).status_code == 403


def test_auditorium_only_presenters_post(chat, category_world, make_room):
    room = make_room(Privacy.CLOSED, auditorium=True)
    member = category_world["member"]
    chat.add_to_role(room, Role.MEMBER, [member.user_id])
    assert member.join(room).status_code == 200
    assert member.read(room).status_code == 200
    assert member.send(room, "may I?").status_code == 403
    chat.add_to_role(room, Role.PRESENTER, [member.user_id])
    assert member.send(room, "now I may").status_code == 200


def test_plain_members_cannot_change_membership_or_settings(chat, category_world, make_room):
    room = make_room(Privacy.CLOSED)
    member = category_world["member"]
    chat.add_to_role(room, Role.MEMBER, [member.user_id])
    member.join(room)
    invite = member.http.post(
        f"/_matrix/client/v3/rooms/{room}/invite",
        json={"user_id": category_world["outsider"].user_id},
    )
    rename = member.http.put(
        f"/_matrix/client/v3/rooms/{room}/state/m.room.name/", json={"name": "x"}
    )
    assert (invite.status_code, rename.status_code) == (403, 403)


def test_disabled_room_nobody_joins_or_posts(chat, category_world, make_room):
    room = make_room(Privacy.OPEN)
    creator, member = category_world["creator"], category_world["member"]
    assert creator.join(room).status_code == 200
    chat.set_room_disabled(room, True)
    assert member.join(room).status_code == 403
    assert creator.send(room, "still here?").status_code == 403
    chat.set_room_disabled(room, False)
    assert member.join(room).status_code == 200
    assert creator.send(room, "back again").status_code == 200
