"""The rules hold at the chat server: the portal's Synapse module refuses, in a real
homeserver, what a room's Manager tries from a chat client against the rules, with a
message that names the rule; what the rules allow still passes."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import unique

pytestmark = pytest.mark.django_db


@pytest.fixture
def arena(make_room, category_world):
    """A fresh Closed room in the category; its Manager (also a Member) in their chat
    client; an in-scope person and one outside the scope."""
    room = make_room()
    manager = category_world["creator"]
    assert manager.join(room.id).is_success
    return {
        "room": room,
        "manager": manager,
        "member": category_world["member"],
        "outsider": category_world["outsider"],
        "category": category_world["category"],
    }


def refused(answer: httpx.Response, *words: str) -> None:
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["errcode"] == "M_FORBIDDEN"
    assert body["error"].startswith("The room portal's rules refuse this:"), body
    for word in words:
        assert word in body["error"], body


def levels_with(person, room_id: str, **changes) -> dict:
    content = person.state(room_id, "m.room.power_levels")
    users = content["users"] | changes.pop("users", {})
    return content | {"users": users} | changes


def test_an_outsider_cannot_be_invited_or_join(arena, chat):
    room, manager, outsider = arena["room"], arena["manager"], arena["outsider"]
    refused(manager.invite(room.id, outsider.user_id), outsider.user_id, "outside the scope")
    # Invited before the module ran: the join itself is refused.
    chat.http.request(
        "POST", f"/_matrix/client/v3/rooms/{room.id}/invite", json={"user_id": outsider.user_id}
    )
    refused(outsider.join(room.id), "outside the scope", arena["category"].name)
    membership = manager.state(room.id, "m.room.member", outsider.user_id)
    assert membership["membership"] == "invite"


def test_a_knock_from_outside_passes_the_module_and_the_sync_worker_turns_it_away(arena, chat):
    """Synapse has no spam check for knocks: the second line answers them."""
    from rooms import sync
    from rooms.models import IndexStream

    IndexStream.objects.update_or_create(
        key=sync.STREAM, defaults={"next_batch": chat.stream_position()}
    )
    room, manager, outsider = arena["room"], arena["manager"], arena["outsider"]
    assert outsider.knock(room.id).is_success
    sync.sync_once(chat, timeout_ms=500)
    assert manager.state(room.id, "m.room.member", outsider.user_id)["membership"] == "leave"


def test_the_join_rule_stays_one_of_the_three_privacies(arena):
    room, manager = arena["room"], arena["manager"]
    refused(manager.put_state(room.id, "m.room.join_rules", {"join_rule": "public"}), "public")
    refused(
        manager.put_state(room.id, "m.room.join_rules", {"join_rule": "knock_restricted"}),
        "Open, Closed or Secret",
    )
    assert manager.state(room.id, "m.room.join_rules")["join_rule"] == "knock"


def test_history_guests_encryption_and_server_access_stay_as_the_portal_set_them(arena):
    room, manager = arena["room"], arena["manager"]
    refused(
        manager.put_state(
            room.id, "m.room.history_visibility", {"history_visibility": "world_readable"}
        ),
        "world_readable",
    )
    refused(manager.put_state(room.id, "m.room.guest_access", {"guest_access": "can_join"}))
    refused(
        manager.put_state(room.id, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}),
        "encryption",
    )
    refused(manager.put_state(room.id, "m.room.server_acl", {"allow": ["*"], "deny": ["x.org"]}))
    refused(manager.put_state(room.id, "m.room.tombstone", {"replacement_room": "!x:y"}))
    assert manager.state(room.id, "m.room.history_visibility")["history_visibility"] == "shared"
    assert manager.state(room.id, "m.room.guest_access")["guest_access"] == "forbidden"


def test_power_levels_keep_the_roles_and_the_mapping(arena):
    room, manager, member, outsider = (
        arena["room"],
        arena["manager"],
        arena["member"],
        arena["outsider"],
    )
    refused(
        manager.put_state(
            room.id,
            "m.room.power_levels",
            levels_with(manager, room.id, users={outsider.user_id: 100}),
        ),
        "cannot be a Manager",
        "outside the scope",
    )
    refused(
        manager.put_state(
            room.id, "m.room.power_levels", levels_with(manager, room.id, users_default=100)
        ),
        "users_default",
    )
    refused(
        manager.put_state(room.id, "m.room.power_levels", levels_with(manager, room.id, kick=0)),
        "kick",
    )
    refused(
        manager.put_state(
            room.id,
            "m.room.power_levels",
            levels_with(manager, room.id, users={member.user_id: 50}),
        ),
        "auditorium",
    )
    refused(
        manager.put_state(
            room.id,
            "m.room.power_levels",
            levels_with(manager, room.id, users={member.user_id: 75}),
        ),
        "level 75",
    )
    refused(
        manager.put_state(
            room.id, "m.room.power_levels", levels_with(manager, room.id, events_default=20)
        ),
        "who may post",
    )
    assert manager.state(room.id, "m.room.power_levels")["users_default"] == 0


def test_links_to_categories_are_the_portals_alone(arena, chat):
    room, manager, category = arena["room"], arena["manager"], arena["category"]
    refused(manager.put_state(room.id, "m.space.parent", {}, category.id), category.name)
    other = chat.create_category(name=unique("Elsewhere "), description="")
    refused(
        manager.put_state(room.id, "m.space.parent", {"via": ["portal.test"]}, other.id),
        "only the room portal links",
    )
    refused(manager.put_state(room.id, "org.roomportal.room", {"disabled": True}), "settings")
    assert manager.state(room.id, "m.space.parent", category.id)["canonical"] is True


def test_the_rooms_settings_cannot_be_redacted_away(arena):
    """A redaction empties what it does not keep: of the link to the category, of the
    name, of the portal's settings. A message may still be redacted."""
    room, manager = arena["room"], arena["manager"]
    ids = manager.state_ids(room.id)
    link = ids[("m.space.parent", arena["category"].id)]
    refused(manager.redact(room.id, link), "only the room portal links")
    refused(manager.redact(room.id, ids[("m.room.name", "")]), "1 to 256")
    said = manager.send(room.id, "a slip of the tongue").json()["event_id"]
    assert manager.redact(room.id, said).is_success
    assert manager.state(room.id, "m.space.parent", arena["category"].id)["canonical"] is True


