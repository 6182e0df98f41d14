"""Room requests: asking for a room, my requests, the approval queue and decisions."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.http import HtmxHttpRequest
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.records import RoomSettings
from rooms.forms.requests import DeclineForm, RoomApproveForm, RoomRequestForm
from rooms.forms.rooms import settings_from
from rooms.models import RoomRequest
from rooms.selectors import requests as request_selectors
from rooms.selectors.requests import NO_SUCH_REQUEST
from rooms.services import requests as request_services
from rooms.services import rooms as room_services
from rooms.views.common import run_for_form


def _viewed(request: HtmxHttpRequest, pk: int) -> tuple[RoomRequest, bool]:
    """The request, if the person asked for it or may decide it; 404 otherwise, for
    someone else's as for one that is not there (the middleware records the refusal)."""
    try:
        return request_selectors.request_for_viewer(user=request.user, pk=pk)
    except ChatNotFound:
        raise Http404(NO_SUCH_REQUEST) from None


def _decidable(request: HtmxHttpRequest, pk: int) -> tuple[RoomRequest, bool]:
    """A request this person may decide; refused before any of the form is read."""
    room_request, may_decide = _viewed(request, pk)
    if not may_decide:
        raise PermissionDenied("Only the category's Creators and portal administrators decide.")
    return room_request, may_decide


def _save_request_form(
    form: RoomRequestForm, save: Callable[[RoomSettings, str], RoomRequest]
) -> tuple[RoomRequest | None, int]:
    """Validate and save a request form; refusals land on the form, which keeps its input."""
    if not form.is_valid():
        return None, 400
    return run_for_form(
        form,
        lambda: save(form.room_settings(), form.cleaned_data["justification"]),
        failed="Nothing was saved.",
    )


@require_http_methods(["GET", "POST"])
@login_required
def request_new(request: HtmxHttpRequest) -> HttpResponse:
    """Ask for a room in a category in whose scope the person is."""
    categories = request_selectors.categories_for_requests(user=request.user)
    form = RoomRequestForm(
        request.POST if request.method == "POST" else None,
        categories=categories,
        initial={"category": request.GET.get("category", "")},
    )
    status = 200
    if request.method == "POST" and (
        earlier := request_services.submitted_request(
            actor=request.user, submission=request.POST.get("submission", "")
        )
    ):
        messages.info(request, "This form was already sent: your request is below.")
        return redirect("requests:detail", pk=earlier.pk)
    if request.method == "POST":
        saved, status = _save_request_form(
            form,
            lambda settings, why: request_services.request_submit(
                actor=request.user,
                settings=settings,
                justification=why,
                submission=form.cleaned_data.get("submission"),
            ),
        )
        if saved:
            messages.success(request, "Your request was sent to the category's approvers.")
            return redirect("requests:detail", pk=saved.pk)
    return TemplateResponse(
        request,
        "requests/request_form.html",
        {"form": form, "categories": categories},
        status=status,
    )


@require_GET
@login_required
def request_list(request: HtmxHttpRequest) -> TemplateResponse:
    """My requests, newest first."""
    mine = request.user.room_requests.order_by("-created_at")
    return TemplateResponse(request, "requests/request_list.html", {"requests": mine})


@require_GET
@login_required
def approval_queue(request: HtmxHttpRequest) -> TemplateResponse:
    """Pending room requests this person may decide, and people asking to join the rooms
    they manage, oldest first."""
    queue = request_selectors.approval_queue(user=request.user)
    asking = request_selectors.join_queue(user=request.user)
    return TemplateResponse(
        request, "requests/request_queue.html", {"requests": queue, "asking": asking}
    )


def _detail(
    request: HtmxHttpRequest,
    room_request: RoomRequest,
    may_decide: bool,
    *,
    approve_form: RoomApproveForm | None = None,
    decline_form: forms.Form | None = None,
    status: int = 200,
) -> TemplateResponse:
    pending = room_request.status == RoomRequest.Status.PENDING
    if may_decide and pending and approve_form is None:
        approve_form = RoomApproveForm(
            initial={
                "name": room_request.name,
                "description": room_request.description,
                "privacy": room_request.privacy,
                "auditorium": room_request.auditorium,
                "invitations": room_request.invitations,
            },
            invitations_allowed=True,
        )
    context = {
        "room_request": room_request,
        "may_decide": may_decide,
        "mine": room_request.requester_id == request.user.pk,
        "pending": pending,
        "approve_form": approve_form,
        "decline_form": decline_form or DeclineForm(),
        "mails": request_selectors.mails_about(room_request),
    }
    return TemplateResponse(request, "requests/request_detail.html", context, status=status)


