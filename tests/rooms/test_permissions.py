"""The "what can this person do here, and why" explainer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rooms.backend.records import Category, Privacy, Room, RoomSettings
from rooms.permissions import effective_permissions

CATEGORY = Category(
    id="!space",
    name="Eng",
    description="",
    invitations_allowed=True,
    allowed_members=frozenset({"@in:x", "@member:x", "@presenter:x", "@manager:x"}),
    denied_members=frozenset(),
    creators=frozenset(),
    room_ids=(),
)


def room(privacy: Privacy, **changes) -> Room:
    settings = RoomSettings(name="R", description="", category_id="!space", privacy=privacy)
    base = Room(
        id="!r",
        settings=replace(settings, auditorium=changes.pop("auditorium", False)),
        members=frozenset({"@member:x", "@presenter:x"}),
        managers=frozenset({"@manager:x"}),
        presenters=frozenset({"@presenter:x"}),
    )
    return replace(base, **changes)


def answers(the_room: Room, person: str) -> dict[str, bool]:
    return {c.what: c.allowed for c in effective_permissions(the_room, CATEGORY, person)}


@pytest.mark.parametrize(
    ("privacy", "see", "join"),
    [(Privacy.OPEN, True, True), (Privacy.CLOSED, True, False), (Privacy.SECRET, False, False)],
)
def test_in_scope_non_member_by_privacy(privacy, see, join):
    result = answers(room(privacy), "@in:x")
    assert (result["See the room"], result["Join"]) == (see, join)


def test_outsider_can_do_nothing_and_is_told_why():
    capabilities = effective_permissions(room(Privacy.OPEN), CATEGORY, "@out:x")
    assert not any(c.allowed for c in capabilities)
    assert "not in the scope of “Eng”" in capabilities[0].why


def test_auditorium_only_presenters_and_managers_post():
    auditorium = room(Privacy.CLOSED, auditorium=True)
    assert not answers(auditorium, "@member:x")["Post in the auditorium"]
    assert answers(auditorium, "@presenter:x")["Post in the auditorium"]


def test_disabled_room_stops_joining_and_posting_and_says_so():
    capabilities = effective_permissions(room(Privacy.OPEN, disabled=True), CATEGORY, "@member:x")
    by_what = {c.what: c for c in capabilities}
    assert not by_what["Join"].allowed
    assert not by_what["Post"].allowed
    assert "disabled" in by_what["Post"].why


def test_manager_manages():
    assert answers(room(Privacy.SECRET), "@manager:x")["Manage the room"]
    assert not answers(room(Privacy.SECRET), "@member:x")["Manage the room"]
