"""When the embedded homeserver's module gathers SQLite's query planner statistics."""

from __future__ import annotations

from rooms.chatserver.statistics import due


def test_statistics_are_gathered_first_and_again_once_the_events_grew_by_a_quarter():
    assert due(0, None)
    assert due(5_000, None)
    assert not due(5_000, 4_001)
    assert due(5_000, 4_000)
    assert due(2, 0)  # an empty homeserver's first events
    assert not due(0, 0)
