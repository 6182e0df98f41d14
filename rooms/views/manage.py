"""What a room's Managers (and portal administrators) change: settings, privacy, state,
category; and deletion, for administrators only."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from portal.http import HtmxHttpRequest
from rooms import services
from rooms.backend.errors import ChatBackendError
from rooms.backend.records import Category, Privacy, Room
from rooms.forms import DeleteForm, DisableForm, MoveForm, PrivacyForm, RoomEditForm
from rooms.permissions import can_delete
from rooms.selectors import categories_with_create_rights, room_for_manager, room_for_viewer
from rooms.views.common import valid_or_400


def _edit_initial(room: Room) -> dict:
    settings = room.settings
    return {
        "name": settings.name,
        "description": settings.description,
        "auditorium": settings.auditorium,
        "invitations": settings.invitations.value,
        "version": services.room_version(room),
    }


@require_http_methods(["GET", "POST"])
@login_required
def room_edit(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Change name, description, auditorium and invitations; inline on the room's page."""
    room, category = room_for_manager(user=request.user, room_id=room_id)
    allowed = category.invitations_allowed
    form = RoomEditForm(initial=_edit_initial(room), room_id=room.id, invitations_allowed=allowed)
    status, theirs = 200, None
    if request.method == "POST":
        form = RoomEditForm(request.POST, room_id=room.id, invitations_allowed=allowed)
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                room = services.room_update(
                    actor=request.user,
                    room_id=room.id,
                    name=data["name"],
                    description=data["description"],
                    auditorium=data["auditorium"],
                    invitations=data["invitations"],
                    version=data["version"],
                )
            except services.StaleEdit as exc:
                # Show the room as it is now, and what this person tried to save.
                theirs, room = data, exc.current
                form = RoomEditForm(
                    initial=_edit_initial(room), room_id=room.id, invitations_allowed=allowed
                )
                status = 409
            except services.RoomSettingsInvalid as exc:
                form.add_error(exc.field, exc.message)
            except ChatBackendError as exc:
                form.add_error(None, f"Nothing was changed. {exc.detail}")
                status = 503
            else:
                messages.success(request, "The room's settings were saved.")
                if request.htmx:
                    # The card in place, and the heading and title out of band.
                    response = TemplateResponse(
                        request,
                        "rooms/_room_settings.html",
                        {"room": room, "category": category, "can_manage": True, "renamed": True},
                    )
                    return trigger_client_event(response, "roomChanged")
                return redirect("rooms:detail", room_id=room.id)
    context = {"room": room, "category": category, "form": form, "theirs": theirs}
    template = "rooms/room_edit.html#form" if request.htmx else "rooms/room_edit.html"
    return TemplateResponse(request, template, context, status=status)


def _privacy_panel(
    request: HtmxHttpRequest, room: Room, category: Category, *, status: int = 200, **extra: Any
) -> TemplateResponse:
    context = {
        "room": room,
        "category": category,
        "can_manage": True,
        "privacy_options": list(Privacy),
        **extra,
    }
    return TemplateResponse(request, "rooms/_privacy_panel.html", context, status=status)


