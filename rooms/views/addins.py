"""The add-ins area: the register for portal administrators, and a room's Managers
attaching an add-in to their room or taking it away."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods, require_POST

from portal.http import HtmxHttpRequest
from rooms.backend import errors
from rooms.forms.addins import AddInForm, RoomAddInForm
from rooms.models import AddInEntry
from rooms.permissions import can_manage
from rooms.selectors.addins import register
from rooms.selectors.rooms import room_for_viewer
from rooms.services import addins as addin_services
from rooms.services import rooms as room_services
from rooms.views.common import told, valid_or_400


def _admin(request: HtmxHttpRequest) -> None:
    if not request.user.is_administrator:
        raise PermissionDenied("Only portal administrators keep the add-in register.")


@require_http_methods(["GET", "POST"])
@login_required
def addin_list(request: HtmxHttpRequest) -> HttpResponse:
    """The register, and a form to add to it."""
    _admin(request)
    form = AddInForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                entry = addin_services.addin_register(actor=request.user, **form.cleaned_data)
            except addin_services.AddInInvalid as exc:
                form.add_error(exc.field, exc.message)
            else:
                messages.success(
                    request, format_html("The add-in “<bdi>{}</bdi>” was registered.", entry.name)
                )
                return redirect("addins:list")
    context = {"form": form, "register": register()}
    return TemplateResponse(request, "addins/addin_list.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def addin_remove(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Take an add-in out of the register and out of every room (confirmed first)."""
    _admin(request)
    entry = get_object_or_404(AddInEntry, pk=pk)
    if request.method == "GET":
        shown = next(r for r in register() if r.entry.pk == entry.pk)
        return TemplateResponse(request, "addins/addin_remove.html", {"shown": shown})
    rooms, op = addin_services.addin_remove(actor=request.user, add_in_id=entry.pk)
    if op is None:
        messages.success(request, f"The add-in “{entry.name}” was removed; no room showed it.")
    else:
        messages.success(
            request,
            f"The add-in “{entry.name}” was removed from the register; the portal takes it "
            f"out of {len(rooms)} room{'s' if len(rooms) != 1 else ''} in the background "
            "(followed on the Operations page).",
        )
    return redirect("addins:list")


def _room_change(request: HtmxHttpRequest, room_id: str, *, attach: bool) -> HttpResponse:
    room, _ = room_for_viewer(user=request.user, room_id=room_id)
    if not can_manage(request.user, room):
        raise PermissionDenied("Only the room's Managers and portal administrators change it.")
    chosen = valid_or_400(RoomAddInForm(request.POST))["add_in"]
    try:
        if attach:
            if not chosen.isdigit():
                raise room_services.RoomSettingsInvalid("add_in", "Choose an add-in.")
            room_services.room_add_in_attach(
                actor=request.user, room_id=room.id, add_in_id=int(chosen)
            )
            messages.success(request, "The add-in is shown beside the room's conversation.")
        else:
            room_services.room_add_in_detach(actor=request.user, room_id=room.id, add_in_id=chosen)
            messages.success(request, "The add-in was taken out of the room.")
    except room_services.RoomSettingsInvalid as exc:
        messages.error(request, exc.message)
    except errors.ChatBackendError as exc:
        messages.error(request, told(exc, "Nothing was changed."))
    return redirect("rooms:detail", room_id=room.id)


@require_POST
@login_required
def addin_attach(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    return _room_change(request, room_id, attach=True)


@require_POST
@login_required
def addin_detach(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    return _room_change(request, room_id, attach=False)
