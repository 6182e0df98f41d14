"""Moderation pages: a room's history read, its messages removed, cleared and exported
(administrators; compliance officers read and export), and reported messages decided."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.http import HtmxHttpRequest
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.forms.moderation import (
    ClearHistoryForm,
    ExportForm,
    HistoryFilterForm,
    RemoveMessagesForm,
    ReportDecisionForm,
    SweepForm,
)
from rooms.models import Operation
from rooms.permissions import can_moderate
from rooms.selectors.moderation import (
    categories_to_export,
    room_names,
    room_to_export,
    room_to_moderate,
    room_to_read,
)
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
                except moderation_services.ModerationInvalid as exc:
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
        except moderation_services.ModerationInvalid as exc:
            form.add_error(exc.field, exc.message)
            status = 400
        except ChatBackendError as exc:
            context["error"], status = exc.detail, 503
    elif request.method == "POST":
        status = 400
    return TemplateResponse(request, "moderation/clear_history.html", context, status=status)


@require_GET
@login_required
def history(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """A page of the room's messages, newest first, filtered; each read is audited."""
    room, category = room_to_read(user=request.user, room_id=room_id)
    form = HistoryFilterForm(request.GET)
    context: dict[str, Any] = {"room": room, "category": category, "form": form}
    status = 200
    if form.is_valid():
        since, until = form.moments()
        try:
            page = moderation_services.history_read(
                actor=request.user,
                room_id=room.id,
                sender=form.cleaned_data["sender"],
                text=form.cleaned_data["text"],
                since=since,
                until=until,
                start=form.cleaned_data["start"],
            )
        except ChatBackendError as exc:
            context["error"], status = exc.detail, 503
        else:
            context["shown_count"] = sum(1 for m in page.messages if not m.removed)
            context["read"] = [
                (m, room.label(m.sender), datetime.fromtimestamp(m.sent_ms / 1000, tz=UTC))
                for m in page.messages
            ]
            if page.next:
                older = request.GET.copy()
                older["start"] = page.next
                context["older"] = older.urlencode()
    else:
        status = 400
    return TemplateResponse(request, "moderation/history.html", context, status=status)


