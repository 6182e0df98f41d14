"""Moderation: what is said in rooms.

- Reading a room's history (portal administrators and compliance officers): a page of
  messages, by person, text and dates; every page read is audited (`moderation.read`: who
  read which room, which range and filters).
- Removing chosen messages (redaction, the reason shown in their place, and a notice in
  the room if asked), audited (`moderation.remove`).
- Compliance export of a room over a date range (administrators, compliance officers): JSON Lines,
  a header, one line per message (uploads with their address) and per membership change,
  and a last line with the SHA-256 of every line before it, so a reviewer can tell the
  file is whole; audited (`moderation.export`). An encrypted room is refused as not
  exportable (the portal cannot read it), never exported empty.
- Reported messages (what chat users report from their clients): listed to the room's
  Managers and to administrators, dismissed or the message removed; each decision audited
  (`moderation.report`) and the report closed.
- Clearing a room's history up to a moment, as Persistent Chat's Clear-CsPersistentChatRoom
  did: previewed with the count, confirmed by typing the room's name, recorded as an
  operation before the chat server is asked (Retry finishes one that stopped), audited."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO, TypedDict, cast

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from accounts.models import User
from portal.audit import AuditScope, audit_record, audited, current_request
from portal.models import Outcome
from rooms import operations, processes, rsmf
from rooms.backend.errors import ChatBackendError
from rooms.backend.matrix.moderation import (
    COUNT_PAGE,
    Message,
    MessageCount,
    MessagePage,
    Report,
    RoomEvent,
)
from rooms.backend.records import Role, Room
from rooms.chatserver.text import clean
from rooms.index import chat_backend
from rooms.models import IndexedRoom, Operation, RoomPerson
from rooms.permissions import can_manage, can_moderate, can_read_history
from rooms.services.roles import role_remove

CLEAR = Operation.Kind.MODERATION_CLEAR
READ = "moderation.read"
REMOVE = Operation.Kind.MODERATION_REMOVE
REMOVE_AT_MOST = 100
REASON_MAX_LENGTH = 500
ONLY_ADMINISTRATORS = "Only portal administrators clear a room's history."
ONLY_READERS = (
    "Only portal administrators, compliance officers and, where its category lets them, "
    "the room's Managers read a room's history."
)
ONLY_EXPORTERS = "Only portal administrators and compliance officers export a room's history."
ONLY_ADMINISTRATORS_REMOVE = "Only portal administrators remove messages."


class ModerationInvalid(Exception):
    """The moderation asked for cannot be done as asked (a field's problem, for its form)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _about(scope: AuditScope, room: Room) -> None:
    scope.target_id, scope.target_label = room.id, room.name
    scope.category_id = room.settings.category_id


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _checked(before: datetime) -> None:
    if before > timezone.now():
        raise ModerationInvalid(
            "before", "Choose a moment in the past: messages not yet sent stay."
        )


def history_read(
    *,
    actor: User,
    room_id: str,
    sender: str = "",
    text: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    start: str = "",
) -> MessagePage:
    """A page of the room's messages, newest first, for someone who may read them; the
    read is audited with the range and filters, the refusal too."""
    client = chat_backend()
    room = client.get_room(room_id)
    with audited(READ, actor=actor, target_kind="room") as scope:
        _about(scope, room)
        if not can_read_history(actor, room):
            raise PermissionDenied(ONLY_READERS)
        page = client.moderation.read_messages(
            room.id,
            start=start,
            senders=(sender,) if sender else (),
            text=text,
            since_ms=_millis(since) if since else 0,
            until_ms=_millis(until) if until else 0,
        )
        shown = [m.sent_ms for m in page.messages]
        scope.after = {
            "sender": sender,
            "text": text,
            "since": since.isoformat() if since else "",
            "until": until.isoformat() if until else "",
            "page": start,
            "messages": len(page.messages),
            "from": _iso(max(shown)) if shown else "",
            "to": _iso(min(shown)) if shown else "",
        }
    return page


def messages_remove(
    *, actor: User, room_id: str, event_ids: list[str], reason: str, notice: bool
) -> int:
    """Remove chosen messages (redact them, with the reason chat clients show in their
    place) and, with `notice`, say so in the room; how many were removed. Audited with the
    messages and the reason. Safe to send again after a failure part-way: the messages
    already removed are not removed twice, and the rest are."""
    client = chat_backend()
    room = client.get_room(room_id)
    chosen = list(dict.fromkeys(e.strip() for e in event_ids if e.strip()))
    reason = clean(reason).strip()
    if can_moderate(actor):  # nothing chosen or no reason: nothing is attempted
        if not chosen:
            raise ModerationInvalid("event_ids", "Choose the messages to remove.")
        if len(chosen) > REMOVE_AT_MOST:
            raise ModerationInvalid("event_ids", f"At most {REMOVE_AT_MOST} messages at once.")
        if not reason:
            raise ModerationInvalid("reason", "Say why: the reason is shown in their place.")
    with audited(REMOVE, actor=actor, target_kind="room") as scope:
        _about(scope, room)
        if not can_moderate(actor):
            raise PermissionDenied(ONLY_ADMINISTRATORS_REMOVE)
        change = Removal(messages=chosen, reason=reason, notice=notice)
        scope.after = dict(change)
        # Recorded first: a process that dies part-way leaves it listed (and audited) for
        # Retry, not some messages removed with no trace.
        with operations.recorded(
            REMOVE, actor=actor, target_id=room.id, target_label=room.name
        ) as op:
            op.change = change
            op.save(update_fields=["change", "updated_at"])
            _remove(room.id, change)
    return len(chosen)


class Removal(TypedDict):
    """A removal of chosen messages as its operation records it."""

    messages: list[str]  # event IDs
    reason: str
    notice: bool  # a notice posted in the room says how many were removed and why


class Decision(TypedDict):
    """A decision on a reported message as its operation records it."""

    report: int  # the homeserver's report ID
    message: str  # the reported event's ID
    remove: bool
    reason: str


class Clearing(TypedDict):
    """A clearing of history as its operation records it."""

    before_ms: int  # everything sent before this moment (milliseconds since the epoch)
    before: str  # the same moment as typed (ISO 8601)


def _remove(room_id: str, change: Removal) -> None:
    """Remove the messages a removal names, and post its notice (each safe to repeat)."""
    server = chat_backend().moderation
    chosen, reason = change["messages"], change["reason"]
    for event_id in chosen:
        server.remove_message(room_id, event_id, reason)
    if change["notice"]:
        said = f"{len(chosen)} message{'s' if len(chosen) > 1 else ''}"
        server.post_notice(
            room_id, f"{said} removed by a moderator: {reason}", key=f"{room_id}/{','.join(chosen)}"
        )


EXPORT = "moderation.export"
EXPORT_FORMAT = "roomportal-export-1"


ENCRYPTED = (
    "This room is encrypted: the portal cannot read its messages, so they cannot be "
    "exported. Export them from a member's chat client instead."
)


def export_lines(
    *,
    actor: User,
    since: datetime | None,
    until: datetime | None,
    room_id: str = "",
    category_id: str = "",
    person: str = "",
) -> Iterator[str]:
    """The export of one room, of every room of a category, or of what one person sent
    (in a category's rooms, or in every room of the portal), line by line. Checked and
    audited before the first line; the lines are read from the chat server as they are
    sent. One encrypted room asked for is refused; encrypted rooms among many are named in
    the header as not exportable."""
    header = _export_checked(
        actor=actor,
        since=since,
        until=until,
        room_id=room_id,
        category_id=category_id,
        person=person,
        fmt="jsonl",
    )
    return _export(header, since, until, (person,) if person else ())


def export_rsmf(
    *,
    actor: User,
    since: datetime | None,
    until: datetime | None,
    room_id: str = "",
    category_id: str = "",
    person: str = "",
) -> Iterator[bytes]:
    """As `export_lines`, as an RSMF message (`rooms.rsmf`): each room a conversation,
    the files sent in the archive with their content."""
    header = _export_checked(
        actor=actor,
        since=since,
        until=until,
        room_id=room_id,
        category_id=category_id,
        person=person,
        fmt="rsmf",
    )
    server = chat_backend().moderation
    bounds = (_millis(since) if since else 0, _millis(until) if until else 0)
    senders = (person,) if person else ()
    rooms = IndexedRoom.objects.filter(room_id__in=header["rooms"])
    titles = dict(rooms.values_list("room_id", "name"))
    names: dict[str, str] = {}  # people's display names, as the rooms know them
    for known in rooms.values_list("names", flat=True):
        names |= known
    records = (
        _exported(room_id, event)
        for room_id in header["rooms"]
        for event in server.room_events(room_id, *bounds, senders=senders)
    )

    def fetch(address: str, into: BinaryIO) -> int:
        try:
            return server.download_media(address, into, limit=rsmf.FILE_AT_MOST)
        except ChatBackendError as exc:
            raise rsmf.FileUnavailable(exc.detail) from exc

    return rsmf.write(
        conversations={r: titles.get(r, r) for r in header["rooms"]},
        names=names,
        records=records,
        fetch=fetch,
        exported_by=header["exported_by"],
    )


def _export_checked(
    *,
    actor: User,
    since: datetime | None,
    until: datetime | None,
    room_id: str,
    category_id: str,
    person: str,
    fmt: str,
) -> dict[str, Any]:
    """The header of an export: what it covers, checked and audited."""
    client = chat_backend()
    room = client.get_room(room_id) if room_id else None
    category = client.get_category(category_id) if category_id else None
    with audited(EXPORT, actor=actor, target_kind="room" if room else "export") as scope:
        if room is not None:
            _about(scope, room)
        else:
            scope.target_id = category.id if category else person
            scope.target_label = category.name if category else person
        if not actor.can_read_history:
            raise PermissionDenied(ONLY_EXPORTERS)
        scope.after = {
            "since": since.isoformat() if since else "",
            "until": until.isoformat() if until else "",
            "person": person,
            "format": fmt,
        }
        if room is not None:
            rooms = [room.id]
        else:
            found = IndexedRoom.objects.order_by("name_key", "room_id")
            if category is not None:
                found = found.filter(category_id=category.id)
            rooms = list(found.values_list("room_id", flat=True))
        encrypted = [r for r in rooms if client.moderation.read_state(r).encrypted]
        if room is not None and encrypted:
            raise ModerationInvalid("room", ENCRYPTED)
        scope.after["rooms"] = len(rooms) - len(encrypted)
    exported = [r for r in rooms if r not in encrypted]
    return {
        "kind": "export",
        "format": EXPORT_FORMAT,
        "room_id": room.id if room else "",
        "room_name": room.name if room else "",
        "category_id": category.id if category else (room.settings.category_id if room else ""),
        "person": person,
        "rooms": exported,
        "not_exportable": [{"room_id": r, "why": "encrypted"} for r in encrypted],
        "since": scope.after["since"],
        "until": scope.after["until"],
        "exported_at": timezone.now().isoformat(),
        "exported_by": actor.chat_id or actor.username,
    }


def _export(
    header: dict[str, Any], since: datetime | None, until: datetime | None, senders: tuple[str, ...]
) -> Iterator[str]:
    digest, lines = hashlib.sha256(), 0
    server = chat_backend().moderation
    bounds = (_millis(since) if since else 0, _millis(until) if until else 0)
    events = (
        _exported(room_id, event)
        for room_id in header["rooms"]
        for event in server.room_events(room_id, *bounds, senders=senders)
    )
    for record in itertools.chain([header], events):
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        digest.update(line.encode())
        lines += 1
        yield line
    yield json.dumps({"kind": "end", "lines": lines, "sha256": digest.hexdigest()}) + "\n"


def _exported(room_id: str, event: RoomEvent) -> dict[str, Any]:
    common = {"room_id": room_id, "id": event.event_id, "sent_at": _iso(event.sent_ms)}
    if event.is_membership:
        return common | {
            "kind": "membership",
            "person": event.person,
            "by": event.sender,
            "membership": event.membership,
        }
    return common | {
        "kind": "message",
        "sender": event.sender,
        "type": event.kind,
        "body": event.body,
        "file": event.file,
        "removed": event.removed,
    }


REPORT = Operation.Kind.MODERATION_REPORT
REPORTS_SHOWN = 50
NOT_YOURS = "Only the room's Managers and portal administrators decide on its reports."


def reports_for(*, user: User) -> list[Report]:
    """Open reports of the portal's rooms this person decides on (every room's, for
    administrators), newest first, the first REPORTS_SHOWN with their message's text."""
    rooms = IndexedRoom.objects.all()
    if not user.is_administrator:
        managed = RoomPerson.objects.filter(
            user_id=user.chat_id or "", role=RoomPerson.Role.MANAGER
        ).values_list("room_id", flat=True)
        rooms = rooms.filter(room_id__in=managed)
    mine = set(rooms.values_list("room_id", flat=True))
    if not mine:
        return []
    server = chat_backend().moderation
    found = [r for r in server.event_reports() if r.room_id in mine]
    # Each with the reported message's text: one more read each, for the first REPORTS_SHOWN.
    return [server.event_report(r.id) for r in found[:REPORTS_SHOWN]]


def report_decide(
    *, actor: User, report_id: int, remove: bool, remove_sender: bool = False
) -> Report:
    """Dismiss a report, or remove the reported message (the report's reason shown in
    its place) and, for administrators, its sender from every role in the room; either
    way the report is closed. Audited with the decision (each role taken, too)."""
    client = chat_backend()
    report = client.moderation.event_report(report_id)
    room = client.get_room(report.room_id)
    with audited(REPORT, actor=actor, target_kind="room") as scope:
        _about(scope, room)
        if not can_manage(actor, room):
            raise PermissionDenied(NOT_YOURS)
        if remove_sender and not actor.is_administrator:
            raise PermissionDenied("Only portal administrators remove the sender of a message.")
        scope.before = {
            "report": report.id,
            "message": report.event_id,
            "reporter": report.reporter,
            "sender": report.sender,
            "reason": report.reason,
        }
        decision = "message removed" if remove or remove_sender else "dismissed"
        scope.after = {"decision": decision + (" and its sender" if remove_sender else "")}
        # Recorded first: a process that dies part-way leaves it listed (and audited) for
        # Retry, not a message removed with its report open and no trace.
        with operations.recorded(
            REPORT, actor=actor, target_id=room.id, target_label=room.name
        ) as op:
            decided = Decision(
                report=report.id,
                message=report.event_id,
                remove=remove or remove_sender,
                reason=f"Reported: {report.reason}" if report.reason else "",
            )
            op.change = decided
            op.save(update_fields=["change", "updated_at"])
            _decide(room.id, decided)
    if remove_sender:  # a Member last: taking it takes the Presenter role with it
        for role in sorted(room.roles_of(report.sender), key=lambda r: r is Role.MEMBER):
            role_remove(actor=actor, room_id=room.id, role=role, user_id=report.sender)
    return report


def _decide(room_id: str, change: Decision) -> None:
    """Carry out a decision on a report: the message removed if so decided, the report
    closed (each safe to repeat)."""
    server = chat_backend().moderation
    if change["remove"]:
        server.remove_message(room_id, change["message"], change["reason"])
    server.close_report(change["report"])


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def clear_preview(*, actor: User, room_id: str, before: datetime) -> tuple[Room, MessageCount]:
    """How many messages clearing the room's history before `before` removes (nothing is
    changed or audited)."""
    client = chat_backend()
    room = client.get_room(room_id)
    if not can_moderate(actor):
        raise PermissionDenied(ONLY_ADMINISTRATORS)
    _checked(before)
    return room, client.moderation.count_messages_before(room.id, _millis(before))


def clear_history(*, actor: User, room_id: str, before: datetime, confirm_name: str) -> Operation:
    """Delete every message sent in the room before `before`, for everyone, for good.
    Recorded first; if the chat server fails or is still at it, the operation is left
    unfinished for Retry and the ChatBackendError is raised."""
    client = chat_backend()
    room = client.get_room(room_id)
    if can_moderate(actor):  # a moment to come or a mistyped name: nothing is attempted
        _checked(before)
        if confirm_name.strip() != room.name:
            raise ModerationInvalid(
                "confirm_name", "Type the room's name exactly as shown to confirm."
            )
    with audited(CLEAR, actor=actor, target_kind="room") as scope:
        _about(scope, room)
        if not can_moderate(actor):
            raise PermissionDenied(ONLY_ADMINISTRATORS)
        scope.after = {"cleared_before": before.isoformat()}
        with operations.recorded(
            CLEAR, actor=actor, target_id=room.id, target_label=room.name
        ) as op:
            op.change = Clearing(before_ms=_millis(before), before=before.isoformat())
            op.save(update_fields=["change", "updated_at"])
            client.moderation.clear_history(room.id, _millis(before))
    return op


def moderation_run(op: Operation, *, actor: User) -> Operation:
    """Retry of a clearing, a removal or a decision on a report that did not finish: ask
    the chat server again (each step safe to repeat); audited as `operation.retry` with
    how it ended."""
    error = ""
    try:
        if op.kind == CLEAR:
            clearing: Clearing = op.change
            chat_backend().moderation.clear_history(op.target_id, clearing["before_ms"])
        elif op.kind == REPORT:
            decided: Decision = op.change
            _decide(op.target_id, decided)
        else:
            removal: Removal = op.change
            _remove(op.target_id, removal)
    except ChatBackendError as exc:
        error = exc.detail
    op.status = Operation.Status.UNFINISHED if error else Operation.Status.SUCCEEDED
    op.error = error
    op.save()
    audit_record(
        action="operation.retry",
        outcome=Outcome.FAILED if error else Outcome.SUCCEEDED,
        actor=actor,
        target_kind="room",
        target_id=op.target_id,
        target_label=op.target_label,
        before={"operation": str(op.pk), "kind": op.kind},
        after=op.change,
        error=error,
        request_id=op.request_id,
    )
    return op


SWEEP = Operation.Kind.MODERATION_SWEEP
SWEEP_BATCH = 100  # removed at a time, between saves of where the removal stands
SWEEP_WINDOW = 1000  # matches read at a time
REMOVING_AT_ONCE = 8
SWEEP_SECONDS = 2.0
SAMPLE_SIZE = 5
# A removal's preview counts its matches exactly up to this many, then says "or more":
# the homeserver's search reads and checks each match (about 0.7 s a thousand here), and
# a preview is asked for before every removal. The removal itself takes them all, and
# its result says how many.
PREVIEW_COUNT_AT_MOST = 2_000
NO_CRITERIA = "Give a person, a phrase, or both: a removal takes only what matches."


@dataclass(frozen=True)
class Matching:
    """Which messages a removal across rooms takes: sent by `sender`, containing the words of `text`
    (any letter case), from `since` to before `until` (None: unbounded)."""

    sender: str = ""
    text: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def as_change(self) -> dict[str, Any]:
        return {
            "sender": self.sender,
            "text": self.text,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }

    @classmethod
    def of_change(cls, change: dict[str, Any]) -> Matching:
        return cls(
            sender=change["sender"],
            text=change["text"],
            since=datetime.fromisoformat(change["since"]) if change["since"] else None,
            until=datetime.fromisoformat(change["until"]) if change["until"] else None,
        )

    def page(self, room_id: str, start: str = "", limit: int = SWEEP_WINDOW) -> MessagePage:
        """The next matching messages from `start`: up to `limit`, or on to the end of the
        homeserver's search window (so that removing them shifts no later page)."""
        return chat_backend().moderation.read_messages(
            room_id,
            start=start,
            senders=(self.sender,) if self.sender else (),
            text=self.text,
            since_ms=_millis(self.since) if self.since else 0,
            until_ms=_millis(self.until) if self.until else 0,
            limit=limit,
            whole=True,
        )


@dataclass(frozen=True)
class SweepPreview:
    """What a removal across rooms would take: the rooms it reads, how many of their
    messages match (counting stops at PREVIEW_COUNT_AT_MOST: `more`), and a few of them."""

    rooms: list[tuple[str, str]]  # (room ID, name)
    count: int
    more: bool
    sample: list[tuple[str, Message]]  # (room name, message)


class SweepAt(TypedDict, total=False):
    """Where a removal across rooms stands in the room being swept."""

    start: str  # the search's next window ("" for the first)
    end: bool  # the search has no window after it
    pending: list[list[Any]]  # matches read and not yet removed: [event ID, [its files]]
    removed: int  # how many it removed in this room


class SweepResult(TypedDict):
    """What became of one room of a removal across rooms."""

    room: str
    name: str
    removed: int
    result: str  # "removed", "nothing matched" or "failed"
    detail: str  # why it failed
    at: SweepAt  # where a Retry reads on (a failed room's)


def _fresh_at() -> SweepAt:
    return {"start": "", "removed": 0}


@dataclass
class Sweep:
    """The recorded work of a `moderation.sweep` operation (its `change`, kept flat: the
    matching's fields beside the others): which messages, why, whether each room is told,
    the rooms in order and what became of each room done so far."""

    matching: Matching
    reason: str
    notice: bool
    rooms: list[str]
    results: list[SweepResult] = field(default_factory=list)
    # The room being swept.
    at: SweepAt = field(default_factory=_fresh_at)
    # After a Retry: what each room had removed before it, and where it reads on.
    earlier: dict[str, int] = field(default_factory=dict)
    resume: dict[str, SweepAt] = field(default_factory=dict)

    @classmethod
    def of(cls, op: Operation) -> Sweep:
        change = op.change
        return cls(
            Matching.of_change(change),
            str(change["reason"]),
            bool(change["notice"]),
            list(change["rooms"]),
            list(change["results"]),
            cast(SweepAt, dict(change["at"])),
            {room: int(n) for room, n in change.get("earlier", {}).items()},
            dict(change.get("resume", {})),
        )

    def into(self, op: Operation) -> None:
        op.change = self.matching.as_change() | {
            "reason": self.reason,
            "notice": self.notice,
            "rooms": self.rooms,
            "results": self.results,
            "at": self.at,
            "earlier": self.earlier,
            "resume": self.resume,
        }

    @property
    def progress(self) -> tuple[int, int]:
        return len(self.results), len(self.rooms)

    @property
    def removed(self) -> int:
        """How many messages it has removed so far."""
        ended = {r["room"] for r in self.results}
        return (
            sum(int(r["removed"]) for r in self.results)
            + sum(n for room, n in self.earlier.items() if room not in ended)
            + int(self.at["removed"])
        )


def _sweep_rooms(room_id: str, category_id: str) -> tuple[list[str], str, str]:
    """The rooms a removal reads (one, or a category's, by name), its target and label."""
    client = chat_backend()
    if room_id:
        room = client.get_room(room_id)
        return [room.id], room.id, room.name
    category = client.get_category(category_id)
    found = IndexedRoom.objects.filter(category_id=category.id).order_by("name_key", "room_id")
    return list(found.values_list("room_id", flat=True)), category.id, category.name


def _checked_matching(matching: Matching) -> None:
    if not matching.sender and not matching.text.strip():
        raise ModerationInvalid("text", NO_CRITERIA)


def sweep_preview(
    *, actor: User, matching: Matching, room_id: str = "", category_id: str = ""
) -> SweepPreview:
    """Count what a removal of `matching` messages in a room or a category would take,
    with a sample (nothing is changed or audited)."""
    if not can_moderate(actor):
        raise PermissionDenied(ONLY_ADMINISTRATORS_REMOVE)
    _checked_matching(matching)
    rooms, _, _ = _sweep_rooms(room_id, category_id)
    names = dict(IndexedRoom.objects.filter(room_id__in=rooms).values_list("room_id", "name"))
    count, sample = 0, list[tuple[str, Message]]()
    for room in rooms:
        start = ""
        while count < PREVIEW_COUNT_AT_MOST:
            page = matching.page(room, start, limit=min(COUNT_PAGE, PREVIEW_COUNT_AT_MOST - count))
            shown = [m for m in page.messages if not m.removed]
            count += len(shown)
            sample += [(names.get(room, room), m) for m in shown[: SAMPLE_SIZE - len(sample)]]
            if not page.next:
                break
            start = page.next
    return SweepPreview(
        rooms=[(r, names.get(r, r)) for r in rooms],
        count=min(count, PREVIEW_COUNT_AT_MOST),
        more=count >= PREVIEW_COUNT_AT_MOST,
        sample=sample,
    )


def sweep_start(
    *,
    actor: User,
    matching: Matching,
    reason: str,
    notice: bool,
    room_id: str = "",
    category_id: str = "",
) -> Operation:
    """Start removing every message that matches in a room or in each room of a
    category: recorded as an operation the job runner carries out a batch at a time,
    room by room (each room's result audited as `moderation.remove`), resumed where it
    was if a worker stops; the start is audited as `moderation.sweep`."""
    reason = clean(reason).strip()
    if can_moderate(actor):  # no criteria or no reason: nothing is started
        _checked_matching(matching)
        if not reason:
            raise ModerationInvalid("reason", "Say why: the reason is shown in their place.")
    with audited(SWEEP, actor=actor, target_kind="room" if room_id else "category") as scope:
        rooms, target, label = _sweep_rooms(room_id, category_id)
        scope.target_id, scope.target_label = target, label
        if not room_id:
            scope.category_id = target
        if not can_moderate(actor):
            raise PermissionDenied(ONLY_ADMINISTRATORS_REMOVE)
        if not rooms:
            raise ModerationInvalid("category", "The category has no rooms: nothing to remove.")
        request = current_request.get()
        op = Operation(
            kind=SWEEP,
            target_id=target,
            target_label=label,
            actor=actor,
            request_id=getattr(request, "request_id", "") if request is not None else "",
            owner=processes.identity(),
        )
        Sweep(matching, reason, notice, rooms).into(op)
        op.save()
        scope.after = matching.as_change() | {
            "reason": reason,
            "notice": notice,
            "rooms": len(rooms),
            "operation": str(op.pk),
        }
    return op


def sweep_step(*, seconds: float = SWEEP_SECONDS) -> int:
    """Remove the next batches of every running removal across rooms (one each at least,
    then more for about `seconds`); how many messages were removed. Where each stands is
    saved after every batch: a worker that stops resumes from there (a message removed
    twice is harmless)."""
    removed = 0
    deadline = time.monotonic() + seconds
    running = Operation.objects.filter(kind=SWEEP, status=Operation.Status.RUNNING)
    for op in running.select_related("actor"):
        removed += _sweep_batch(op)  # one batch each, at least
        while op.status == Operation.Status.RUNNING and time.monotonic() < deadline:
            removed += _sweep_batch(op)
    return removed


def _sweep_batch(op: Operation) -> int:
    """Remove the next SWEEP_BATCH messages of the room being swept. The matches are read
    a window of SWEEP_WINDOW at a time into `at["pending"]` and removed from there, the
    next window read from where the last one ended: what was removed is never read again
    (the homeserver's search leaves removed messages out, and a window of mostly removed
    ones looked like the end of the room)."""
    work = Sweep.of(op)
    at = work.at
    room_id = work.rooms[len(work.results)]
    earlier = work.earlier.get(room_id, 0)  # before a Retry
    server = chat_backend().moderation
    removed = uncounted = 0  # this batch's; those not yet in `at`
    if at == _fresh_at():  # the room's first batch: after a Retry, where it had got to
        at |= work.resume.get(room_id, {})
    try:
        pending: list[list[Any]] = at.get("pending") or []
        if not pending and not at.get("end"):
            page = work.matching.page(room_id, at["start"], limit=SWEEP_WINDOW)
            pending = [[m.event_id, list(m.files)] for m in page.messages if not m.removed]
            at["start"], at["end"] = page.next, not page.next
        todo = pending[:SWEEP_BATCH]
        at["pending"] = pending
        # A few at once: the homeserver works on the next while it stores one.
        with ThreadPoolExecutor(REMOVING_AT_ONCE) as pool:
            asked = [
                pool.submit(
                    server.remove_message,
                    room_id,
                    event_id,
                    work.reason,
                    files=tuple((str(a), str(b)) for a, b in files),
                )
                for event_id, files in todo
            ]
        failures = [e for e in (a.exception() for a in asked) if e is not None]
        removed = uncounted = len(todo) - len(failures)
        if failures:
            raise failures[0]
        at["removed"], uncounted = at["removed"] + removed, 0
        at["pending"] = pending[len(todo) :]
        finished = not at["pending"] and at.get("end")
        total = at["removed"] + earlier
        if finished and total and work.notice:
            said = f"{total} message{'s' if total > 1 else ''}"
            server.post_notice(
                room_id,
                f"{said} removed by a moderator: {work.reason}",
                key=f"{op.pk}/{room_id}",
            )
    except ChatBackendError as exc:
        _room_done(op, work, room_id, earlier + at["removed"] + uncounted, error=exc.detail)
        return removed
    if not finished:
        work.into(op)
        op.save(update_fields=["change", "updated_at"])
    else:
        _room_done(op, work, room_id, earlier + at["removed"])
    return removed


def _without_removed(at: SweepAt) -> SweepAt:
    kept = dict(at)
    kept.pop("removed", None)
    return cast(SweepAt, kept)


def _room_done(op: Operation, work: Sweep, room_id: str, removed: int, *, error: str = "") -> None:
    """Record how a room of a removal across rooms ended (audited), and the removal's end
    after its last room."""
    name = IndexedRoom.objects.filter(room_id=room_id).values_list("name", flat=True).first()
    work.results.append(
        {
            "room": room_id,
            "name": name or room_id,
            "removed": removed,
            "result": "failed" if error else ("removed" if removed else "nothing matched"),
            "detail": error,
            # Where a Retry reads on: the window it was in, and what of it was left.
            "at": _without_removed(work.at) if error else {},
        }
    )
    work.at = _fresh_at()
    audit_record(
        action=REMOVE,
        outcome=Outcome.FAILED if error else Outcome.SUCCEEDED,
        actor=op.actor,
        target_kind="room",
        target_id=room_id,
        target_label=name or room_id,
        category_id=op.target_id if op.target_id != room_id else "",
        after=work.matching.as_change()
        | {"reason": work.reason, "removed": removed, "operation": str(op.pk)},
        error=error,
        request_id=op.request_id,
    )
    done, total = work.progress
    if done == total:
        failed = [r for r in work.results if r["result"] == "failed"]
        op.status = Operation.Status.UNFINISHED if failed else Operation.Status.SUCCEEDED
        op.error = f"{len(failed)} of {total} rooms were not finished." if failed else ""
    work.into(op)
    op.save()


def sweep_retry(op: Operation) -> Operation:
    """Hand the rooms of a removal across rooms that failed back to the worker: each is
    read on from where it had got to (`resume`: what it had removed is behind that, and
    counted in the room's result and notice: `earlier`)."""
    work = Sweep.of(op)
    kept = [r for r in work.results if r["result"] != "failed"]
    failed = [r for r in work.results if r["result"] == "failed"]
    work.earlier = {r["room"]: int(r["removed"]) for r in failed}
    work.resume = {r["room"]: r.get("at", {}) for r in failed}
    done = {r["room"] for r in kept}
    work.rooms = [r for r in work.rooms if r in done] + [r for r in work.rooms if r not in done]
    work.results, work.at = kept, _fresh_at()
    work.into(op)
    op.status, op.error = Operation.Status.RUNNING, ""
    op.save()
    return op
