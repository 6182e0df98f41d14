"""Moderation pages: clearing a room's history (portal administrators)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods

from portal.http import HtmxHttpRequest
from rooms.backend.errors import ChatBackendError
from rooms.forms.moderation import ClearHistoryForm
from rooms.selectors.moderation import room_to_moderate
from rooms.services import moderation as moderation_services


@require_http_methods(["GET", "POST"])
@login_required
def clear_history(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Choose a moment; see how many messages go; type the room's name; clear. Without
    the name (the first POST) the page only counts."""
    room, category = room_to_moderate(user=request.user, room_id=room_id)
    form = ClearHistoryForm(request.POST if request.method == "POST" else None)
    context: dict[str, Any] = {"room": room, "category": category, "form": form}
    status = 200
    if form.is_valid():
        before, typed = form.cleaned_data["before"], form.cleaned_data["confirm_name"]
        confirmed = (
            "confirm" in request.POST and form.cleaned_data["counted"] == form["before"].value()
        )
        try:
            if confirmed:
                try:
                    moderation_services.clear_history(
                        actor=request.user, room_id=room.id, before=before, confirm_name=typed
                    )
                except ChatBackendError:
                    context["unfinished"] = True
                    raise
                except moderation_services.ClearInvalid as exc:
                    form.add_error(exc.field, exc.message)
                    status = 400
                else:
                    messages.success(
                        request,
                        format_html(
                            "The messages sent in “<bdi>{}</bdi>” before {} were cleared.",
                            room.name,
                            before.strftime("%Y-%m-%d %H:%M"),
                        ),
                    )
                    return redirect("rooms:detail", room_id=room.id)
            context["count"] = moderation_services.clear_preview(
                actor=request.user, room_id=room.id, before=before
            )[1]
        except moderation_services.ClearInvalid as exc:
            form.add_error(exc.field, exc.message)
            status = 400
        except ChatBackendError as exc:
            context["error"], status = exc.detail, 503
    elif request.method == "POST":
        status = 400
    return TemplateResponse(request, "moderation/clear_history.html", context, status=status)
