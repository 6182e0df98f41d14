"""Reading portal concepts back from Matrix room state."""

from __future__ import annotations

import pytest

from rooms.backend.matrix.state import (
    DISABLED_LEVEL,
    ROOM_SETTINGS_EVENT,
    RoomState,
    events_default_for,
    room_from_state,
)
from rooms.backend.records import Invitations, Privacy

SERVICE = "@roomportal:example.org"
SPACE = "!space:example.org"


def state(*events) -> RoomState:
    return RoomState.from_events(
        "!room:example.org",
        [
            {"type": "m.room.create", "state_key": "", "sender": SERVICE, "content": {}},
            {
                "type": "m.space.parent",
                "state_key": SPACE,
                "content": {"canonical": True, "via": ["example.org"]},
            },
            *events,
        ],
    )


def event(kind, content, key=""):
    return {"type": kind, "state_key": key, "content": content}


@pytest.mark.parametrize(
    ("rule", "privacy"),
    [
        ("restricted", Privacy.OPEN),
        ("public", Privacy.OPEN),
        ("knock", Privacy.CLOSED),
        ("knock_restricted", Privacy.CLOSED),
        ("invite", Privacy.SECRET),
        ("private", Privacy.SECRET),
    ],
)
def test_join_rule_is_privacy(rule, privacy):
    room = room_from_state(
        state(event("m.room.join_rules", {"join_rule": rule})), service_user=SERVICE
    )
    assert room.settings.privacy is privacy


def test_roles_from_membership_and_power_levels():
    room = room_from_state(
        state(
            event("m.room.member", {"membership": "join"}, "@a:example.org"),
            event("m.room.member", {"membership": "invite"}, "@b:example.org"),
            event("m.room.member", {"membership": "knock"}, "@c:example.org"),
            event("m.room.member", {"membership": "leave"}, "@d:example.org"),
            event("m.room.member", {"membership": "join"}, SERVICE),
            event(
                "m.room.power_levels",
                {"users": {"@a:example.org": 100, "@e:example.org": 50, "@f:example.org": 10}},
            ),
        ),
        service_user=SERVICE,
    )
    assert room.members == {"@a:example.org", "@b:example.org"}
    assert room.knocking == {"@c:example.org"}
    assert room.managers == {"@a:example.org"}
    assert room.presenters == {"@e:example.org"}
    assert room.settings.category_id == SPACE


def test_auditorium_is_read_from_power_levels_unless_disabled():
    live = state(event("m.room.power_levels", {"events_default": 50}))
    assert room_from_state(live, service_user=SERVICE).settings.auditorium
    disabled = state(
        event("m.room.power_levels", {"events_default": DISABLED_LEVEL}),
        event(ROOM_SETTINGS_EVENT, {"disabled": True, "auditorium": False, "invitations": "off"}),
    )
    room = room_from_state(disabled, service_user=SERVICE)
    assert room.disabled
    assert not room.settings.auditorium
    assert room.settings.invitations is Invitations.OFF


def test_unknown_portal_values_fall_back_to_defaults():
    room = room_from_state(
        state(event(ROOM_SETTINGS_EVENT, {"invitations": "sometimes"})), service_user=SERVICE
    )
    assert room.settings.invitations is Invitations.INHERIT
    assert not room.disabled


@pytest.mark.parametrize(
    ("auditorium", "disabled", "level"),
    [
        (False, False, 0),
        (True, False, 50),
        (False, True, DISABLED_LEVEL),
        (True, True, DISABLED_LEVEL),
    ],
)
def test_who_may_post(auditorium, disabled, level):
    assert events_default_for(auditorium=auditorium, disabled=disabled) == level
