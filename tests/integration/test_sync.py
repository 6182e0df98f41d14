"""The sync worker against the real Synapse: changes made by real Matrix users through the
client API reach the index and the audit log; a killed worker resumes without loss or
doubles; reconcile finds what was planted on the server behind the index's back."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from portal.models import AuditEntry
from rooms import index, sync
from rooms.backend.errors import ChatNotFound
from rooms.backend.records import Privacy, RoomSettings
from rooms.models import IndexDifference, IndexStream
from tests.conftest import ROOT, unique

pytestmark = pytest.mark.django_db


@pytest.fixture
def following(chat):
    """The index follows the stream from now on (no full rebuild of the session's rooms)."""
    IndexStream.objects.update_or_create(
        key=sync.STREAM, defaults={"next_batch": chat.stream_position()}
    )
    return chat


def caught_up(chat) -> None:
    """Apply the stream until a short wait brings nothing more (as the worker would)."""
    while sync.sync_once(chat, timeout_ms=300).rooms:
        pass


def test_changes_made_in_a_chat_client_reach_the_index_and_the_audit_log(
    following, make_room, category_world, creator
):
    room = make_room()
    manager = category_world["creator"]  # the room's Manager, in their chat client
    member = category_world["member"]
    assert manager.join(room.id).is_success  # invited when the room was made
    caught_up(following)
    assert manager.put_state(room.id, "m.room.name", {"name": "Renamed in Element"}).is_success
    assert manager.put_state(room.id, "m.room.topic", {"topic": "Set in Element"}).is_success
    assert manager.invite(room.id, member.user_id).is_success
    caught_up(following)

    indexed = index.room(room.id)
    assert indexed.name == "Renamed in Element"
    assert indexed.settings.description == "Set in Element"
    assert member.user_id in indexed.members
    assert index.name_taken("renamed in element")
    assert not index.name_taken(room.name)  # the old name is free again
    entries = AuditEntry.objects.filter(action="chat.room.changed", target_id=room.id)
    assert entries.count() == 1  # one entry per room per batch, with everything changed
    entry = entries.get()
    assert entry.actor_chat_id == manager.user_id
    assert entry.actor is None
    assert entry.category_label == category_world["category"].name
    assert entry.before["name"] == room.name
    assert entry.after["name"] == "Renamed in Element"
    assert entry.after["source"] == "chat server"
    assert member.user_id in entry.after["members"]


def test_kicks_power_levels_and_join_rules_reach_the_index(following, make_room, category_world):
    room = make_room()
    manager, member = category_world["creator"], category_world["member"]
    assert manager.join(room.id).is_success
    assert manager.invite(room.id, member.user_id).is_success
    caught_up(following)
    assert member.user_id in index.room(room.id).members

    assert manager.kick(room.id, member.user_id).is_success
    levels = manager.state(room.id, "m.room.power_levels")
    levels["users"][member.user_id] = 100
    assert manager.put_state(room.id, "m.room.power_levels", levels).is_success
    assert manager.put_state(room.id, "m.room.join_rules", {"join_rule": "invite"}).is_success
    caught_up(following)

    indexed = index.room(room.id)
    assert member.user_id not in indexed.members
    assert member.user_id in indexed.managers
    assert indexed.settings.privacy is Privacy.SECRET
    changed = AuditEntry.objects.filter(action="chat.room.changed", target_id=room.id)
    assert {key for entry in changed for key in entry.after} >= {
        "members",
        "managers",
        "privacy",
    }


def test_the_portals_own_changes_are_not_audited_twice(following, make_room):
    room = make_room()  # audited as room.create by the portal, indexed at once
    caught_up(following)
    assert not AuditEntry.objects.filter(action__startswith="chat.", target_id=room.id).exists()


def test_a_room_reshaped_outside_the_portal_is_a_difference_not_a_crash(
    following, make_room, category_world
):
    room = make_room()
    category = category_world["category"]
    # Someone unlinks the room from its category with an admin tool.
    following._put_state(room.id, "m.space.parent", {}, category.id)
    caught_up(following)
    with pytest.raises(ChatNotFound):
        index.room(room.id)
    difference = IndexDifference.objects.get(target_id=room.id)
    assert difference.kind == "not readable"
    assert any(d.target_id == room.id for d in sync.reconcile(following))


def test_a_stream_position_the_server_does_not_know_means_a_full_resync(following, make_room):
    room = make_room()
    index.drop(room.id)  # the index lost it
    IndexStream.objects.filter(key=sync.STREAM).update(next_batch="not-a-position")
    caught_up(following)
    assert index.room(room.id).name == room.name
    assert AuditEntry.objects.filter(action="index.resynced").exists()


def test_reconcile_finds_a_divergence_planted_on_the_server_and_fixes_it(chat, make_room):
    room = make_room()
    # Changed on the server behind the index's back (no sync worker running).
    chat._put_state(room.id, "m.room.topic", {"topic": "Planted"})
    found = [d for d in sync.reconcile(chat) if d.target_id == room.id]
    assert [d.kind for d in found] == ["differs"]
    assert "description" in found[0].detail
    assert index.room(room.id).settings.description != "Planted"

    sync.reconcile(chat, fix=True)
    assert index.room(room.id).settings.description == "Planted"
    assert not [d for d in sync.reconcile(chat) if d.target_id == room.id]


def test_one_worker_leads_and_another_takes_over_when_its_lease_lapses():
    assert sync.take_lead("a", lease=60)
    assert not sync.take_lead("b", lease=60)
    assert sync.take_lead("a", lease=0)  # renewed, and lapsing at once
    assert sync.take_lead("b", lease=60)
    sync.let_go("b")
    assert sync.take_lead("a", lease=60)


WORKER_READY = "Sync worker started"


def test_a_killed_worker_resumes_without_loss_or_doubles(chat, category_world, portal_on_chat):
    """Changes made while the worker runs, while it is dead (killed with SIGKILL mid-way)
    and after it restarts all reach its index, each audited exactly once."""
    manager = category_world["creator"]
    category = category_world["category"]
    room = chat.create_room(
        RoomSettings(unique("Followed "), "", category.id, Privacy.CLOSED),
        managers=[manager.user_id],
        members=[manager.user_id],
    )

    def manage(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=portal_on_chat,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def start() -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "index_sync"],
            cwd=ROOT,
            env=portal_on_chat,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # Ready once it says so (its signal handlers are set by then), however long a
        # loaded machine takes to start Django.
        assert process.stdout is not None
        for line in process.stdout:
            if "Sync worker started" in line:
                break
        return process

    assert manager.join(room.id).is_success
    assert manage("index_rebuild").returncode == 0
    worker = start()
    try:
        topics = [f"Topic {n}" for n in range(8)]  # within a chat user's burst of messages
        for n, topic in enumerate(topics):
            assert manager.put_state(room.id, "m.room.topic", {"topic": topic}).is_success
            if n == 3:
                time.sleep(0.5)
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=30)
            if n == 5:
                worker = start()
        time.sleep(1)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=120) == 0, worker.stdout.read() if worker.stdout else ""
    finally:
        worker.kill()
    assert manage("index_sync", "--once").returncode == 0  # whatever is left in the stream
    shown = manage("shell", "-c", SHOW % room.id)
    assert shown.returncode == 0, shown.stderr
    description, audited = shown.stdout.strip().splitlines()[-2:]
    assert description == topics[-1]
    # Every audited change is a real one: no topic recorded twice in a row.
    seen = audited.split("|")
    assert seen[-1] == topics[-1]
    assert len(seen) == len(set(seen))


