"""Operations through the API: the recorded changes that take several steps (a room's
privacy, a move, a change to many rooms, a person's removal, an adoption), listed, read
with their results a page at a time, and — for portal administrators — finished (Retry)
or put back (Undo) when they did not finish, as the Operations page does."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from ninja import Field, Query, Router, Schema
from ninja.params.functions import Header

from portal.api.common import (
    READ_ERRORS,
    WRITE_ERRORS,
    ApiRequest,
    after_cursor,
    cursor_of,
    page_of,
    version_of,
    writes,
)
from rooms.models import Operation
from rooms.selectors import Hidden, NotFound
from rooms.services import operations as operation_services
from rooms.services.moderation import SWEEP, Sweep
from rooms.services.roles import ROLES, RoleChanges
from rooms.services.rooms import BULK

router = Router(tags=["operations"])

NO_SUCH_OPERATION = "There is no such operation, or it is not yours."

RESULTS_AT_MOST = 1000


class OperationSummary(Schema):
    id: str
    kind: Operation.Kind
    label: str
    status: str
    target: str = Field(description="A room's or a person's ID; for a change to many, ''.")
    target_label: str
    actor: str
    done: int = Field(description="Rooms (or steps) done so far")
    total: int
    error: str
    what_if: bool = Field(description="A what-if run in the background: nothing was changed")
    created_at: str
    updated_at: str


class OperationOut(OperationSummary):
    change: dict[str, Any]
    before: dict[str, Any]
    results: list[dict[str, Any]] = Field(description="From `results_from`, at most a page")
    results_from: int
    next_results_from: int | None = Field(description="Ask again with this to read on")


class OperationPage(Schema):
    items: list[OperationSummary]
    count: int = Field(description="How many operations match, over every page")
    next_cursor: str | None


class ResultsPage(Schema):
    results_from: int = Field(default=0, ge=0, description="The first result to answer")
    results_limit: int = Field(default=200, ge=1, le=RESULTS_AT_MOST)


class OperationFilters(Schema):
    status: Operation.Status | None = None
    kind: Operation.Kind | None = None
    everyone: bool = Field(False, description="Everyone's operations (administrators)")
    cursor: str = ""
    limit: int = Field(50, ge=1, le=200)


def _summary(op: Operation) -> dict[str, Any]:
    progress = operation_services.progress(op)
    return {
        "id": str(op.pk),
        "kind": op.kind,
        "label": op.label,
        "status": op.status,
        "target": "" if op.kind == BULK else op.target_id,
        "target_label": op.target_label,
        "actor": (op.actor.chat_id or op.actor.username) if op.actor else "",
        "done": progress.done,
        "total": progress.total,
        "error": op.error,
        "what_if": progress.what_if,
        "created_at": op.created_at.isoformat(),
        "updated_at": op.updated_at.isoformat(),
    }


def _visible(request: ApiRequest, operation_id: uuid.UUID) -> Operation:
    """One operation: its owner's or, for administrators, anyone's. Another person's is
    answered as one that is not there (and the probe is audited)."""
    viewer = request.user
    op = Operation.objects.select_related("actor").filter(pk=operation_id).first()
    if op is None:
        raise NotFound(NO_SUCH_OPERATION)
    if op.actor_id != viewer.pk and not viewer.is_administrator:
        raise Hidden(NO_SUCH_OPERATION)
    return op


@router.get("", response={200: OperationPage} | READ_ERRORS, summary="List operations")
def operation_list(
    request: ApiRequest, response: HttpResponse, filters: Query[OperationFilters]
) -> dict[str, Any]:
    """Your operations, newest first (with `everyone=true`, everyone's: administrators);
    `status=unfinished` lists what waits for Retry or Undo."""
    viewer = request.user
    ops = Operation.objects.select_related("actor")
    if not filters.everyone:
        ops = ops.filter(actor=viewer)
    elif not viewer.is_administrator:
        raise PermissionDenied("Only portal administrators list everyone's operations.")
    if filters.status:
        ops = ops.filter(status=filters.status)
    if filters.kind:
        ops = ops.filter(kind=filters.kind)
    count = ops.count()
    if filters.cursor:
        created, pk = after_cursor(filters.cursor, size=2)
        ops = ops.filter(created_at__lt=created) | ops.filter(created_at=created, pk__lt=pk)
    rows = list(ops.order_by("-created_at", "-pk")[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    following = cursor_of([rows[-1].created_at.isoformat(), str(rows[-1].pk)]) if more else None
    return page_of(request, response, [_summary(op) for op in rows], count, following)


def _out(op: Operation, page: ResultsPage) -> dict[str, Any]:
    results = operation_services.progress(op).results
    shown = results[page.results_from : page.results_from + page.results_limit]
    following = page.results_from + len(shown)
    return _summary(op) | {
        "change": _change(op),
        "before": op.before,
        "results": shown,
        "results_from": page.results_from,
        "next_results_from": following if following < len(results) else None,
    }


def _change(op: Operation) -> dict[str, Any]:
    """What the operation changes: a room's fields, a change to many rooms' fields, a
    role and the people asked to get it or lose it (as typed), or which messages a
    removal across rooms takes (and how many it has removed)."""
    if op.kind == ROLES:
        roles = RoleChanges.of(op)
        return {"role": str(roles.role)} | {
            change: [line.person or line.line for line in roles.lines if line.change == change]
            for change in ("add", "remove")
        }
    if op.kind == BULK:
        return dict(op.change.get("changes", {}))
    if op.kind == SWEEP:
        sweep = Sweep.of(op)
        asked = {"reason": sweep.reason, "notice": sweep.notice, "removed": sweep.removed}
        return sweep.matching.as_change() | asked
    return op.change if op.of_room else {}


def etag(op: Operation) -> str:
    """An operation's entity tag: it changes with every step it takes."""
    return f'"{op.status}-{op.updated_at.timestamp():.6f}"'


@router.get(
    "/{operation_id}", response={200: OperationOut, 304: None} | READ_ERRORS, summary="Poll"
)
def operation_get(
    request: ApiRequest,
    response: HttpResponse,
    operation_id: uuid.UUID,
    page: Query[ResultsPage],
    if_none_match: str = Header("", alias="If-None-Match", description="Its `ETag` as polled"),
) -> Any:
    """One operation and a page of its results: poll it until its status is no longer
    `running`, reading the results on from where the last poll stopped (`results_from`),
    so that a poll of a 5,000-room change does not carry every result each time. Sent
    with its `ETag` as `If-None-Match`, a poll of an operation that has not moved since is
    answered 304, with no body."""
    op = _visible(request, operation_id)
    if version_of(if_none_match) == version_of(etag(op)):
        return HttpResponse(status=304, headers={"ETag": etag(op)})
    response["ETag"] = etag(op)
    return _out(op, page)


def _finish(request: ApiRequest, operation_id: uuid.UUID, *, undo: bool) -> dict[str, Any]:
    writes(request)
    op = operation_services.operation_finish(
        _visible(request, operation_id),
        actor=request.user,
        undo=undo,
    )
    return _out(op, ResultsPage())


@router.post("/{operation_id}/retry", response={200: OperationOut} | WRITE_ERRORS, summary="Retry")
def operation_retry(request: ApiRequest, operation_id: uuid.UUID) -> dict[str, Any]:
    """Finish an unfinished operation (administrators): a room's change is applied again,
    a category's or a person's run again, a change to many rooms goes back to the sync
    worker for the rooms not changed (the answer is then `running`: poll it)."""
    return _finish(request, operation_id, undo=False)


@router.post("/{operation_id}/undo", response={200: OperationOut} | WRITE_ERRORS, summary="Undo")
def operation_undo(request: ApiRequest, operation_id: uuid.UUID) -> dict[str, Any]:
    """Put an unfinished room change back as it was (administrators); other kinds are
    finished by Retry (409)."""
    return _finish(request, operation_id, undo=True)