def test_a_name_another_room_holds_is_refused_in_any_letter_case(arena, make_room):
    room, manager = arena["room"], arena["manager"]
    other = make_room()
    refused(
        manager.put_state(room.id, "m.room.name", {"name": other.name.upper()}),
        "not available",
    )
    refused(manager.put_state(room.id, "m.room.name", {"name": "   "}), "1 to 256")
    assert manager.state(room.id, "m.room.name")["name"] == room.name


def test_a_look_alike_or_deceiving_name_is_refused_from_a_chat_client(arena, make_room):
    room, manager = arena["room"], arena["manager"]
    # A free name is looked up (the module reads its name table afresh), and a room is
    # made at once: its name is taken from its first moment, not from the next reading.
    free = unique("Free ")
    assert manager.put_state(room.id, "m.room.name", {"name": free}).is_success
    other = make_room(name=unique("Payroll "))
    look_alikes = (
        other.name.replace("a", "\u0430"),  # Cyrillic a
        other.name.replace("l", "I"),  # capital i for small L
        other.name[:3] + "\u200d" + other.name[3:],  # a zero-width joiner inside
    )
    for name in look_alikes:
        refused(manager.put_state(room.id, "m.room.name", {"name": name}), "not available")
    refused(
        manager.put_state(room.id, "m.room.name", {"name": "PA \u202egnp.exe"}),
        "U+202E RIGHT-TO-LEFT OVERRIDE",
    )
    refused(
        manager.put_state(room.id, "m.room.name", {"name": "Zalgo e" + "\u0301" * 9}),
        "accents or marks",
    )
    assert manager.state(room.id, "m.room.name")["name"] == free


def test_a_chat_client_cannot_link_its_own_room_into_a_category(arena):
    manager, category = arena["manager"], arena["category"]
    answer = manager.http.post(
        "/_matrix/client/v3/createRoom",
        json={
            "name": unique("Sneaked in "),
            "initial_state": [
                {
                    "type": "m.space.parent",
                    "state_key": category.id,
                    "content": {"via": ["portal.test"], "canonical": True},
                }
            ],
        },
    )
    refused(answer, "only the room portal links")


def test_a_governed_room_cannot_be_upgraded_from_a_chat_client(arena):
    room, manager = arena["room"], arena["manager"]
    answer = manager.http.post(
        f"/_matrix/client/v3/rooms/{room.id}/upgrade", json={"new_version": "11"}
    )
    refused(answer, "upgraded room would leave its category")
    tombstone = manager.http.get(f"/_matrix/client/v3/rooms/{room.id}/state/m.room.tombstone/")
    assert tombstone.status_code == 404


