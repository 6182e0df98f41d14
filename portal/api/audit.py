"""The audit log through the API: the same filters as the page, newest first, paged by
cursor (auditors and administrators)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from portal.api.common import READ_ERRORS, ApiRequest, Text, after_cursor, cursor_of, page_of
from portal.audit.export import export_response
from portal.audit.filters import SEARCH_MAX, AuditFilterForm
from portal.models import AuditEntry

router = Router(tags=["audit"])


class AuditFilters(Schema):
    actor: Text = Field("", max_length=255, description="A username or chat ID")
    action: Text = Field("", max_length=64, description="An action, or its start: `room.`")
    target: Text = Field("", max_length=255, description="A name (or part of it) or an ID")
    outcome: Text = Field("", max_length=16)
    date_from: date | None = None
    date_to: date | None = None
    q: Text = Field("", max_length=SEARCH_MAX, description="Words anywhere in the entry")
    cursor: Text = Field("", max_length=1000)
    limit: int = Field(50, ge=1, le=500)


class AuditEntryOut(Schema):
    id: int
    created_at: datetime
    actor: str
    action: str
    outcome: str
    target_kind: str
    target_id: str
    target_label: str
    category_id: str
    category_label: str
    before: Any = None
    after: Any = None
    error: str
    request_id: str
    via: str


class AuditPage(Schema):
    items: list[AuditEntryOut]
    count: int = Field(description="How many entries match, over every page")
    next_cursor: str | None = None


def _filtered(request: ApiRequest, filters: AuditFilters) -> tuple[AuditFilterForm, Any]:
    """The page's filter form over these filters, and the entries it lets through."""
    viewer = request.user
    if not viewer.can_audit:
        raise PermissionDenied("Only auditors and portal administrators read the audit log.")
    values = filters.model_dump(exclude={"cursor", "limit", "format"}, exclude_none=True)
    form = AuditFilterForm({k: str(v) for k, v in values.items()})
    if not form.is_valid():
        detail = " ".join(
            f"{field}: {' '.join(map(str, errors))}" for field, errors in form.errors.items()
        )
        raise HttpError(422, detail)
    return form, form.apply(AuditEntry.objects.all())


class ExportFilters(AuditFilters):
    format: Literal["csv", "jsonl"] = "jsonl"


@router.get(
    "/export",
    response={200: None} | READ_ERRORS,
    summary="Export the log",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The entries, oldest first, streamed",
                "content": {"text/csv": {}, "application/x-ndjson": {}},
            }
        }
    },
)
def audit_export(request: ApiRequest, filters: Query[ExportFilters]) -> StreamingHttpResponse:
    """The filtered log as CSV or JSON Lines, streamed, as the page exports it; the export is
    itself an audit entry."""
    form, entries = _filtered(request, filters)
    return export_response(entries, form=form, fmt=filters.format)


@router.get("", response={200: AuditPage} | READ_ERRORS, summary="Query the log")
def audit_list(
    request: ApiRequest, response: HttpResponse, filters: Query[AuditFilters]
) -> dict[str, Any]:
    """Entries matching the filters, newest first."""
    _, entries = _filtered(request, filters)
    count = entries.count()
    if filters.cursor:
        [last] = after_cursor(filters.cursor, size=1)
        if not last.isdigit():
            raise HttpError(400, "That cursor was not made by this API: start again without one.")
        entries = entries.filter(id__lt=int(last))
    rows = list(entries.order_by("-id")[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return page_of(
        request,
        response,
        [
            {
                "id": e.pk,
                "created_at": e.created_at,
                "actor": e.actor_username,
                "action": e.action,
                "outcome": e.outcome,
                "target_kind": e.target_kind,
                "target_id": e.target_id,
                "target_label": e.target_label,
                "category_id": e.category_id,
                "category_label": e.category_label,
                "before": e.before,
                "after": e.after,
                "error": e.error,
                "request_id": e.request_id,
                "via": e.via,
            }
            for e in rows
        ],
        count,
        cursor_of([str(rows[-1].pk)]) if more else None,
    )