@require_GET
@login_required
def request_detail(request: HtmxHttpRequest, pk: int) -> TemplateResponse:
    room_request, may_decide = _viewed(request, pk)
    return _detail(request, room_request, may_decide)


@require_http_methods(["GET", "POST"])
@login_required
def request_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The requester changes a pending request."""
    room_request, _ = _viewed(request, pk)
    if room_request.requester_id != request.user.pk:
        raise PermissionDenied("Only the person who asked may change the request.")
    categories = request_selectors.categories_for_requests(user=request.user)
    form = RoomRequestForm(
        request.POST if request.method == "POST" else None,
        categories=categories,
        request_pk=room_request.pk,
        initial={
            "name": room_request.name,
            "description": room_request.description,
            "category": room_request.category_id,
            "privacy": room_request.privacy,
            "auditorium": room_request.auditorium,
            "invitations": room_request.invitations,
            "justification": room_request.justification,
        },
    )
    status = 200
    if request.method == "POST":
        saved, status = _save_request_form(
            form,
            lambda settings, why: request_services.request_edit(
                actor=request.user, pk=room_request.pk, settings=settings, justification=why
            ),
        )
        if saved:
            messages.success(request, "Your request was changed.")
            return redirect("requests:detail", pk=saved.pk)
    return TemplateResponse(
        request,
        "requests/request_form.html",
        {"form": form, "categories": categories, "room_request": room_request},
        status=status,
    )


@require_POST
@login_required
def request_cancel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    try:
        request_services.request_cancel(actor=request.user, pk=pk)
    except request_services.RequestConflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Your request was cancelled.")
    return redirect("requests:detail", pk=pk)


@require_POST
@login_required
def request_approve(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Approve with the approver's adjustments; the room is created at once."""
    room_request, may_decide = _decidable(request, pk)
    form = RoomApproveForm(request.POST, invitations_allowed=True)
    if not form.is_valid():
        return _detail(request, room_request, may_decide, approve_form=form, status=400)
    data = form.cleaned_data | {"category": room_request.category_id}
    try:
        room_request = request_services.request_approve(
            actor=request.user, pk=pk, settings=settings_from(data)
        )
    except room_services.RoomSettingsInvalid as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _detail(request, room_request, may_decide, approve_form=form, status=400)
    except request_services.RequestConflict as exc:
        messages.error(request, str(exc))
        return redirect("requests:detail", pk=pk)
    except ChatBackendError as exc:
        form.add_error(None, f"Nothing was approved. {exc.detail}")
        return _detail(request, room_request, may_decide, approve_form=form, status=503)
    _tell_outcome(request, room_request)
    return redirect("requests:detail", pk=pk)


def _tell_outcome(request: HtmxHttpRequest, room_request: RoomRequest) -> None:
    if room_request.status == RoomRequest.Status.CREATED:
        messages.success(
            request, f"Approved: the room “{room_request.name}” was created for its requester."
        )
    else:
        messages.error(
            request,
            f"Approved, but the room could not be created: {room_request.error} "
            "Nothing is lost: retry when the chat server is back.",
        )


@require_POST
@login_required
def request_retry(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    try:
        room_request = request_services.request_retry(actor=request.user, pk=pk)
    except request_services.RequestConflict as exc:
        messages.error(request, str(exc))
    except ChatBackendError as exc:
        messages.error(request, f"Nothing was done. {exc.detail}")
    else:
        _tell_outcome(request, room_request)
    return redirect("requests:detail", pk=pk)


@require_POST
@login_required
def request_decline(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    room_request, may_decide = _decidable(request, pk)
    form = DeclineForm(request.POST)
    if not form.is_valid():
        return _detail(request, room_request, may_decide, decline_form=form, status=400)
    try:
        request_services.request_decline(
            actor=request.user, pk=pk, reason=form.cleaned_data["reason"]
        )
    except request_services.RequestConflict as exc:
        messages.error(request, str(exc))
    except ChatBackendError as exc:
        messages.error(request, f"Nothing was done. {exc.detail}")
    else:
        messages.success(request, "The request was declined; the requester is told why.")
    return redirect("requests:detail", pk=pk)
