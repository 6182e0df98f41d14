"""The rules as a predicate on a room's state (rooms.chatserver.policy), in the fast layer:
what the homeserver's module refuses and what the sync worker repairs start here."""

from __future__ import annotations

from dataclasses import replace

from rooms.chatserver.policy import (
    CHECKED_STATE,
    Governed,
    Rule,
    breaches,
    refusal,
    repaired_levels,
)

SERVICE, CATEGORY = "@roomportal:portal.test", "!cat:portal.test"
CAROL, PAUL, OLIVIA = "@carol:portal.test", "@paul:portal.test", "@olivia:portal.test"
IN_SCOPE = {CAROL, PAUL}


def room(state: dict | None = None) -> Governed:
    base = {
        ("m.room.create", ""): {"room_version": "12"},
        ("m.room.name", ""): {"name": "Release train"},
        ("m.room.join_rules", ""): {"join_rule": "knock"},
        ("m.space.parent", CATEGORY): {"via": ["portal.test"], "canonical": True},
        ("m.room.member", CAROL): {"membership": "join"},
        ("m.room.power_levels", ""): {
            "users": {CAROL: 100},
            "users_default": 0,
            "events_default": 0,
            "state_default": 100,
            "invite": 100,
            "kick": 100,
            "ban": 100,
            "redact": 100,
            "events": {
                "m.room.name": 100,
                "m.room.topic": 100,
                "m.room.power_levels": 100,
                "m.room.join_rules": 100,
                "m.room.history_visibility": 100,
            },
        },
    }
    return Governed(
        "!r:portal.test",
        base | (state or {}),
        SERVICE,
        CATEGORY,
        "Engineering",
        in_scope=IN_SCOPE.__contains__,
        creators=frozenset({SERVICE}),
        name_holder=lambda key: "!other:portal.test" if key == "taken" else None,
    )


def test_a_room_made_by_the_portal_breaks_nothing():
    assert breaches(room()) == []


def test_each_kind_of_breach_is_named_by_its_rule():
    found = breaches(
        room(
            {
                ("m.room.member", OLIVIA): {"membership": "invite"},
                ("m.room.join_rules", ""): {"join_rule": "public"},
                ("m.room.history_visibility", ""): {"history_visibility": "world_readable"},
                ("m.room.guest_access", ""): {"guest_access": "can_join"},
                ("m.room.name", ""): {"name": "Taken"},
                ("m.room.encryption", ""): {"algorithm": "m.megolm.v1.aes-sha2"},
            }
        )
    )
    assert {b.rule for b in found} == {
        Rule.SCOPE,
        Rule.PRIVACY,
        Rule.HISTORY,
        Rule.GUESTS,
        Rule.NAME,
        Rule.ENCRYPTION,
    }


def test_a_breach_already_there_does_not_block_other_changes_nor_a_new_display_name():
    legacy = room({("m.room.member", OLIVIA): {"membership": "join", "displayname": "O"}})
    topic = refusal(
        legacy, event_type="m.room.topic", state_key="", content={"topic": "x"}, sender=CAROL
    )
    assert topic is None
    renamed = refusal(
        legacy,
        event_type="m.room.member",
        state_key=OLIVIA,
        content={"membership": "join", "displayname": "Olivia"},
        sender=OLIVIA,
    )
    assert renamed is None


def test_someone_outside_the_scope_never_comes_further_in_invited_before_or_not():
    invited = room({("m.room.member", OLIVIA): {"membership": "invite"}})
    joined = refusal(
        invited, event_type="m.room.member", state_key=OLIVIA, content={"membership": "join"},
        sender=OLIVIA,
    )  # fmt: skip
    assert joined is not None
    assert joined.rule is Rule.SCOPE
    assert joined.person == OLIVIA
    left = refusal(
        invited, event_type="m.room.member", state_key=OLIVIA, content={"membership": "leave"},
        sender=OLIVIA,
    )  # fmt: skip
    assert left is None
    paul_joins = refusal(
        room({("m.room.member", PAUL): {"membership": "invite"}}),
        event_type="m.room.member", state_key=PAUL, content={"membership": "join"}, sender=PAUL,
    )  # fmt: skip
    assert paul_joins is None


def test_the_state_the_homeserver_reads_is_all_the_rules_need():
    """The module reads `CHECKED_STATE` and memberships, not a room's whole state: every
    other kind of state leaves what the rules find unchanged."""
    full = room(
        {
            ("m.room.member", OLIVIA): {"membership": "invite"},
            ("m.room.member", PAUL): {"membership": "join"},
            ("m.room.join_rules", ""): {"join_rule": "public"},
            ("m.room.history_visibility", ""): {"history_visibility": "joined"},
            ("m.room.guest_access", ""): {"guest_access": "can_join"},
            ("m.room.server_acl", ""): {"allow": ["a.org"]},
            ("m.room.tombstone", ""): {"replacement_room": "!n:portal.test"},
            ("m.room.topic", ""): {"topic": "anything"},
            ("m.room.avatar", ""): {"url": "mxc://portal.test/a"},
            ("org.example.custom", "x"): {"any": "thing"},
            ("org.roomportal.room", ""): {"disabled": False, "auditorium": True},
        }
    )
    read = {
        key: content
        for key, content in full.state.items()
        if key[0] in CHECKED_STATE or key[0] == "m.room.member"
    }
    assert breaches(replace(full, state=read)) == breaches(full)
    assert len(breaches(full)) >= 6


def test_the_service_account_is_never_refused_and_messages_pass():
    public = {"join_rule": "public"}
    assert refusal(room(), event_type="m.room.join_rules", state_key="", content=public,
                   sender=SERVICE) is None  # fmt: skip
    assert refusal(room(), event_type="m.room.message", state_key=None, content={},
                   sender=CAROL) is None  # fmt: skip


def test_repaired_levels_keep_the_rightful_roles_and_undo_the_rest():
    broken = room(
        {
            ("m.room.power_levels", ""): room().levels
            | {"users": {CAROL: 100, OLIVIA: 100, PAUL: 50}, "users_default": 100, "kick": 0}
        }
    )
    fixed = repaired_levels(broken, people_out={OLIVIA})
    assert fixed["users"] == {CAROL: 100}  # Paul: a Presenter where there is no auditorium
    assert (fixed["users_default"], fixed["kick"]) == (0, 100)
    assert breaches(room({("m.room.power_levels", ""): fixed})) == []
