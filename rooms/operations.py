"""Durable room operations: a change that takes several chat-server requests completes,
or is put back, or stays listed until someone finishes or undoes it.

An operation is recorded (committed) before its first request, with what it changes and
what those things were. Its requests are idempotent: state events are put with their
whole content and compared first, people are removed only while present and added only
while absent. So the same target can be applied again after any failure, a lost answer
included, and applying the `before` values undoes it.

- A failing request is tried three times (0.25 s and 1 s apart) when the chat server was
  unavailable; a refusal is not retried.
- If the change still fails, the `before` values are applied, with the same retries:
  the operation is undone and the audit entry says so.
- If that fails too, the operation is unfinished: the person is told, the room's page and
  the administrators' list of unfinished changes show it with Retry and Undo.
- A portal process killed mid-way leaves the operation running; the job runner finishes
  it (applies the change again) on its next round when that process ran on the same
  machine and is gone (`rooms.processes`), or once it has been left for `ABANDONED_AFTER`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any, TypedDict, TypeVar, cast

from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from portal.audit import audit_record, current_request
from portal.models import Outcome
from rooms import processes
from rooms.backend.errors import ChatBackendError, ChatServerUnavailable
from rooms.backend.records import (
    AddIn,
    ChatOptions,
    Invitations,
    Privacy,
    Role,
    Room,
    RoomSettings,
)
from rooms.index import chat_backend
from rooms.locks import one_writer
from rooms.models import Operation

log = logging.getLogger(__name__)
T = TypeVar("T")
Status = Operation.Status

RETRY_DELAYS = (0.25, 1.0)
ABANDONED_AFTER = timedelta(seconds=90)


class OperationError(ChatBackendError):
    """A change failed part-way; `outcome` is how it ended for the audit log."""

    outcome = Outcome.FAILED

    def __init__(self, detail: str, *, operation: Operation, code: str = "") -> None:
        super().__init__(detail, code=code)
        self.operation = operation


class OperationUndone(OperationError):
    outcome = Outcome.UNDONE


class OperationUnfinished(OperationError):
    outcome = Outcome.PARTIAL


def audit_retry(op: Operation, *, actor: User, left: dict[str, int]) -> None:
    """A job handed back to the job runner by Retry (or its owner's Resume), in the audit
    log with what is left of it (`left`: rooms or people)."""
    audit_record(
        action="operation.retry",
        outcome=Outcome.SUCCEEDED,
        actor=actor,
        target_kind="operation",
        target_id=str(op.pk),
        target_label=op.target_label,
        before={"operation": str(op.pk), "kind": op.kind},
        after=left,
        request_id=op.request_id,
    )


def retrying(step: Callable[[], T], operation: Operation) -> T:
    """Run a step, again after an unavailable chat server (it is idempotent)."""
    for delay in (*RETRY_DELAYS, None):
        operation.attempts += 1
        try:
            return step()
        except ChatServerUnavailable:
            if delay is None:
                raise
            log.info("Retrying %s on %s in %.2fs", operation.kind, operation.target_id, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


class SettingsFields(TypedDict, total=False):
    """Some of a room's settings, spelled as an audit snapshot spells them."""

    name: str
    description: str
    category_id: str
    privacy: str
    auditorium: bool
    invitations: str


class OptionsFields(TypedDict, total=False):
    """Some of a room's chat options (`ChatOptions`'s fields)."""

    chat_history: bool
    file_uploads: bool
    keep_days: int
    managers_read: bool


class AddInFields(TypedDict):
    """An add-in as a room operation records it."""

    id: str
    name: str
    url: str


class RoomTarget(TypedDict, total=False):
    """What a room operation makes of the room (its `change`) or puts back (its `before`):
    only the parts it touches, stored as they are."""

    remove: dict[str, list[str]]  # person → roles taken away first
    settings: SettingsFields
    disabled: bool
    options: OptionsFields
    add_ins: dict[str, AddInFields | None]  # add-in ID → the add-in, or None for none
    add: dict[str, list[str]]  # person → roles given (back) last


def options_fields(options: ChatOptions) -> OptionsFields:
    """A room's chat options as an operation records them (as audit entries hold them)."""
    return cast(OptionsFields, options.values())


def add_in_fields(add_in: AddIn) -> AddInFields:
    """An add-in as an operation records it."""
    return cast(AddInFields, asdict(add_in))


def target_of(op: Operation, *, undo: bool = False) -> RoomTarget:
    """An operation's recorded change (or, `undo`, what it puts back)."""
    return cast(RoomTarget, op.before if undo else op.change)


@dataclass
class Progress:
    """Whether a change request was sent: until then a failure changed nothing."""

    wrote: bool = False


def apply(
    room_id: str,
    target: RoomTarget,
    progress: Progress | None = None,
    *,
    leave: str = "",
) -> Room:
    """Make the room what `target` says, changing only what differs: people to remove
    (`remove`: person → roles), settings (`settings`: field → value), no link left with
    the category it `leave`s (a move's other end), disabled or not, its chat options
    (`options`: field → value), its add-ins (`add_ins`: ID → the add-in, or None for
    none), people to add back (`add`). Safe to repeat."""
    progress = progress or Progress()
    client = chat_backend()
    # Read from the chat server, not the index: after a failure the index may not know
    # what was applied.
    room = client.room_on_server(room_id)
    for person, roles in target.get("remove", {}).items():
        for role in sorted(map(Role, roles), key=lambda r: r is Role.MEMBER):
            if person in room.principals(role):
                progress.wrote = True
                client.remove_from_role(room_id, role, [person])
                room = client.room_on_server(room_id)
    wanted = settings_from(room, target.get("settings", {}))
    if wanted != room.settings:
        progress.wrote = True
        room = client.update_room(room_id, wanted, current=room)
    if leave and leave != room.settings.category_id:
        progress.wrote = True
        client.unlink_room(room_id, leave)
    if "disabled" in target:  # block, settings, power to post: each sent only if it differs
        progress.wrote = True
        room = client.set_room_disabled(room_id, target["disabled"])
    options = replace(room.options, **target.get("options", {}))
    if options != room.options:
        progress.wrote = True
        room = client.set_room_options(room_id, options)
    for add_in_id, asked in target.get("add_ins", {}).items():
        held = next((a for a in room.add_ins if a.id == add_in_id), None)
        if held != (AddIn(**asked) if asked else None):
            progress.wrote = True
            if asked:
                room = client.attach_add_in(room_id, AddIn(**asked))
            else:
                room = client.detach_add_in(room_id, add_in_id)
    added = False
    for person, roles in target.get("add", {}).items():
        for role in map(Role, roles):
            if person not in room.principals(role):
                progress.wrote = True
                client.add_to_role(room_id, role, [person])
                added = True
    return client.get_room(room_id) if added else room


def settings_from(room: Room, values: SettingsFields) -> RoomSettings:
    """The room's settings with these fields (as an audit snapshot spells them) changed."""
    typed: dict[str, Any] = dict(values)
    if "privacy" in typed:
        typed["privacy"] = Privacy(typed["privacy"])
    if "invitations" in typed:
        typed["invitations"] = Invitations(typed["invitations"])
    return replace(room.settings, **typed)


@dataclass
class Tracker:
    """What a service holds while its operation runs inside the room's writer lock."""

    operation: Operation
    started: bool = False

    def run(
        self,
        room: Room,
        *,
        change: RoomTarget | None = None,
        remove: dict[str, list[str]] | None = None,
    ) -> Room:
        """Apply the change (as recorded, or as refined under the lock) to the room as read
        under the lock, taking these roles away first; if it cannot be completed, put
        everything back."""
        op = self.operation
        change = change or target_of(op)
        before = before_of(room, change)
        if remove:
            change, before = {**change, "remove": remove}, {**before, "add": remove}
        op.change, op.before, self.started = change, before, True
        progress = Progress()
        try:
            return retrying(lambda: apply(op.target_id, change, progress, leave=other_end(op)), op)
        except ChatBackendError as exc:
            if not progress.wrote:
                raise  # it failed before asking for any change: nothing to put back
            failure = exc
        try:
            retrying(lambda: apply(op.target_id, before, leave=other_end(op, undo=True)), op)
        except ChatBackendError as undo_failure:
            raise OperationUnfinished(
                f"{failure.detail} The change may be only partly made and could not be put back "
                f"({undo_failure.detail}). It is listed under Unfinished changes, where a "
                "portal administrator can finish or undo it.",
                operation=op,
                code=failure.code,
            ) from failure
        raise OperationUndone(
            f"{failure.detail} What had been changed was put back: the room is as it was.",
            operation=op,
            code=failure.code,
        ) from failure


def before_of(room: Room, change: RoomTarget) -> RoomTarget:
    """What the fields `change` touches are in this room now."""
    values: SettingsFields = {
        "name": room.settings.name,
        "description": room.settings.description,
        "category_id": room.settings.category_id,
        "privacy": str(room.settings.privacy),
        "auditorium": room.settings.auditorium,
        "invitations": str(room.settings.invitations),
    }
    touched = change.get("settings", {})
    before: RoomTarget = {
        "settings": cast(SettingsFields, {k: v for k, v in values.items() if k in touched})
    }
    if "disabled" in change:
        before["disabled"] = room.disabled
    if "options" in change:
        now = options_fields(room.options).items()
        before["options"] = cast(OptionsFields, {k: v for k, v in now if k in change["options"]})
    if "add_ins" in change:
        held = {a.id: add_in_fields(a) for a in room.add_ins}
        before["add_ins"] = {add_in_id: held.get(add_in_id) for add_in_id in change["add_ins"]}
    return before


@contextmanager
def tracked(kind: str, *, actor: User, room_id: str, change: RoomTarget) -> Iterator[Tracker]:
    """Record the operation, committed, before the writer lock is taken and its first
    request made (`before` as the index holds the room); record how it ended. One that
    never started (refused, nothing to do) leaves no record."""
    request = current_request.get()
    room = chat_backend().get_room(room_id)
    tracker = Tracker(
        Operation.objects.create(
            kind=kind,
            target_id=room.id,
            target_label=room.name,
            actor=actor,
            request_id=getattr(request, "request_id", "") if request is not None else "",
            change=change,
            before=before_of(room, change),
            owner=processes.identity(),
        )
    )
    op = tracker.operation
    try:
        yield tracker
    except OperationError as exc:
        op.status = Status.UNDONE if isinstance(exc, OperationUndone) else Status.UNFINISHED
        op.error = exc.detail
        op.save()
        raise
    except ChatBackendError as exc:
        if not tracker.started:
            op.delete()
            raise
        op.status, op.error = Status.FAILED, exc.detail  # before any change was asked for
        op.save()
        raise
    except BaseException as exc:
        if not tracker.started:
            op.delete()
            raise
        op.status, op.error = Status.UNFINISHED, f"{type(exc).__name__}: {exc}"
        op.save()
        raise
    if tracker.started:
        op.status = Status.SUCCEEDED
        op.save()
    else:
        op.delete()


@contextmanager
def recorded(kind: str, *, actor: User, target_id: str, target_label: str) -> Iterator[Operation]:
    """Record a change whose steps are each safe to repeat (a category's scope change)
    before its first request; if it stops part-way it is left unfinished, for Retry
    (applying it again). Applying the same change again later finishes earlier ones."""
    request = current_request.get()
    op = Operation.objects.create(
        kind=kind,
        target_id=target_id,
        target_label=target_label,
        actor=actor,
        request_id=getattr(request, "request_id", "") if request is not None else "",
        owner=processes.identity(),
    )
    try:
        yield op
    except BaseException as exc:
        op.status = Status.UNFINISHED
        op.error = exc.detail if isinstance(exc, ChatBackendError) else f"{type(exc).__name__}"
        op.save()
        raise
    op.status = Status.SUCCEEDED
    op.save()
    Operation.objects.filter(
        kind=kind, target_id=target_id, status=Status.UNFINISHED, change=op.change
    ).update(status=Status.SUCCEEDED)


def unfinished(room_id: str = "") -> list[Operation]:
    """Operations that neither completed nor were undone, newest first."""
    rows = Operation.objects.filter(status=Status.UNFINISHED).select_related("actor")
    if room_id:
        rows = rows.filter(target_id=room_id)
    return list(rows.order_by("-created_at"))


def other_end(op: Operation, *, undo: bool = False) -> str:
    """The category a move (or its undoing) leaves: the room must keep no link with it."""
    source, destination = target_of(op, undo=True), target_of(op)
    if undo:
        source, destination = destination, source
    left = source.get("settings", {}).get("category_id", "")
    return left if destination.get("settings", {}).get("category_id") else ""


def _converge(op: Operation, undo: bool) -> tuple[Room | None, str]:
    """Apply the change (or `before`) under the room's writer lock: the room, or what
    went wrong."""
    target = target_of(op, undo=undo)
    with one_writer(op.target_id):
        try:
            leave = other_end(op, undo=undo)
            return retrying(lambda: apply(op.target_id, target, leave=leave), op), ""
        except ChatBackendError as exc:
            return None, exc.detail


def finish(op: Operation, *, actor: User | None, undo: bool) -> Operation:
    """Retry an unfinished (or abandoned) operation, or undo it; audited as
    `operation.retry` / `operation.undo` with how it ended."""
    target = target_of(op, undo=undo)
    room, error = _converge(op, undo)
    outcome = Outcome.SUCCEEDED if room else Outcome.FAILED
    op.status = (Status.UNDONE if undo else Status.SUCCEEDED) if room else Status.UNFINISHED
    op.error = error or op.error
    op.save()
    audit_record(
        action="operation.undo" if undo else "operation.retry",
        outcome=outcome,
        actor=actor,
        target_kind="room",
        target_id=op.target_id,
        target_label=room.name if room else op.target_label,
        category_id=room.settings.category_id if room else "",
        before={"operation": str(op.id), "kind": op.kind},
        after=target,
        error=error,
        request_id=op.request_id,
    )
    return op


def resume_abandoned(*, now: Any = None) -> list[Operation]:
    """Finish operations whose process died mid-way (its process is gone from this
    machine, or it was left running past ABANDONED_AFTER): the change is applied again.
    Their own audit entry was never written; this writes it, with how it ended."""
    cutoff = (now or timezone.now()) - ABANDONED_AFTER
    running = Operation.objects.filter(status=Status.RUNNING).exclude(
        # the worker runs these a part at a time: they are not abandoned
        kind__in=Operation.JOBS
    )
    orphans = [
        pk
        for pk, owner in running.filter(updated_at__gte=cutoff).values_list("pk", "owner")
        if processes.gone(owner)
    ]
    abandoned = running.filter(Q(updated_at__lt=cutoff) | Q(pk__in=orphans))
    # A category's change, a person's removal or a clearing is left listed for Retry (it
    # is checked again when applied), and the audit entry its process never wrote says so.
    stopped = "Its portal process stopped mid-way; listed for Retry."
    for op in abandoned.exclude(kind__in=Operation.ROOM_CHANGES).select_related("actor"):
        op.status, op.error = Status.UNFINISHED, stopped
        op.save()
        audit_record(
            action=op.kind,
            outcome=Outcome.PARTIAL,
            actor=op.actor,
            target_kind=op.target_kind,
            target_id=op.target_id,
            target_label=op.target_label,
            after=op.change,
            error=stopped,
            request_id=op.request_id,
        )
    done = []
    for op in abandoned.filter(kind__in=Operation.ROOM_CHANGES):
        room, error = _converge(op, undo=False)
        outcome = Outcome.SUCCEEDED if room else Outcome.PARTIAL
        op.status = Status.SUCCEEDED if room else Status.UNFINISHED
        op.error = error
        op.save()
        audit_record(
            action=op.kind,
            outcome=outcome,
            actor=op.actor,
            target_kind="room",
            target_id=op.target_id,
            target_label=room.name if room else op.target_label,
            category_id=room.settings.category_id if room else "",
            before=op.before,
            after=op.change,
            error=error or "Finished by the job runner after the portal process stopped mid-way.",
            request_id=op.request_id,
        )
        done.append(op)
    return done