SHOW = """
from portal.models import AuditEntry
from rooms import index
print(index.room(%r).settings.description)
print("|".join(e.after["description"] for e in AuditEntry.objects.filter(
    action="chat.room.changed").order_by("id")))
"""


def test_with_the_worker_silent_pages_say_how_old_the_index_is(client, make_room, creator):
    room = make_room()
    client.force_login(creator)
    IndexStream.objects.update_or_create(
        key=sync.STREAM,
        defaults={"synced_at": timezone.now() - timedelta(minutes=5), "next_batch": "s1"},
    )
    page = client.get(reverse("rooms:detail", args=[room.id]))
    assert page.status_code == 200
    # No worker leads: that is what is stale, and changes still reach the chat server.
    assert "not been brought up to date for 5 minutes" in page.content.decode()
    assert "its sync worker is not running" in page.content.decode()
    IndexStream.objects.filter(key=sync.STREAM).update(
        leader="worker", lease_until=timezone.now() + timedelta(seconds=8)
    )
    page = client.get(reverse("rooms:detail", args=[room.id]))
    assert "has not been heard from for 5 minutes" in page.content.decode()  # it leads
    health = client.get(reverse("health"))
    assert (health.status_code, health.json()["index"]) == (503, "stale")

    IndexStream.objects.filter(key=sync.STREAM).update(synced_at=timezone.now())
    cache.delete(sync.SYNCED_AT_KEY)  # read again within a second in a running portal
    listed = client.get(reverse("rooms:list")).content.decode()
    assert "has not been heard from" not in listed
    assert "not been brought up to date" not in listed
    assert client.get(reverse("health")).status_code == 200