@require_POST
@login_required
def remove_messages(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Remove the messages chosen on the history page; back to that page, told how it
    went (a failure part-way: send again, the rest are removed)."""
    room, _ = room_to_moderate(user=request.user, room_id=room_id)
    form = RemoveMessagesForm(request.POST)
    back = reverse("moderation:history", args=[room.id])
    if form.is_valid():
        wanted = form.cleaned_data["back"]
        if wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts=None):
            back = wanted
        try:
            removed = moderation_services.messages_remove(
                actor=request.user,
                room_id=room.id,
                event_ids=form.cleaned_data["shown" if form.cleaned_data["every"] else "event_ids"],
                reason=form.cleaned_data["reason"],
                notice=form.cleaned_data["notice"],
            )
        except moderation_services.ModerationInvalid as exc:
            messages.error(request, f"Nothing was removed: {exc.message}")
        except ChatBackendError as exc:
            messages.error(
                request,
                f"Some of the messages may not be removed. {exc.detail} "
                "Choose them again (or use Retry under Unfinished changes) to finish: "
                "those already removed stay so.",
            )
        else:
            messages.success(request, f"{removed} message{'s' if removed > 1 else ''} removed.")
    else:
        messages.error(request, "Nothing was removed: the choice could not be read.")
    return redirect(back)


@require_GET
@login_required
def reports(request: HtmxHttpRequest) -> HttpResponse:
    """Messages chat users reported in the rooms this person manages (every room's, for
    administrators), newest first, read from the chat server."""
    context: dict[str, Any] = {}
    status = 200
    try:
        found = moderation_services.reports_for(user=request.user)
    except ChatBackendError as exc:
        context["error"], status = exc.detail, 503
    else:
        rooms = room_names({r.room_id for r in found})
        context["reports"] = [
            (r, rooms.get(r.room_id, r.room_id), datetime.fromtimestamp(r.received_ms / 1000, UTC))
            for r in found
        ]
    return TemplateResponse(request, "moderation/reports.html", context, status=status)


DECIDED = {
    "dismiss": "The report was dismissed.",
    "remove": "The message was removed.",
    "remove_sender": "The message and its sender were removed.",
}


@require_POST
@login_required
def report_decide(request: HtmxHttpRequest, report_id: int) -> HttpResponse:
    """Dismiss a report or remove the reported message; back to the list."""
    form = ReportDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Nothing was decided: choose to dismiss or to remove.")
        return redirect("moderation:reports")
    decision = form.cleaned_data["decision"]
    remove, remove_sender = decision == "remove", decision == "remove_sender"
    try:
        moderation_services.report_decide(
            actor=request.user, report_id=report_id, remove=remove, remove_sender=remove_sender
        )
    except ChatNotFound:  # decided meanwhile (by someone else, or by an earlier try)
        messages.info(request, "This report is closed already: nothing more to decide.")
    except ChatBackendError as exc:
        messages.error(request, f"Nothing may have been decided. {exc.detail}")
    else:
        messages.success(request, DECIDED[decision])
    return redirect("moderation:reports")


@require_GET
@login_required
def export(request: HtmxHttpRequest, room_id: str) -> HttpResponse | StreamingHttpResponse:
    """The room's compliance export for the days chosen on the history page, streamed as
    JSON Lines (its last line: the SHA-256 of the lines before it)."""
    room, _ = room_to_export(user=request.user, room_id=room_id)
    form = HistoryFilterForm(request.GET)
    if not form.is_valid():
        return redirect("moderation:history", room_id=room.id)
    since, until = form.moments()
    try:
        return _exported(
            request.user,
            "room-export",
            form.cleaned_data["format"] or "jsonl",
            room_id=room.id,
            since=since,
            until=until,
        )
    except moderation_services.ModerationInvalid as exc:
        messages.error(request, exc.message)
        return redirect("moderation:history", room_id=room.id)


EXPORTED_AS = {"jsonl": "application/jsonl; charset=utf-8", "rsmf": "message/rfc822"}


def _exported(user: Any, name: str, fmt: str, **covering: Any) -> StreamingHttpResponse:
    """An export streamed as a download, in the format chosen."""
    export = moderation_services.export_rsmf if fmt == "rsmf" else moderation_services.export_lines
    response = StreamingHttpResponse(export(actor=user, **covering), content_type=EXPORTED_AS[fmt])
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{fmt}"'
    return response


@require_GET
@login_required
def export_many(request: HtmxHttpRequest) -> HttpResponse | StreamingHttpResponse:
    """A category's rooms, or what one person sent, between two days: the form, and once
    it is filled in, the export streamed as JSON Lines (as a room's)."""
    if not request.user.can_read_history:
        raise PermissionDenied(moderation_services.ONLY_EXPORTERS)
    form = ExportForm(request.GET or None, categories=categories_to_export())
    if not form.is_valid():
        status = 400 if request.GET else 200
        return TemplateResponse(request, "moderation/export.html", {"form": form}, status=status)
    since, until = form.moments()
    return _exported(
        request.user,
        "export",
        form.cleaned_data["format"],
        category_id=form.cleaned_data["category"],
        person=form.cleaned_data["person"],
        since=since,
        until=until,
    )


@require_http_methods(["GET", "POST"])
@login_required
def sweep(request: HtmxHttpRequest) -> HttpResponse:
    """Remove every message of a person, or with a phrase, in a room or a category's rooms:
    the criteria; once posted, how many match and a sample, with the reason to give; once
    confirmed, started, and on to its progress."""
    if not can_moderate(request.user):
        raise PermissionDenied(moderation_services.ONLY_ADMINISTRATORS_REMOVE)
    data = request.POST if request.method == "POST" else request.GET
    form = SweepForm(data or None, categories=categories_to_export())
    context: dict[str, Any] = {"form": form}
    if data.get("room"):
        context["room"] = room_to_moderate(user=request.user, room_id=data["room"])[0]
    status = 200
    if request.method == "POST" and form.is_valid():
        since, until = form.moments()
        matching = moderation_services.Matching(
            sender=form.cleaned_data["sender"],
            text=form.cleaned_data["text"],
            since=since,
            until=until,
        )
        where = {
            "room_id": form.cleaned_data["room"],
            "category_id": "" if form.cleaned_data["room"] else form.cleaned_data["category"],
        }
        confirmed = "confirm" in request.POST and form.cleaned_data["previewed"] == form.criteria()
        try:
            # Counted again each time: a confirmation refused keeps the count and the sample.
            context["preview"] = moderation_services.sweep_preview(
                actor=request.user, matching=matching, **where
            )
            context["previewed"] = form.criteria()
            if confirmed:
                op = moderation_services.sweep_start(
                    actor=request.user,
                    matching=matching,
                    reason=form.cleaned_data["reason"],
                    notice=form.cleaned_data["notice"],
                    **where,
                )
                return redirect("moderation:sweep_progress", pk=op.pk)
        except moderation_services.ModerationInvalid as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            status = 400
        except ChatBackendError as exc:
            context["error"], status = exc.detail, 503
    elif request.method == "POST":
        status = 400
    return TemplateResponse(request, "moderation/sweep.html", context, status=status)


@require_GET
@login_required
def sweep_progress(request: HtmxHttpRequest, pk: str) -> HttpResponse:
    """How far a removal across rooms has gone, room by room (followed while it runs)."""
    if not can_moderate(request.user):
        raise PermissionDenied(moderation_services.ONLY_ADMINISTRATORS_REMOVE)
    op = get_object_or_404(Operation, pk=pk, kind=moderation_services.SWEEP)
    work = moderation_services.Sweep.of(op)
    done, total = work.progress
    context = {
        "operation": op,
        "results": work.results,
        "total": total,
        "done": done,
        "removed": work.removed,
        "failed": [r for r in work.results if r["result"] == "failed"],
        "running": op.status == Operation.Status.RUNNING,
        "matching": work.matching,
        "reason": work.reason,
    }
    template = "moderation/sweep_progress.html"
    return TemplateResponse(request, template + ("#progress" if request.htmx else ""), context)