def test_a_category_is_changed_in_the_portal_only(arena):
    manager, category = arena["manager"], arena["category"]  # a Creator of the category
    refused(
        manager.put_state(category.id, "m.space.child", {"via": ["portal.test"]}, "!x:portal.test"),
        category.name,
    )


def test_what_the_rules_allow_still_passes(arena, make_room):
    room, manager, member, category = (
        arena["room"],
        arena["manager"],
        arena["member"],
        arena["category"],
    )
    free = unique("Renamed in Element ")
    assert manager.put_state(room.id, "m.room.name", {"name": free}).is_success
    assert manager.put_state(room.id, "m.room.topic", {"topic": "From a client"}).is_success
    assert manager.put_state(room.id, "m.room.avatar", {"url": "mxc://portal.test/x"}).is_success
    for rule in (
        {"join_rule": "invite"},
        {
            "join_rule": "restricted",
            "allow": [{"type": "m.room_membership", "room_id": category.id}],
        },
        {"join_rule": "knock"},
    ):
        assert manager.put_state(room.id, "m.room.join_rules", rule).is_success, rule
    assert manager.invite(room.id, member.user_id).is_success
    assert member.join(room.id).is_success
    auditorium = levels_with(manager, room.id, users={member.user_id: 50}, events_default=50)
    assert manager.put_state(room.id, "m.room.power_levels", auditorium).is_success
    assert member.send(room.id, "a Presenter speaks").is_success
    made_manager = levels_with(manager, room.id, users={member.user_id: 100})
    assert manager.put_state(room.id, "m.room.power_levels", made_manager).is_success
    assert member.http.post(f"/_matrix/client/v3/rooms/{room.id}/leave", json={}).is_success


def test_the_module_says_it_runs(synapse):
    answer = httpx.get(f"{synapse.url}/_synapse/client/roomportal/rules")
    assert answer.json()["service_user"] == f"@roomportal:{synapse.server_name}"


def test_a_refusal_reaches_the_audit_log_with_the_chat_user_and_the_rule(arena, chat):
    from portal.models import AuditEntry, Outcome
    from rooms import sync
    from rooms.models import IndexStream

    IndexStream.objects.update_or_create(
        key=sync.STREAM, defaults={"next_batch": chat.stream_position()}
    )
    room, manager, outsider = arena["room"], arena["manager"], arena["outsider"]
    refused(manager.invite(room.id, outsider.user_id))
    refused(manager.put_state(room.id, "m.room.join_rules", {"join_rule": "public"}))
    refused(manager.put_state(room.id, "m.room.guest_access", {"guest_access": "can_join"}))
    entries = AuditEntry.objects.filter(action="policy.refused", target_id=room.id)
    for _ in range(20):  # the module reports in the background: a few batches at most
        sync.sync_once(chat, timeout_ms=500)
        if entries.count() == 3:
            break
    assert sorted(e.after["rule"] for e in entries) == ["guests", "privacy", "scope"]
    entry = entries.get(after__rule="scope")
    assert entry.outcome == Outcome.DENIED
    assert entry.actor_chat_id == manager.user_id
    assert entry.after["rule"] == "scope"
    assert entry.after["person"] == outsider.user_id
    assert entry.category_label == arena["category"].name


def scope_table(synapse, category_id: str) -> int | None:
    """How many people the module's table holds in the category's scope."""
    answer = httpx.get(f"{synapse.url}/_synapse/client/roomportal/rules").json()
    return answer["scopes"].get(category_id)


def wait_for_table(synapse, category_id: str, count: int) -> None:
    deadline = time.monotonic() + 30
    while scope_table(synapse, category_id) != count:
        assert time.monotonic() < deadline, scope_table(synapse, category_id)
        time.sleep(0.2)


def test_the_modules_scope_table_follows_the_portal(arena, chat, synapse):
    """The module decides scope from a table in memory: a removal counts within about a
    second, an addition at once (someone the table does not hold is read afresh)."""
    room, manager, member, outsider = (
        arena["room"], arena["manager"], arena["member"], arena["outsider"]
    )  # fmt: skip
    category_id = arena["category"].id
    wait_for_table(synapse, category_id, 3)  # the service account, the creator, the member
    chat.remove_from_category_scope(category_id, [member.user_id])
    wait_for_table(synapse, category_id, 2)
    refused(manager.invite(room.id, member.user_id), member.user_id, "outside the scope")
    chat.add_to_category_scope(category_id, [outsider.user_id])
    assert manager.invite(room.id, outsider.user_id).is_success  # not waiting for the table
