"""Reading a room from a moment (an export of a month) starts at that moment on the
homeserver: it does not page through what was said before it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from rooms.backend.matrix import moderation

pytestmark = [pytest.mark.django_db, pytest.mark.chat]


def test_a_read_from_a_moment_starts_there(chat, chatting, monkeypatch):
    room, person = chatting
    for n in range(8):
        assert person.send(room.id, f"Before {n}").status_code == 200
    time.sleep(1.1)
    moment_ms = int(datetime.now(UTC).timestamp() * 1000)
    time.sleep(1.1)
    assert person.send(room.id, "After").status_code == 200
    monkeypatch.setattr(moderation, "COUNT_PAGE", 1)  # a page per event: pages are counted

    calls = chat.http.calls
    events = list(chat.room_events(room.id, moment_ms))
    spent = chat.http.calls - calls
    assert [e.body for e in events] == ["After"]
    # Where to start (two calls), the one event, the end: not a page per earlier event.
    assert spent <= 4, spent

    every = list(chat.room_events(room.id))
    assert [e.body for e in every if not e.is_membership] == [
        *(f"Before {n}" for n in range(8)),
        "After",
    ]
    later = int(datetime.now(UTC).timestamp() * 1000) + 60_000
    assert list(chat.room_events(room.id, later)) == []  # nothing sent since
