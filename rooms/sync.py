"""The sync worker: follows the homeserver's event stream and keeps the index true.

It long-polls the client-server `/sync` as the service account, filtered to the state
events the portal maps. The service account is in every category and room the portal
made, and in nothing else, so the stream carries the portal's rooms and never the rest
of the server (direct messages, other people's rooms). An application service would see
every event on the server and need a registration file on the homeserver; `/sync` works
against any homeserver the portal's token reaches.

For each room the stream says changed, the worker reads the room's whole state once and
puts it into the index (`rooms.index.refresh`), under the room's writer lock, so it never
interleaves with a change the portal is making. What changed and was done by someone other
than the service account (a chat client, another admin tool) is written to the audit log
as a chat-server change, in the same transaction as the index update. The stream
position is stored after each batch: a worker killed at any moment resumes where it
stopped, re-reading a batch at most once, which changes nothing the second time.

One worker leads: it holds a lease in the database and renews it on every poll. Others
wait, and take over when the lease lapses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import F
from django.utils import timezone

from portal.audit import audit_record
from rooms import enforcement, index, operations
from rooms.backend.errors import ChatBackendError, ChatInvalid, ChatNotFound
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.backend.matrix.state import fields_of, portal_record
from rooms.backend.matrix.stream import StateKey, StreamBatch
from rooms.backend.records import Category, Room
from rooms.locks import one_writer
from rooms.models import (
    IndexDifference,
    IndexedCategory,
    IndexedRoom,
    IndexStream,
    RoomName,
)

log = logging.getLogger(__name__)

STREAM = "sync"
POLL_SECONDS = 3
LEASE_SECONDS = 8
MAX_BACKOFF_SECONDS = 30
# Past this, pages say the index may be out of date, and the health check says stale.
STALE_AFTER = timedelta(seconds=60)
SYNCED_AT_KEY = "index-synced-at"


@dataclass
class BatchResult:
    """What one pass over the stream did: how many changed rooms it indexed."""

    rooms: int = 0


def apply_changes(server: MatrixChatBackend, batch: StreamBatch) -> BatchResult:
    """Undo what chat users broke, index each changed room, audit what others changed
    (and what the homeserver refused); then store the position."""
    result = BatchResult(rooms=len(batch.rooms))
    for report in batch.refusals:
        enforcement.audit_refusal(report)
    for room_id, changed in sorted(batch.rooms.items()):
        with one_writer(room_id):
            enforcement.enforce(server, room_id, changed)
            change = index.refresh(server, room_id)
            if changed:
                audit_external(change, changed)
    IndexStream.objects.update_or_create(
        key=STREAM, defaults={"next_batch": batch.next_batch, "synced_at": timezone.now()}
    )
    return result


def audit_external(change: index.Change, changed: dict[StateKey, str]) -> None:
    """What chat users changed on the chat server, outside the portal, in the audit log:
    an entry per person, with the fields their own changes made, and the other state
    they changed (an avatar, custom state) that the index does not map."""
    verb = "appeared" if change.before is None else "gone" if change.after is None else "changed"
    fields = change.changed
    by_sender: dict[str, set[StateKey]] = {}
    for key, sender in changed.items():
        by_sender.setdefault(sender, set()).add(key)
    senders = sorted(by_sender)
    category_label = (
        IndexedCategory.objects.filter(category_id=change.category_id)
        .values_list("name", flat=True)
        .first()
        or ""
    )
    for sender in senders:
        kinds = {kind for kind, _ in by_sender[sender]}
        mine = {
            key: values
            for key, values in fields.items()
            # With one sender, everything that changed is theirs.
            if len(senders) == 1 or any(key in fields_of(kind) for kind in kinds)
        }
        other = sorted(kind for kind in kinds if not fields_of(kind))
        if not mine and not other and verb == "changed":
            continue
        after: dict[str, Any] = {"source": "chat server"}
        if change.after:
            after |= {key: new for key, (_, new) in mine.items()}
        if other:
            after["other_state"] = other
        audit_record(
            action=f"chat.{change.kind}.{verb}",
            chat_actor=sender,
            target_kind=change.kind,
            target_id=change.target_id,
            target_label=change.label,
            category_id=change.category_id,
            category_label=category_label,
            before={key: old for key, (old, _) in mine.items()} if change.before else None,
            after=after,
        )


def rebuild(
    server: MatrixChatBackend, *, progress: Callable[[int, int], None] | None = None
) -> int:
    """Read every room and space the service account is in, and make the index exactly
    that: what the server no longer has is dropped. Returns how many were read."""
    ids = server.joined_room_ids()
    for done, target_id in enumerate(ids, 1):
        with one_writer(target_id):
            try:
                index.apply(target_id, server.read(target_id))
            except ChatNotFound:
                index.drop(target_id)
        if progress:
            progress(done, len(ids))
    present = set(ids)
    for gone in set(IndexedRoom.objects.values_list("room_id", flat=True)) - present:
        index.drop(gone)
    for gone in set(IndexedCategory.objects.values_list("category_id", flat=True)) - present:
        index.drop(gone)
    IndexStream.objects.update_or_create(key=STREAM, defaults={"rebuilt_at": timezone.now()})
    return len(ids)


def resync(server: MatrixChatBackend, *, reason: str) -> str:
    """Start over: take the position first, then rebuild, so nothing made meanwhile is
    missed (what the rebuild already has is applied again, changing nothing)."""
    log.warning("Rebuilding the room index from the chat server: %s", reason)
    since = server.stream_position()
    count = rebuild(server)
    IndexStream.objects.update_or_create(
        key=STREAM, defaults={"next_batch": since, "synced_at": timezone.now()}
    )
    audit_record(
        action="index.resynced",
        target_kind="index",
        target_label="Room index",
        after={"reason": reason, "read": count},
    )
    return since


def sync_once(server: MatrixChatBackend, *, timeout_ms: int = POLL_SECONDS * 1000) -> BatchResult:
    """One long-poll from the stored position (a full resync when there is none, or the
    server no longer knows it), applied to the index."""
    stream = IndexStream.objects.filter(key=STREAM).first()
    since = stream.next_batch if stream else ""
    if not since:
        since = resync(server, reason="the index had no stream position")
    try:
        batch = server.read_stream(since=since, timeout_ms=timeout_ms)
    except (ChatInvalid, ChatNotFound) as exc:
        # The server does not know the position any more (a stream gap).
        resync(server, reason=f"the chat server no longer knows the stream position ({exc})")
        return BatchResult()
    return apply_changes(server, batch)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def take_lead(name: str, *, lease: float = LEASE_SECONDS, key: str = STREAM) -> bool:
    """Hold (or renew) the lead for `lease` seconds, unless another worker holds it: of
    the sync workers, or (`key`) of another kind of worker (the job runners)."""
    now = timezone.now()
    with transaction.atomic():
        IndexStream.objects.get_or_create(key=key)
        stream = IndexStream.objects.select_for_update().get(key=key)
        if stream.leader not in ("", name) and stream.lease_until and stream.lease_until > now:
            return False
        stream.leader = name
        stream.lease_until = now + timedelta(seconds=lease)
        stream.save(update_fields=["leader", "lease_until"])
        return True


def let_go(name: str, *, key: str = STREAM) -> None:
    IndexStream.objects.filter(key=key, leader=name).update(leader="", lease_until=None)


def index_age() -> timedelta | None:
    """How long ago the worker last heard from the chat server (None: never). Read from
    the database at most once a second per process: every page asks."""
    synced_at = cache.get_or_set(SYNCED_AT_KEY, _synced_at, timeout=1)
    return None if synced_at is None else timezone.now() - synced_at


def worker_died(code: int, *, key: str = STREAM) -> None:
    """What a worker's supervisor records of its death (the sync worker's, or `key`'s),
    for /health/ready."""
    death = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    log.error("The %s worker died (%s); starting it again.", key, death)
    with contextlib.suppress(DatabaseError):  # the log line stands when the database is away
        IndexStream.objects.get_or_create(key=key)
        IndexStream.objects.filter(key=key).update(
            worker_restarts=F("worker_restarts") + 1,
            worker_died_at=timezone.now(),
            worker_death=death,
        )


def worker_state(key: str = STREAM) -> dict[str, object]:
    """The sync worker (or `key`'s) as /health/ready shows it: who leads (its lease still
    runs), and how often its supervisor restarted it, when and why last."""
    stream = IndexStream.objects.filter(key=key).first()
    if stream is None:
        return {"leader": "", "restarts": 0}
    leading = stream.lease_until is not None and stream.lease_until > timezone.now()
    state: dict[str, object] = {
        "leader": stream.leader if leading else "",
        "restarts": stream.worker_restarts,
    }
    if stream.worker_died_at:
        state["last_death"] = f"{stream.worker_death} at {stream.worker_died_at.isoformat()}"
    return state


def _synced_at() -> datetime | None:
    return IndexStream.objects.filter(key=STREAM).values_list("synced_at", flat=True).first()


def run(
    server_factory: Callable[[], MatrixChatBackend],
    *,
    should_stop: Callable[[], bool],
    name: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Follow the stream until told to stop: lead or wait, back off while the chat server
    or the database is away (a locked SQLite file, a PostgreSQL restart: waited out,
    never fatal), and let go of the lead on the way out."""
    name = name or worker_name()
    backoff = 1.0
    leading = False
    try:
        while not should_stop():
            try:
                leading = _turn(server_factory, name, leading=leading)
            except (ChatBackendError, DatabaseError) as exc:
                away = "chat server" if isinstance(exc, ChatBackendError) else "database"
                log.warning("The %s is away (%s); trying again in %.0f s.", away, exc, backoff)
                if isinstance(exc, DatabaseError):
                    close_old_connections()
                pause(backoff, should_stop=should_stop, sleep=sleep)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = 1.0
            if not leading:
                pause(POLL_SECONDS, should_stop=should_stop, sleep=sleep)
    finally:
        with contextlib.suppress(DatabaseError):
            let_go(name)


