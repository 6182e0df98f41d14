"""What the moderation tests share: a room where a member said things."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from rooms.backend.records import Role


def unthrottled(chat, person) -> None:
    """Lift the homeserver's rate limit on what this person sends (tests send dozens)."""
    limit = f"/_synapse/admin/v1/users/{person.user_id}/override_ratelimit"
    chat.http.request("POST", limit, json={"messages_per_second": 0, "burst_count": 0})


@pytest.fixture
def chatting(chat, make_room, category_world):
    """A room its member joined, sending as fast as a test likes: the room and the member."""
    room = make_room()
    person = category_world["member"]
    chat.add_to_role(room.id, Role.MEMBER, [person.user_id])
    person.join(room.id)
    unthrottled(chat, person)
    return room, person


@pytest.fixture
def talked(chat, make_room, category_world):
    """A room where a member said two things, then (two seconds later) one more: the
    moment between them, to the second."""
    room = make_room()
    person = category_world["member"]
    chat.add_to_role(room.id, Role.MEMBER, [person.user_id])
    person.join(room.id)
    for text in ("Old news", "Older secret"):
        assert person.send(room.id, text).status_code == 200
    time.sleep(1.1)
    moment = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)
    assert person.send(room.id, "Fresh news").status_code == 200
    return room, person, moment
