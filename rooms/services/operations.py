"""Finishing what did not finish: Retry and Undo of an unfinished operation, one rule for
the Operations page and the API alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied

from accounts.models import User
from rooms import operations
from rooms.backend.errors import ChatBackendError
from rooms.models import Operation
from rooms.services import categories as category_services
from rooms.services import directory as directory_services
from rooms.services import directory_roles
from rooms.services import moderation as moderation_services
from rooms.services import people as people_services
from rooms.services import roles as role_services
from rooms.services import rooms as room_services


@dataclass(frozen=True)
class Progress:
    """How far recorded work has got: `done` of `total` rooms, people or steps, with
    what became of each (a room's change is one step, its result its status)."""

    done: int
    total: int
    results: Sequence[Mapping[str, Any]]
    what_if: bool = False


def progress(op: Operation) -> Progress:
    """How far an operation has got, read from its kind's record of the work."""
    if op.kind == room_services.BULK:
        rooms = room_services.RoomsChange.of(op)
        return Progress(*rooms.progress, list(rooms.results), what_if=rooms.dry_run)
    if op.kind == role_services.ROLES:
        people = role_services.RoleChanges.of(op)
        return Progress(*people.progress, [line.as_result() for line in people.lines])
    if op.kind == moderation_services.SWEEP:
        sweep = moderation_services.Sweep.of(op)
        return Progress(*sweep.progress, list(sweep.results))
    if op.of_person:
        removing = people_services.Removing.of(op)
        return Progress(*removing.progress, [step.as_result() for step in removing.items])
    ended = op.status in (Operation.Status.SUCCEEDED, Operation.Status.UNDONE)
    return Progress(int(ended), 1, [])


class OperationConflict(Exception):
    """The operation is not unfinished, or it cannot be undone (only retried)."""


def operation_finish(op: Operation, *, actor: User, undo: bool) -> Operation:
    """Retry (or undo) an unfinished operation, as its kind is finished: a room's change
    is applied again (or put back), a category's or a person's is run again, a change to
    many rooms (or of a role for many people) is handed back to the job runner for the
    rooms (people) that were not changed (the answer is then running). Portal
    administrators only; each kind audits how it ended."""
    if not actor.is_administrator:
        raise PermissionDenied("Only portal administrators finish or undo unfinished changes.")
    if op.status != Operation.Status.UNFINISHED:
        raise OperationConflict(
            f"This {op.label.lower()} is {op.get_status_display().lower()}, not unfinished: "
            "there is nothing to finish or undo."
        )
    if op.of_room:
        return operations.finish(op, actor=actor, undo=undo)
    if undo:
        raise OperationConflict(f"A {op.label.lower()} is finished by Retry, not undone.")
    if directory_services.Naming.recorded_in(op):
        return directory_roles.directory_retry(op, actor=actor)
    if op.kind == role_services.ROLES:
        return role_services.role_changes_resume(op, actor=actor)
    if op.kind == people_services.KIND:
        return people_services.removal_run(op, actor=actor)
    if op.kind == category_services.ADOPT:
        return category_services.adoption_run(op, actor=actor)
    if op.kind in (
        moderation_services.CLEAR,
        moderation_services.REMOVE,
        moderation_services.REPORT,
    ):
        return moderation_services.moderation_run(op, actor=actor)
    if op.kind in (room_services.BULK, moderation_services.SWEEP):
        if op.kind == room_services.BULK:
            op = room_services.bulk_change_retry(op)
        else:
            op = moderation_services.sweep_retry(op)
        left = progress(op)
        operations.audit_retry(op, actor=actor, left={"rooms": left.total - left.done})
        return op
    try:
        category_services.scope_change_retry(actor=actor, operation=op)
    except (ChatBackendError, category_services.CategoryInvalid) as exc:
        op.error = getattr(exc, "detail", None) or str(exc)
        op.save(update_fields=["error", "updated_at"])
    op.refresh_from_db()
    return op
