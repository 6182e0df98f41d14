"""The people area: one person's standing across categories and rooms (portal
administrators; auditors read-only), and removing them from everything or a chosen part."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.http import HtmxHttpRequest
from rooms.backend.errors import ChatBackendError
from rooms.forms.people import SUCCESSOR, PersonFindForm, RemovalForm
from rooms.models import Operation
from rooms.selectors import people as people_selectors
from rooms.services import people as people_services
from rooms.views.common import valid_or_400


@require_GET
@login_required
def person_find(request: HtmxHttpRequest) -> TemplateResponse:
    """Find a person by chat ID or name, to open their page."""
    people_selectors.require_viewer(request.user)
    term = valid_or_400(PersonFindForm(request.GET))["q"]
    found = people_selectors.people_found(viewer=request.user, term=term)
    return TemplateResponse(request, "people/person_find.html", {"q": term, "found": found})


@require_GET
@login_required
def person_detail(request: HtmxHttpRequest, user_id: str) -> TemplateResponse:
    """Where the person stands: categories, room roles, pending requests, recent entries."""
    standing = people_selectors.person_standing(viewer=request.user, user_id=user_id)
    removals = Operation.objects.filter(kind=people_services.KIND, target_id=user_id).order_by(
        "-created_at"
    )[:5]
    return TemplateResponse(
        request, "people/person_detail.html", {"standing": standing, "removals": removals}
    )


@require_http_methods(["GET", "POST"])
@login_required
def person_remove(request: HtmxHttpRequest, user_id: str) -> HttpResponse:
    """Choose what goes (everything, by default), see the preview with the rooms that
    need a successor, then confirm: the removal runs and its results are shown."""
    people_services.require_admin(request.user)
    standing = people_selectors.person_standing(viewer=request.user, user_id=user_id)
    everything = people_services.items_of(standing)
    context = {"standing": standing, "everything": everything, "successor": SUCCESSOR}
    if request.method == "GET":
        context["chosen"] = {item.key for item in everything}
        return TemplateResponse(request, "people/person_remove.html", context)
    form = RemovalForm(request.POST, keys=[item.key for item in everything])
    chosen = valid_or_400(form)["items"]
    context["chosen"] = set(chosen)
    try:
        removal = people_services.removal_plan(actor=request.user, user_id=user_id, chosen=chosen)
    except people_services.RemovalInvalid as exc:
        context["error"] = exc.message
        return TemplateResponse(request, "people/person_remove.html", context, status=400)
    typed = form.successors(room.room_id for room in removal.orphaned)
    context |= {"removal": removal, "typed": typed}
    if not form.cleaned_data["confirm"]:
        return TemplateResponse(request, "people/removal_preview.html", context)
    try:
        op = people_services.removal_start(
            actor=request.user, user_id=user_id, chosen=chosen, successors=typed
        )
    except people_services.RemovalInvalid as exc:
        context |= {"error": exc.message, "errors": exc.errors}
        return TemplateResponse(request, "people/removal_preview.html", context, status=400)
    except ChatBackendError as exc:
        context["error"] = f"Nothing was changed. {exc.detail}"
        return TemplateResponse(request, "people/removal_preview.html", context, status=503)
    if op.status == Operation.Status.SUCCEEDED:
        messages.success(request, f"{user_id} was removed from everything chosen.")
    else:
        messages.error(
            request,
            f"The removal stopped part-way: {op.error} What was done and what is left is "
            "below; Retry finishes it.",
        )
    return redirect("people:removal", user_id=user_id, pk=op.pk)


@require_GET
@login_required
def removal_detail(request: HtmxHttpRequest, user_id: str, pk: str) -> TemplateResponse:
    """A removal's result, item by item."""
    people_selectors.require_viewer(request.user)
    op = get_object_or_404(Operation, pk=pk, kind=people_services.KIND, target_id=user_id)
    return TemplateResponse(request, "people/removal_detail.html", {"op": op})


@require_POST
@login_required
def sessions_end(request: HtmxHttpRequest, user_id: str) -> HttpResponse:
    """End every portal session of the person now, on every device."""
    if people_services.sessions_end(actor=request.user, user_id=user_id):
        messages.success(request, f"Every portal session of {user_id} has ended.")
    else:
        messages.info(request, f"{user_id} has never signed in to the portal: no session to end.")
    return redirect("people:detail", user_id=user_id)
