"""The rooms area: My rooms, Find a room, a room's page, creating, joining, and a
Manager's changes (settings, privacy, disable, move, delete)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from portal.http import HtmxHttpRequest
from rooms import operations
from rooms.backend.errors import ChatBackendError
from rooms.backend.records import Category, Privacy, Room
from rooms.forms.rooms import (
    AskForm,
    DeleteForm,
    DisableForm,
    MoveForm,
    NameCheckForm,
    PrivacyForm,
    RoomCreateForm,
    RoomEditForm,
    RoomFilterForm,
)
from rooms.models import IndexedRoom
from rooms.permissions import can_delete, can_moderate, can_read_history
from rooms.selectors.addins import attachable
from rooms.selectors.categories import categories_with_create_rights, category_choices
from rooms.selectors.rooms import (
    asked_to_join,
    categories_of,
    directory_rooms,
    filter_rooms,
    listings,
    open_breaches,
    room_for_manager,
    room_for_viewer,
    rooms_for_user,
    turned_down,
)
from rooms.services import rooms as room_services
from rooms.services.requests import name_check
from rooms.views.common import run_for_form, told, valid_or_400
from rooms.views.roles import roles_context

ROOMS_PER_PAGE = 20


def _filtered_page(request: HtmxHttpRequest, rooms: QuerySet[IndexedRoom]) -> dict[str, Any]:
    """A list of rooms as My rooms and Find a room show it: searched by name, filtered by
    category and privacy, one page of it, all in the database."""
    form = RoomFilterForm(request.GET, categories=categories_of(rooms))
    filters = form.cleaned_data if form.is_valid() else {}
    found = filter_rooms(
        rooms,
        search=filters.get("q", ""),
        category_id=filters.get("category", ""),
        privacy=filters.get("privacy", ""),
    )
    page = Paginator(found, ROOMS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "form": form,
        "page": page,
        "listings": listings(page.object_list, user=request.user),
        "query": query.urlencode(),
    }


@require_GET
@login_required
def room_list(request: HtmxHttpRequest) -> TemplateResponse:
    """My rooms: the rooms the person manages or belongs to, searchable and filtered."""
    rooms = rooms_for_user(user=request.user)
    context = _filtered_page(request, rooms)
    # Only an empty page asks whether the person has rooms at all.
    context["has_rooms"] = bool(context["listings"]) or rooms.exists()
    template = "rooms/room_list.html#results" if request.htmx else "rooms/room_list.html"
    return TemplateResponse(request, template, context)


@require_GET
@login_required
def room_find(request: HtmxHttpRequest) -> TemplateResponse:
    """Find a room: every room the person may find, searchable and filtered, with Join on
    the Open ones."""
    context = _filtered_page(request, directory_rooms(user=request.user))
    context["asked"] = asked_to_join(user=request.user)
    context["turned_down"] = turned_down(user=request.user)
    template = "rooms/room_find.html#results" if request.htmx else "rooms/room_find.html"
    return TemplateResponse(request, template, context)


@require_POST
@login_required
def room_ask(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Ask to be let into a Closed room, with an optional message for its Managers."""
    room, _ = room_for_viewer(user=request.user, room_id=room_id)
    message = valid_or_400(AskForm(request.POST))["message"]
    try:
        room_services.join_request_submit(actor=request.user, room_id=room.id, message=message)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            format_html(
                "You asked to join “<bdi>{}</bdi>”. Its Managers decide: their answer is "
                "shown here, and sent to you by e-mail.",
                room.name,
            ),
        )
    return redirect("rooms:find")


