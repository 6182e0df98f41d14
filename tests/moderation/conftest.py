"""What the moderation tests share: a room where a member said things."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from rooms.backend.records import Role


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
