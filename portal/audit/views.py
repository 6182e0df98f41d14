"""Audit review for auditors and portal administrators: the log, an entry, export, verify."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_http_methods

from portal.audit.chain import verify_chain
from portal.audit.export import export_response
from portal.audit.filters import KNOWN_ACTIONS, AuditFilterForm
from portal.http import HtmxHttpRequest
from portal.models import AuditEntry

PAGE_SIZE = 50


def _require_auditor(request: HtmxHttpRequest) -> None:
    if not request.user.can_audit:
        raise PermissionDenied("Only auditors and portal administrators review the audit log.")


def _cursor(value: str | None) -> int | None:
    """An entry ID from a page link; anything else is a link nobody made."""
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 19):
        raise BadRequest("That page link is not valid. Start again from the first page.")
    return int(value)


def _page(
    entries: QuerySet[AuditEntry], *, before: int | None, after: int | None
) -> dict[str, Any]:
    """One keyset page: newest first, walking the id, with no count of the whole log."""
    if after is not None:
        rows = list(entries.filter(id__gt=after).order_by("id")[: PAGE_SIZE + 1])
        newer_exist = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE][::-1]
        older_exist = bool(rows) and entries.filter(id__lt=rows[-1].id).exists()
    else:
        page = entries.filter(id__lt=before) if before is not None else entries
        rows = list(page.order_by("-id")[: PAGE_SIZE + 1])
        older_exist = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        newer_exist = (
            before is not None and bool(rows) and entries.filter(id__gt=rows[0].id).exists()
        )
    return {
        "entries": rows,
        "older": rows[-1].id if rows and older_exist else None,
        "newer": rows[0].id if rows and newer_exist else None,
    }


@require_GET
@login_required
def audit_list(request: HtmxHttpRequest) -> TemplateResponse:
    _require_auditor(request)
    form = AuditFilterForm(request.GET)
    entries = form.apply(AuditEntry.objects.all())
    page = _page(
        entries, before=_cursor(request.GET.get("before")), after=_cursor(request.GET.get("after"))
    )
    query = request.GET.copy()
    for key in ("before", "after"):
        query.pop(key, None)
    context = {"form": form, "query": query.urlencode(), "actions": KNOWN_ACTIONS, **page}
    template = "audit/audit_list.html#results" if request.htmx else "audit/audit_list.html"
    return TemplateResponse(request, template, context)


def _diff(before: Any, after: Any) -> list[dict[str, Any]]:
    """Before and after, key by key, marking what changed."""
    if isinstance(before, dict) or isinstance(after, dict):
        before, after = before or {}, after or {}
        keys = sorted(set(before) | set(after))
        return [
            {
                "key": k,
                "before": before.get(k, "—"),
                "after": after.get(k, "—"),
                "changed": before.get(k) != after.get(k),
            }
            for k in keys
        ]
    if before is None and after is None:
        return []
    return [{"key": "value", "before": before, "after": after, "changed": before != after}]


@require_GET
@login_required
def audit_detail(request: HtmxHttpRequest, pk: int) -> TemplateResponse:
    _require_auditor(request)
    entry = get_object_or_404(AuditEntry, pk=pk)
    same_request = (
        AuditEntry.objects.filter(request_id=entry.request_id).exclude(pk=entry.pk).order_by("id")
        if entry.request_id
        else AuditEntry.objects.none()
    )
    return TemplateResponse(
        request,
        "audit/audit_detail.html",
        {
            "entry": entry,
            "diff": _diff(entry.before, entry.after),
            "same_request": same_request[:200],
        },
    )


@require_GET
@login_required
def audit_export(request: HtmxHttpRequest, fmt: str) -> HttpResponseBase:
    """The filtered log as a streamed file; the export itself is recorded."""
    _require_auditor(request)
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return TemplateResponse(
            request,
            "audit/audit_list.html",
            {"form": form, "entries": [], "actions": KNOWN_ACTIONS, "query": ""},
            status=400,
        )
    return export_response(form.apply(AuditEntry.objects.all()), form=form, fmt=fmt)


@require_http_methods(["GET", "POST"])
@login_required
def audit_verify(request: HtmxHttpRequest) -> TemplateResponse:
    """Check the hash chain of the whole log and show where it breaks."""
    _require_auditor(request)
    report = verify_chain() if request.method == "POST" else None
    template = "audit/audit_verify.html#result" if request.htmx else "audit/audit_verify.html"
    return TemplateResponse(request, template, {"report": report})