@require_POST
@login_required
def room_privacy(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Make the room Open, Closed or Secret; asks first when that hides or opens it.

    Answered to htmx in place: the privacy panel, with the settings card out of band.
    """
    room, category = room_for_manager(user=request.user, room_id=room_id)
    form = PrivacyForm(request.POST)
    if not form.is_valid():
        if request.htmx:
            problem = "Choose Open, Closed or Secret."
            return _privacy_panel(request, room, category, status=400, privacy_error=problem)
        messages.error(request, "Choose Open, Closed or Secret.")
        return redirect("rooms:detail", room_id=room.id)
    privacy = form.cleaned_data["privacy"]
    warning = services.privacy_change_warning(room, category, privacy)
    if warning and not form.cleaned_data["confirm"]:
        context = {"room": room, "category": category, "privacy": privacy, "warning": warning}
        template = "rooms/room_privacy.html#confirm" if request.htmx else "rooms/room_privacy.html"
        return TemplateResponse(request, template, context)
    try:
        room = services.room_set_privacy(actor=request.user, room_id=room.id, privacy=privacy)
    except ChatBackendError as exc:
        problem = f"The privacy was not changed. {exc.detail}"
        if request.htmx:
            return _privacy_panel(request, room, category, status=503, privacy_error=problem)
        messages.error(request, problem)
    else:
        messages.success(request, f"The room is now {privacy.label}.")
        if request.htmx:
            return trigger_client_event(
                _privacy_panel(request, room, category, changed=True), "roomChanged"
            )
    return redirect("rooms:detail", room_id=room.id)


@require_http_methods(["GET", "POST"])
@login_required
def room_disable(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Disable (after a confirmation page) or, with enable=yes, re-enable a room."""
    room, category = room_for_manager(user=request.user, room_id=room_id)
    if request.method == "GET":
        return TemplateResponse(
            request, "rooms/room_disable.html", {"room": room, "category": category}
        )
    disabled = not valid_or_400(DisableForm(request.POST))["enable"]
    try:
        services.room_set_disabled(actor=request.user, room_id=room.id, disabled=disabled)
    except ChatBackendError as exc:
        messages.error(request, f"Nothing was changed. {exc.detail}")
    else:
        messages.success(
            request,
            "The room is disabled: nobody can join or post. Its settings and roles are kept."
            if disabled
            else "The room is enabled again, with its settings and roles.",
        )
    return redirect("rooms:detail", room_id=room.id)


@require_http_methods(["GET", "POST"])
@login_required
def room_move(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Move to another category: choose, see who leaves the scope, confirm."""
    room, category = room_for_manager(user=request.user, room_id=room_id)
    targets = [c for c in categories_with_create_rights(user=request.user) if c.id != category.id]
    move = valid_or_400(MoveForm(request.POST))
    chosen = next((c for c in targets if c.id == move["category"]), None)
    version = move["version"] or services.room_version(room)
    context: dict[str, Any] = {
        "room": room,
        "category": category,
        "targets": targets,
        "chosen": chosen,
        "version": version,
    }
    status = 200
    if request.method == "POST" and chosen is None:
        context["error"] = "Choose one of the categories where you may create rooms."
        status = 400
    elif request.method == "POST" and chosen and not move["confirm"]:
        context["leaving"] = services.people_leaving_scope(room, chosen)
    elif request.method == "POST" and chosen:
        try:
            services.room_move(
                actor=request.user, room_id=room.id, category_id=chosen.id, version=version
            )
        except services.StaleEdit:
            context["error"] = "Someone else changed this room meanwhile: check it and try again."
            context["version"] = services.room_version(
                room_for_viewer(user=request.user, room_id=room.id)[0]
            )
            status = 409
        except (PermissionDenied, services.RoomSettingsInvalid) as exc:
            context["error"] = str(exc)
            status = 403 if isinstance(exc, PermissionDenied) else 400
        except ChatBackendError as exc:
            context["error"] = f"The room was not moved. {exc.detail}"
            status = 503
        else:
            messages.success(
                request,
                format_html("The room is now in the category “<bdi>{}</bdi>”.", chosen.name),
            )
            return redirect("rooms:detail", room_id=room.id)
    return TemplateResponse(request, "rooms/room_move.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def room_delete(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Delete a room for good (portal administrators), confirmed by typing its name."""
    room, category = room_for_viewer(user=request.user, room_id=room_id)
    if not can_delete(request.user):
        raise PermissionDenied("Only portal administrators delete rooms.")
    typed = valid_or_400(DeleteForm(request.POST))["confirm_name"]
    context: dict[str, Any] = {"room": room, "category": category, "typed": typed}
    status = 200
    if request.method == "POST":
        try:
            services.room_delete(actor=request.user, room_id=room.id, confirm_name=typed)
        except services.RoomSettingsInvalid as exc:
            context["error"], status = exc.message, 400
        except ChatBackendError as exc:
            context["error"], status = f"The room was not deleted. {exc.detail}", 503
        else:
            messages.success(
                request, format_html("The room “<bdi>{}</bdi>” was deleted.", room.name)
            )
            return redirect("rooms:list")
    return TemplateResponse(request, "rooms/room_delete.html", context, status=status)
