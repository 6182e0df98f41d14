"""The operations area: changes that neither completed nor were undone, for portal
administrators to finish (retry) or undo."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from portal.http import HtmxHttpRequest
from rooms import operations, outbox
from rooms.models import IndexDifference, IndexedRoom, Operation, PolicyBreach
from rooms.services import operations as operation_services

BREACHES_SHOWN = 100


def _admin(request: HtmxHttpRequest) -> None:
    if not request.user.is_administrator:
        raise PermissionDenied("Only portal administrators finish or undo unfinished changes.")


@require_GET
@login_required
def operation_list(request: HtmxHttpRequest) -> TemplateResponse:
    _admin(request)
    return TemplateResponse(
        request,
        "operations/operation_list.html",
        {"unfinished": operations.unfinished(), "undelivered": outbox.undelivered()},
    )


@require_GET
@login_required
def breach_list(request: HtmxHttpRequest) -> TemplateResponse:
    """Changes chat users made on the chat server against the rules: the open ones (a
    room whose state the portal could not put back) first, then the latest undone."""
    if not request.user.can_audit:
        raise PermissionDenied("Only portal administrators and auditors see rule breaches.")
    return TemplateResponse(
        request,
        "operations/breach_list.html",
        {
            "open": PolicyBreach.objects.filter(undone_at__isnull=True),
            "undone": PolicyBreach.objects.filter(undone_at__isnull=False)[:BREACHES_SHOWN],
            "shown": BREACHES_SHOWN,
            "twice": IndexedRoom.objects.filter(
                room_id__in=IndexDifference.objects.filter(
                    kind=IndexDifference.NAME_HELD_TWICE
                ).values("target_id")
            ).order_by("name_key", "room_id"),
        },
    )


def _decide(request: HtmxHttpRequest, pk: str, *, undo: bool) -> HttpResponse:
    _admin(request)
    op = Operation.objects.filter(pk=pk, status=Operation.Status.UNFINISHED).first()
    if op is None:
        raise Http404("There is no such unfinished change (it may have been finished already).")
    try:
        op = operation_services.operation_finish(op, actor=request.user, undo=undo)
    except operation_services.OperationConflict as exc:
        raise BadRequest(str(exc)) from None
    if op.status == Operation.Status.RUNNING:  # a change to many rooms, back with the worker
        messages.success(request, "The rooms not changed are being changed again.")
    elif op.status == Operation.Status.UNFINISHED:
        messages.error(request, f"It is still unfinished: {op.error}")
    elif undo:
        messages.success(request, f"The change to “{op.target_label}” was undone.")
    else:
        messages.success(request, f"The change to “{op.target_label}” was finished.")
    if op.of_person:  # its results, item by item
        return redirect("people:removal", user_id=op.target_id, pk=op.pk)
    return redirect("operations:list")


@require_POST
@login_required
def operation_retry(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    return _decide(request, pk, undo=False)


@require_POST
@login_required
def operation_undo(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    return _decide(request, pk, undo=True)
