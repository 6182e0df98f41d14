"""Finding, viewing and creating rooms."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.http import HtmxHttpRequest
from rooms import services
from rooms.backend.errors import ChatBackendError
from rooms.backend.records import Privacy
from rooms.forms import NameCheckForm, RoomCreateForm, RoomFilterForm
from rooms.models import IndexedRoom
from rooms.permissions import can_delete
from rooms.room_requests import name_check
from rooms.selectors import (
    categories_of,
    category_choices,
    directory_rooms,
    filter_rooms,
    listings,
    room_for_viewer,
    rooms_for_user,
)
from rooms.views.common import run_for_form
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
    template = "rooms/room_find.html#results" if request.htmx else "rooms/room_find.html"
    return TemplateResponse(request, template, context)


@require_POST
@login_required
def room_join(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Join an Open room; the person lands on it, and finds it in their chat client."""
    room, _ = room_for_viewer(user=request.user, room_id=room_id)
    try:
        joined = services.room_join(actor=request.user, room_id=room.id)
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
        "privacy_options": list(Privacy),
    }
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
        earlier := services.submitted_room_id(
            actor=request.user, submission=request.POST.get("submission", "")
        )
    ):
        messages.info(request, "This form was already sent: the room it created is below.")
        return redirect("rooms:detail", room_id=earlier)
    elif request.method == "POST" and not form.is_valid():
        status = 400
        services.room_create_rejected(actor=request.user, data=form.data, errors=form.errors)
    elif request.method == "POST":
        room, status = run_for_form(
            form,
            lambda: services.room_create(
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