def test_with_the_chat_server_away_the_worker_backs_off_and_comes_back(chat):
    """The server is away for three polls: the worker waits longer each time, then
    follows the stream again as soon as it answers."""
    IndexStream.objects.update_or_create(
        key=sync.STREAM, defaults={"next_batch": chat.stream_position()}
    )
    from rooms.backend.errors import ChatServerUnavailable

    polls: list[str] = []
    slept: dict[int, float] = {}  # after which poll, how long in all

    def sleep(seconds: float) -> None:
        slept[len(polls)] = slept.get(len(polls), 0) + seconds

    def server():
        polls.append("poll")
        if len(polls) <= 3:
            raise ChatServerUnavailable("The chat server cannot be reached.")
        return chat

    sync.run(server, should_stop=lambda: len(polls) >= 5, name="test", sleep=sleep)
    # Backing off, then no more waiting once it answers.
    assert slept == {1: pytest.approx(1.0), 2: pytest.approx(2.0), 3: pytest.approx(4.0)}
    assert IndexStream.objects.get(key=sync.STREAM).synced_at is not None
    assert IndexStream.objects.get(key=sync.STREAM).leader == ""  # let go on the way out


@pytest.mark.django_db(transaction=True)  # autocommit, as the worker runs
def test_a_locked_database_is_waited_out_not_fatal(chat, monkeypatch):
    """SQLite's "database is locked" (another writer held it too long) once killed the
    worker: now it backs off, as for the chat server, and goes on."""
    from django.db import OperationalError

    IndexStream.objects.update_or_create(
        key=sync.STREAM, defaults={"next_batch": chat.stream_position()}
    )
    real_take_lead = sync.take_lead
    tries: list[str] = []

    def locked_twice(name: str, **kwargs) -> bool:
        tries.append(name)
        if len(tries) <= 2:
            raise OperationalError("database is locked")
        return real_take_lead(name, **kwargs)

    monkeypatch.setattr(sync, "take_lead", locked_twice)
    slept: list[float] = []
    sync.run(lambda: chat, should_stop=lambda: len(tries) >= 4, name="test", sleep=slept.append)
    assert sum(slept) == pytest.approx(1.0 + 2.0)  # backed off twice, then worked
    assert IndexStream.objects.get(key=sync.STREAM).synced_at is not None


def test_a_worker_told_to_stop_while_it_backs_off_stops_at_once():
    """SIGTERM during half a minute of backoff is not kept waiting."""
    from rooms.backend.errors import ChatServerUnavailable

    stop: list[bool] = []
    slept: list[float] = []

    def server():
        raise ChatServerUnavailable("The chat server cannot be reached.")

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            stop.append(True)  # the signal arrives while it waits

    sync.run(server, should_stop=lambda: bool(stop), name="test", sleep=sleep)
    assert sum(slept) < 1.0