@require_POST
@login_required
def room_join(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Join an Open room; the person lands on it, and finds it in their chat client."""
    room, _ = room_for_viewer(user=request.user, room_id=room_id)
    try:
        joined = room_services.room_join(actor=request.user, room_id=room.id)
    except ChatBackendError as exc:
        messages.error(request, f"You did not join the room. {exc.detail}")
        return redirect("rooms:detail", room_id=room.id)
    messages.success(
        request,
        format_html("You joined “<bdi>{}</bdi>”: it is in your chat client now.", joined.name),
    )
    return redirect("rooms:detail", room_id=joined.id)


@require_GET
@login_required
def room_detail(request: HtmxHttpRequest, room_id: str) -> TemplateResponse:
    """A room's settings, category and roles, read from the chat server now."""
    room, category = room_for_viewer(user=request.user, room_id=room_id)
    context = roles_context(request, room, category) | {
        "can_delete": can_delete(request.user),
        "can_moderate": can_moderate(request.user),
        "can_read_history": can_read_history(request.user, room),
        "privacy_options": list(Privacy),
    }
    context["unfinished"] = operations.unfinished(room.id) if context["can_manage"] else []
    context["breaches"] = open_breaches(room.id)
    context["add_ins_available"] = attachable(room) if context["can_manage"] else []
    return TemplateResponse(request, "rooms/room_detail.html", context)


@require_GET
@login_required
def room_check_name(request: HtmxHttpRequest) -> TemplateResponse:
    """Check a room name as it is typed: empty, too long, or not available."""
    form = NameCheckForm(request.GET)
    if not form.is_valid():
        raise BadRequest("The name check was asked something it does not understand.")
    data = form.cleaned_data
    try:
        problem = name_check(
            actor=request.user,
            name=data["name"],
            category_id=data["category"],
            room_id=data["room"],
            for_request=data["requests"],
            request_pk=data["request"],
        )
    except ChatBackendError as exc:
        problem = f"The name could not be checked: {exc.detail}"
    return TemplateResponse(
        request, "rooms/_name_check.html", {"problem": problem, "name": data["name"].strip()}
    )


@require_http_methods(["GET", "POST"])
@login_required
def room_create(request: HtmxHttpRequest) -> HttpResponse:
    """The room-settings form; on success the room exists and the person lands on it."""
    categories = category_choices(user=request.user)
    form = RoomCreateForm(
        request.POST if request.method == "POST" else None,
        categories=categories,
        initial={"category": request.GET.get("category", "")},
    )
    status = 200
    if request.method == "POST" and (
        earlier := room_services.submitted_room_id(
            actor=request.user, submission=request.POST.get("submission", "")
        )
    ):
        messages.info(request, "This form was already sent: the room it created is below.")
        return redirect("rooms:detail", room_id=earlier)
    elif request.method == "POST" and not form.is_valid():
        status = 400
        room_services.room_create_rejected(actor=request.user, data=form.data, errors=form.errors)
    elif request.method == "POST":
        room, status = run_for_form(
            form,
            lambda: room_services.room_create(
                actor=request.user,
                settings=form.room_settings(),
                submission=form.cleaned_data["submission"],
            ),
            failed="The room was not created.",
        )
        if room is not None:
            messages.success(
                request, format_html("The room “<bdi>{}</bdi>” was created.", room.name)
            )
            return redirect("rooms:detail", room_id=room.id)
    return TemplateResponse(
        request,
        "rooms/room_create.html",
        {"form": form, "categories": categories},
        status=status,
    )


def _edit_initial(room: Room) -> dict[str, Any]:
    settings = room.settings
    return {
        "name": settings.name,
        "description": settings.description,
        "auditorium": settings.auditorium,
        "invitations": settings.invitations.value,
        "version": room_services.room_version(room),
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
                room = room_services.room_update(
                    actor=request.user,
                    room_id=room.id,
                    name=data["name"],
                    description=data["description"],
                    auditorium=data["auditorium"],
                    invitations=data["invitations"],
                    version=data["version"],
                )
            except room_services.StaleEdit as exc:
                # Show the room as it is now, and what this person tried to save.
                theirs, room = data, exc.current
                form = RoomEditForm(
                    initial=_edit_initial(room), room_id=room.id, invitations_allowed=allowed
                )
                status = 409
            except room_services.RoomSettingsInvalid as exc:
                form.add_error(exc.field, exc.message)
            except ChatBackendError as exc:
                form.add_error(None, told(exc, "Nothing was changed."))
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
    warning = room_services.privacy_change_warning(room, category, privacy)
    if warning and not form.cleaned_data["confirm"]:
        context = {"room": room, "category": category, "privacy": privacy, "warning": warning}
        template = "rooms/room_privacy.html#confirm" if request.htmx else "rooms/room_privacy.html"
        return TemplateResponse(request, template, context)
    try:
        room = room_services.room_set_privacy(actor=request.user, room_id=room.id, privacy=privacy)
    except ChatBackendError as exc:
        problem = told(exc, "The privacy was not changed.")
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
        room_services.room_set_disabled(actor=request.user, room_id=room.id, disabled=disabled)
    except ChatBackendError as exc:
        messages.error(request, told(exc, "Nothing was changed."))
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
    version = move["version"] or room_services.room_version(room)
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
        context["leaving"] = room_services.people_leaving_scope(room, chosen)
    elif request.method == "POST" and chosen:
        try:
            room_services.room_move(
                actor=request.user, room_id=room.id, category_id=chosen.id, version=version
            )
        except room_services.StaleEdit:
            context["error"] = "Someone else changed this room meanwhile: check it and try again."
            context["version"] = room_services.room_version(
                room_for_viewer(user=request.user, room_id=room.id)[0]
            )
            status = 409
        except (PermissionDenied, room_services.RoomSettingsInvalid) as exc:
            context["error"] = str(exc)
            status = 403 if isinstance(exc, PermissionDenied) else 400
        except ChatBackendError as exc:
            context["error"] = told(exc, "The room was not moved.")
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
            room_services.room_delete(actor=request.user, room_id=room.id, confirm_name=typed)
        except room_services.RoomSettingsInvalid as exc:
            context["error"], status = exc.message, 400
        except ChatBackendError as exc:
            context["error"], status = f"The room was not deleted. {exc.detail}", 503
        else:
            messages.success(
                request, format_html("The room “<bdi>{}</bdi>” was deleted.", room.name)
            )
            return redirect("rooms:list")
    return TemplateResponse(request, "rooms/room_delete.html", context, status=status)
