"""A removed message leaves the homeserver's full-text index (the portal's module takes
it out within seconds): its words are not kept, and a search for what is left is not
stopped short by the removed matches ahead of it."""

from __future__ import annotations

import time

import pytest

from rooms.backend.matrix import moderation
from rooms.backend.records import Role
from tests.moderation.conftest import unthrottled

pytestmark = [pytest.mark.django_db, pytest.mark.chat]


def test_a_search_reads_past_removed_matches(chat, chatting, monkeypatch):
    room, person = chatting
    assert person.send(room.id, "budget kept").status_code == 200
    newer = [person.send(room.id, f"budget {n}").json()["event_id"] for n in range(25)]
    for event_id in newer:
        chat.remove_message(room.id, event_id, "Removed by a test", files=())
    # The homeserver's search reads at most ten windows of raw matches a page, and drops
    # removed ones after: with a window of 2, the 25 removed matches would end it.
    monkeypatch.setattr(moderation, "SEARCH_WINDOW", 2)
    monkeypatch.setattr(moderation, "SEARCH_WINDOW_MOST", 2)

    deadline = time.monotonic() + 30
    while True:
        page = chat.read_messages(room.id, text="budget", limit=2)
        if page.messages or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [m.body for m in page.messages] == ["budget kept"]


def test_one_persons_matches_are_found_behind_other_peoples(
    chat, chatting, category_world, monkeypatch
):
    room, person = chatting
    other = category_world["creator"]
    chat.add_to_role(room.id, Role.MEMBER, [other.user_id])
    other.join(room.id)
    unthrottled(chat, other)
    assert person.send(room.id, "budget mine").status_code == 200
    for n in range(25):
        assert other.send(room.id, f"budget theirs {n}").status_code == 200
    monkeypatch.setattr(moderation, "SEARCH_WINDOW", 2)
    monkeypatch.setattr(moderation, "SEARCH_WINDOW_MOST", 2)

    page = chat.read_messages(room.id, text="budget", senders=(person.user_id,), limit=2)
    assert [m.body for m in page.messages] == ["budget mine"]
