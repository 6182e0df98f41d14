"""The second line: on a homeserver without the portal's module, what a room's Manager
breaks from a chat client lands, and the sync worker puts it back in the batch that
carries it, auditing the breach (the chat user, the rule) and the repair. What the rules
allow is reflected and audited as before, each change with its own sender."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms import index, sync
from rooms.backend.embedded import Connection
from rooms.backend.records import ChatOptions, Privacy, Role, RoomSettings
from rooms.chatserver.policy import DAY_MS, WIDGET_EVENT
from rooms.models import IndexStream, PolicyBreach
from rooms.services import categories as category_services
from rooms.services import rooms as room_services
from tests.arranging import ArrangingChat
from tests.chat_users import ChatUser
from tests.conftest import PASSWORD, portal_user, unique
from tests.factories import AdministratorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.chat]


@pytest.fixture
def bare(homeserver_without_rules: Connection, settings) -> Iterator[ArrangingChat]:
    """The portal on the homeserver without the module, its index following the stream."""
    connection = homeserver_without_rules
    settings.CHAT_SERVER_URL = connection.url
    settings.CHAT_SERVER_NAME = connection.server_name
    settings.CHAT_SERVICE_TOKEN = connection.token
    client = ArrangingChat(
        base_url=connection.url, server_name=connection.server_name, token=connection.token
    )
    IndexStream.objects.update_or_create(
        key=sync.STREAM, defaults={"next_batch": client.stream_position()}
    )
    yield client
    client.close()


@pytest.fixture
def world(bare: ArrangingChat, homeserver_without_rules: Connection):
    def person(name: str) -> ChatUser:
        made = bare.ensure_user(unique(name), password=PASSWORD, display_name=name.title())
        return ChatUser.login(homeserver_without_rules.url, made.id, PASSWORD)

    manager, member, outsider = person("carol"), person("paul"), person("olivia")
    category = bare.create_category(
        name=unique("Engineering "), description="", creators=[manager.user_id]
    )
    bare.add_to_category_scope(category.id, [manager.user_id, member.user_id])

    def make_room(name: str = ""):
        return room_services.room_create(
            actor=portal_user(manager),
            settings=RoomSettings(
                name=name or unique("Room "),
                description="",
                category_id=category.id,
                privacy=Privacy.CLOSED,
            ),
            submission=uuid.uuid4(),
        )

    room = make_room()
    assert manager.join(room.id).is_success
    caught_up(bare)
    return {
        "room": room,
        "manager": manager,
        "member": member,
        "outsider": outsider,
        "category": bare.get_category(category.id),
        "make_room": make_room,
    }


def caught_up(chat) -> None:
    while sync.sync_once(chat, timeout_ms=300).rooms:
        pass


def breach_entries(room_id: str, rule: str) -> list[AuditEntry]:
    return [
        e
        for e in AuditEntry.objects.filter(action="policy.breach", target_id=room_id)
        if e.after.get("rule") == rule
    ]


def assert_undone(room_id: str, rule: str, actor: str) -> None:
    (entry,) = breach_entries(room_id, rule)
    assert entry.outcome == Outcome.UNDONE
    assert entry.actor_chat_id == actor
    assert AuditEntry.objects.filter(action="policy.enforced", target_id=room_id).exists()
    assert not PolicyBreach.objects.filter(target_id=room_id, undone_at__isnull=True).exists()
    assert not AuditEntry.objects.filter(
        action="chat.room.changed", target_id=room_id, outcome=Outcome.SUCCEEDED, after__rule=rule
    ).exists()


def test_an_outsider_invited_and_joined_is_removed(bare, world):
    room, manager, outsider = world["room"], world["manager"], world["outsider"]
    assert manager.invite(room.id, outsider.user_id).is_success  # lands: no module
    assert outsider.join(room.id).is_success
    caught_up(bare)
    assert outsider.user_id not in bare.read_state(room.id).memberships("join", "invite")
    assert outsider.user_id not in index.room(room.id).members
    assert_undone(room.id, "scope", manager.user_id)
    assert outsider.send(room.id, "still here?").status_code == 403


def test_a_knock_from_outside_the_scope_is_turned_away_and_one_from_inside_stays(bare, world):
    """Anyone who knows a Closed room's ID may knock; only people in the category's scope
    may be let in, so the worker turns the others away."""
    room, outsider, member = world["room"], world["outsider"], world["member"]
    assert outsider.knock(room.id).is_success
    assert member.knock(room.id).is_success
    caught_up(bare)
    on_server = bare.get_room(room.id)
    assert outsider.user_id not in on_server.knocking  # rejected on the chat server
    assert member.user_id in on_server.knocking  # a request the Managers decide
    assert set(index.room(room.id).knocking) == {member.user_id}
    assert_undone(room.id, "scope", outsider.user_id)


def test_a_public_room_and_open_history_are_put_back(bare, world):
    room, manager = world["room"], world["manager"]
    assert manager.put_state(room.id, "m.room.join_rules", {"join_rule": "public"}).is_success
    assert manager.put_state(
        room.id, "m.room.history_visibility", {"history_visibility": "world_readable"}
    ).is_success
    assert manager.put_state(
        room.id, "m.room.guest_access", {"guest_access": "can_join"}
    ).is_success
    caught_up(bare)
    assert manager.state(room.id, "m.room.join_rules")["join_rule"] == "knock"
    assert manager.state(room.id, "m.room.history_visibility")["history_visibility"] == "shared"
    assert manager.state(room.id, "m.room.guest_access")["guest_access"] == "forbidden"
    assert index.room(room.id).settings.privacy is Privacy.CLOSED
    for rule in ("privacy", "history", "guests"):
        assert_undone(room.id, rule, manager.user_id)


def test_history_opened_where_the_category_keeps_it_closed_is_put_back(bare, world):
    """The category's chat history is off: a Manager's chat client opening the room's
    history to later joiners is undone to what the category says."""
    room, manager, category = world["room"], world["manager"], world["category"]
    admin = AdministratorFactory()
    closed = ChatOptions(chat_history=False, file_uploads=True)
    category_services.category_set_options(actor=admin, category_id=category.id, options=closed)
    while room_services.bulk_change_step():
        pass
    caught_up(bare)
    assert manager.put_state(
        room.id, "m.room.history_visibility", {"history_visibility": "shared"}
    ).is_success
    caught_up(bare)
    assert manager.state(room.id, "m.room.history_visibility")["history_visibility"] == "joined"
    assert_undone(room.id, "history", manager.user_id)


def test_a_retention_a_chat_client_changed_is_put_back(bare, world):
    """The category keeps messages 30 days: a Manager's chat client shortening that to a
    day (which would delete a month of messages) is undone to what the category says."""
    room, manager, category = world["room"], world["manager"], world["category"]
    kept = ChatOptions(keep_days=30)
    category_services.category_set_options(
        actor=AdministratorFactory(), category_id=category.id, options=kept
    )
    while room_services.bulk_change_step():
        pass
    caught_up(bare)
    assert manager.put_state(room.id, "m.room.retention", {"max_lifetime": DAY_MS}).is_success
    caught_up(bare)
    assert manager.state(room.id, "m.room.retention") == {"max_lifetime": 30 * DAY_MS}
    assert_undone(room.id, "retention", manager.user_id)


def test_a_widget_a_chat_client_added_is_taken_away(bare, world):
    room, manager = world["room"], world["manager"]
    widget = {"type": "m.custom", "url": "https://elsewhere.example/", "name": "Mine"}
    assert manager.put_state(room.id, WIDGET_EVENT, widget, "own-widget").is_success
    caught_up(bare)
    assert manager.state(room.id, WIDGET_EVENT, "own-widget") == {}
    assert_undone(room.id, "add_ins", manager.user_id)


def test_an_outsider_made_manager_and_every_member_manager_level_are_undone(bare, world):
    room, manager, outsider = world["room"], world["manager"], world["outsider"]
    levels = manager.state(room.id, "m.room.power_levels")
    levels["users"][outsider.user_id] = 100
    levels["users_default"] = 100
    assert manager.put_state(room.id, "m.room.power_levels", levels).is_success
    caught_up(bare)
    now = manager.state(room.id, "m.room.power_levels")
    assert outsider.user_id not in now["users"]
    assert now["users_default"] == 0
    assert now["users"][manager.user_id] == 100  # the rightful Manager keeps the role
    assert index.room(room.id).managers == {manager.user_id}
    entries = AuditEntry.objects.filter(action="policy.breach", target_id=room.id)
    assert {e.after["rule"] for e in entries} == {"scope", "levels"}
    assert all(e.actor_chat_id == manager.user_id for e in entries)


def test_an_unlinked_room_is_linked_again_and_stays_governed(bare, world):
    room, manager, category = world["room"], world["manager"], world["category"]
    assert manager.put_state(room.id, "m.space.parent", {}, category.id).is_success
    caught_up(bare)
    assert manager.state(room.id, "m.space.parent", category.id)["canonical"] is True
    assert index.room(room.id).settings.category_id == category.id
    assert not AuditEntry.objects.filter(action="chat.room.gone", target_id=room.id).exists()
    assert_undone(room.id, "category", manager.user_id)


def test_a_redacted_link_and_name_are_put_back_and_a_redacted_message_is_left(bare, world):
    """A redaction empties a piece of state without a new state event: the worker finds
    what was redacted and puts the link to the category and the name back."""
    room, manager, category = world["room"], world["manager"], world["category"]
    ids = manager.state_ids(room.id)
    said = manager.send(room.id, "a slip of the tongue").json()["event_id"]
    assert manager.redact(room.id, ids[("m.space.parent", category.id)]).is_success
    assert manager.redact(room.id, ids[("m.room.name", "")]).is_success
    assert manager.redact(room.id, said).is_success
    caught_up(bare)
    assert manager.state(room.id, "m.space.parent", category.id)["canonical"] is True
    assert manager.state(room.id, "m.room.name")["name"] == room.name
    assert index.room(room.id).settings.category_id == category.id
    assert not AuditEntry.objects.filter(action="chat.room.gone", target_id=room.id).exists()
    assert_undone(room.id, "category", manager.user_id)
    assert_undone(room.id, "name", manager.user_id)
    breached = AuditEntry.objects.filter(action="policy.breach", target_id=room.id)
    assert {e.after["rule"] for e in breached} == {"category", "name"}  # not the message


def test_a_category_link_a_creator_took_away_is_put_back(bare, world):
    room, manager, category = world["room"], world["manager"], world["category"]
    assert manager.put_state(category.id, "m.space.child", {}, room.id).is_success  # a Creator
    caught_up(bare)
    assert manager.state(category.id, "m.space.child", room.id)["via"]
    assert room.id in index.category(category.id).room_ids
    (entry,) = breach_entries(category.id, "category")
    assert (entry.outcome, entry.actor_chat_id) == (Outcome.UNDONE, manager.user_id)


def test_a_taken_name_is_put_back(bare, world):
    room, manager = world["room"], world["manager"]
    other = world["make_room"]()
    assert manager.put_state(room.id, "m.room.name", {"name": other.name.lower()}).is_success
    caught_up(bare)
    assert manager.state(room.id, "m.room.name")["name"] == room.name
    assert index.room(room.id).name == room.name
    assert_undone(room.id, "name", manager.user_id)


def test_encryption_cannot_be_undone_and_is_shown_as_an_open_breach(bare, world, client):
    room, manager = world["room"], world["manager"]
    before = IndexStream.objects.get(key=sync.STREAM).next_batch
    assert manager.put_state(
        room.id, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}
    ).is_success
    caught_up(bare)
    # The same batch read again (a worker restarted before storing its position): the
    # breach is not recorded twice.
    IndexStream.objects.filter(key=sync.STREAM).update(next_batch=before)
    caught_up(bare)
    (entry,) = breach_entries(room.id, "encryption")
    assert entry.outcome == Outcome.FAILED
    assert entry.actor_chat_id == manager.user_id
    breach = PolicyBreach.objects.get(target_id=room.id)
    assert breach.undone_at is None
    client.force_login(AdministratorFactory())
    page = client.get(reverse("rooms:detail", args=[room.id])).content.decode()
    assert "outside the portal's rules" in page
    assert 'aria-label="1 not put back"' in page  # the navigation's badge
    assert "encryption" in page
    listed = client.get(reverse("operations:breaches")).content.decode()
    assert room.name in listed
    assert manager.user_id in listed
    health = client.get(reverse("health")).json()
    assert health["open_breaches"] == 1


def test_allowed_changes_are_reflected_each_with_its_own_sender(bare, world):
    room, manager, member = world["room"], world["manager"], world["member"]
    bare.add_to_role(room.id, Role.MEMBER, [member.user_id])
    bare.add_to_role(room.id, Role.MANAGER, [member.user_id])  # a second Manager
    assert member.join(room.id).is_success
    caught_up(bare)
    free = unique("Renamed in Element ")
    assert manager.put_state(room.id, "m.room.name", {"name": free}).is_success
    assert manager.put_state(room.id, "m.room.avatar", {"url": "mxc://x/y"}).is_success
    assert member.put_state(room.id, "m.room.topic", {"topic": "From Paul"}).is_success
    caught_up(bare)  # one batch, two people
    assert index.room(room.id).name == free
    entries = {
        e.actor_chat_id: e
        for e in AuditEntry.objects.filter(action="chat.room.changed", target_id=room.id)
    }
    assert entries[manager.user_id].after["name"] == free
    assert entries[manager.user_id].after["other_state"] == ["m.room.avatar"]
    assert "description" not in entries[manager.user_id].after
    assert entries[member.user_id].after["description"] == "From Paul"
    assert "name" not in entries[member.user_id].after
    assert not AuditEntry.objects.filter(action="policy.breach", target_id=room.id).exists()


def test_without_the_module_check_warns(bare, homeserver_without_rules):
    from portal.checks import chat_server_check

    ids = {message.id for message in chat_server_check()}
    assert "portal.W010" in ids
    answer = httpx.get(f"{homeserver_without_rules.url}/_synapse/client/roomportal/rules")
    assert answer.status_code == 404


def test_reconcile_lists_a_breach_from_before_the_module_and_puts_it_back(bare, world):
    """A change no batch carries any more (made before the index followed the stream):
    reconcile finds it by the rules, and --fix puts it back, audited."""
    room, manager = world["room"], world["manager"]
    assert manager.put_state(
        room.id, "m.room.history_visibility", {"history_visibility": "world_readable"}
    ).is_success
    IndexStream.objects.filter(key=sync.STREAM).update(next_batch=bare.stream_position())
    found = [d for d in sync.reconcile(bare) if d.target_id == room.id]
    assert [d.kind for d in found] == ["breach"]
    assert "world_readable" in found[0].detail
    sync.reconcile(bare, fix=True)
    assert manager.state(room.id, "m.room.history_visibility")["history_visibility"] == "shared"
    assert AuditEntry.objects.filter(action="policy.enforced", target_id=room.id).exists()
    assert not [d for d in sync.reconcile(bare) if d.target_id == room.id and d.kind == "breach"]


def test_a_breach_whose_repair_failed_is_tried_again_and_its_listing_closed(bare, world):
    room, manager = world["room"], world["manager"]
    world_readable = {"history_visibility": "world_readable"}
    assert manager.put_state(room.id, "m.room.history_visibility", world_readable).is_success
    caught_up(bare)
    # As if that repair had failed: listed as not put back, and the room still open.
    PolicyBreach.objects.filter(target_id=room.id).update(undone="", undone_at=None)
    assert manager.put_state(room.id, "m.room.history_visibility", world_readable).is_success
    caught_up(bare)
    assert manager.state(room.id, "m.room.history_visibility")["history_visibility"] == "shared"
    (listed,) = PolicyBreach.objects.filter(target_id=room.id)
    assert listed.undone_at is not None
    assert len(breach_entries(room.id, "history")) == 1  # recorded once