def _turn(server_factory: Callable[[], MatrixChatBackend], name: str, *, leading: bool) -> bool:
    """One turn of the worker, if it leads: the stream's next batch (the recorded work
    is the job runner's, `rooms.jobs`). Whether it leads."""
    if not take_lead(name):
        if leading:
            log.warning("Another sync worker took the lead; waiting.")
        return False
    if not leading:
        log.info("Sync worker %s leads.", name)
    result = sync_once(server_factory())
    if result.rooms:
        log.debug("Indexed %d changed room(s).", result.rooms)
    return True


def pause(
    seconds: float, *, should_stop: Callable[[], bool], sleep: Callable[[float], None]
) -> None:
    """Wait, but stop waiting as soon as the worker is told to stop (a backoff of half a
    minute must not keep SIGTERM waiting)."""
    left = seconds
    while left > 0 and not should_stop():
        sleep(min(left, 0.2))
        left -= 0.2


@dataclass(frozen=True)
class Difference:
    """One way the index and the chat server disagree."""

    target_id: str
    kind: str
    detail: str

    def line(self) -> str:
        return f"{self.target_id}  {self.kind}: {self.detail}"


def reconcile(server: MatrixChatBackend, *, fix: bool = False) -> list[Difference]:
    """Compare the index with the server, room by room, and list every difference; with
    `fix`, make the index what the server has. Rooms the portal cannot read (a broken
    category link, a name held twice, a creation that never finished) are listed, and so
    are rooms whose state breaks the rules (changes from before the homeserver ran the
    portal's module, which no batch of the stream carries any more): `fix` puts those
    back too."""
    found: list[Difference] = []
    on_server = server.joined_room_ids()
    records: dict[str, Room | Category] = {}
    for target_id in on_server:
        try:
            state = server.read_state(target_id)
        except ChatNotFound:
            continue
        record = portal_record(state, service_user=server.service_user)
        ours = index.held(target_id)
        if record is None and ours is None:
            continue
        if record is not None:
            records[target_id] = record
        if isinstance(record, Room):
            found += [
                Difference(target_id, "breach", f"“{record.name}” {line}")
                for line in enforcement.sweep(server, state, record, fix=fix)
            ]
        change = index.describe(target_id, ours, record)
        if change.changed:
            what = (
                "missing from the index"
                if change.before is None
                else "not the portal's any more"
                if change.after is None
                else "differs in " + ", ".join(change.changed)
            )
            found.append(Difference(target_id, "differs", f"“{change.label}” {what}"))
            if fix:
                with one_writer(target_id):
                    index.apply(target_id, record)
    present = set(on_server)
    for row in IndexedRoom.objects.exclude(room_id__in=present).only("room_id", "name"):
        found.append(Difference(row.room_id, "gone", f"“{row.name}” is no longer on the server"))
        if fix:
            index.drop(row.room_id)
    for crow in IndexedCategory.objects.exclude(category_id__in=present).only(
        "category_id", "name"
    ):
        found.append(
            Difference(crow.category_id, "gone", f"“{crow.name}” is no longer on the server")
        )
        if fix:
            index.drop(crow.category_id)
    found += _broken_links(records)
    found += [
        Difference(d.target_id, d.kind, d.detail)
        for d in IndexDifference.objects.order_by("target_id", "kind")
    ]
    stale = timezone.now() - index.CLAIM_STALE
    found += [
        Difference(
            claim.name_key,
            "half-made",
            "a room was being created or renamed to this name and never finished "
            "(the job runner gives the name back)",
        )
        for claim in RoomName.objects.filter(room_id="", claimed_at__lt=stale)
    ]
    found += [
        Difference(op.target_id, "unfinished", f"“{op.target_label}”: {op.kind} {op.error}")
        for op in operations.unfinished()
    ]
    return found


def _broken_links(records: dict[str, Room | Category]) -> list[Difference]:
    """Rooms and categories whose links do not meet: a room whose category does not list
    it, a category listing a room that is not one of its portal rooms."""
    found = []
    for record in records.values():
        if isinstance(record, Room):
            parent = records.get(record.settings.category_id)
            if not isinstance(parent, Category) or record.id not in parent.room_ids:
                found.append(
                    Difference(
                        record.id, "broken link", f"“{record.name}” is not listed by its category"
                    )
                )
        else:
            for child in record.room_ids:
                room = records.get(child)
                if not isinstance(room, Room) or room.settings.category_id != record.id:
                    found.append(
                        Difference(
                            child,
                            "broken link",
                            f"listed by the category “{record.name}” but not one of its rooms",
                        )
                    )
    return found
