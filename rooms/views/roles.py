"""The roles panel: Members, Managers and Presenters, the people picker, bulk add and the
"what can this person do here" explainer."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

import accounts.directory as directory
from accounts.directory import Principal
from portal.http import HtmxHttpRequest
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.records import Category, Role, Room
from rooms.forms.roles import (
    BulkRoleForm,
    ExplainForm,
    JoinDecisionForm,
    PeopleSearchForm,
    RoleChangeForm,
)
from rooms.models import Operation
from rooms.permissions import can_manage
from rooms.selectors.requests import asking_to_join
from rooms.selectors.roles import explained, role_candidates, role_list
from rooms.selectors.rooms import room_for_manager, room_for_viewer
from rooms.services import directory_roles
from rooms.services import roles as role_services
from rooms.services.categories import CategoryInvalid
from rooms.views.common import directory_told, valid_or_400

SHOWN = 100  # people listed per role on the room's page


def roles_context(request: HtmxHttpRequest, room: Room, category: Category) -> dict[str, Any]:
    """What the roles panel shows: each role's people, filtered by `q`, at most SHOWN of
    each (a group of thousands is found by name, not scrolled), with the group or OU of
    the directory that gives each shown person the role."""
    typed = valid_or_400(PeopleSearchForm(request.GET))["q"]
    term = typed.strip().casefold()
    lists, counts = {}, {}
    for role in Role:
        counts[role.value], lists[role.value] = role_list(
            room=room, role=role, term=term, limit=SHOWN
        )
    shown = {person for people in lists.values() for person, _ in people}
    manager = can_manage(request.user, room)
    asking = asking_to_join(room=room) if manager else []
    return {
        "room": room,
        "category": category,
        "lists": lists,
        "counts": counts,
        "more": {role: max(0, count - SHOWN) for role, count in counts.items()},
        "q": typed,
        "can_manage": manager,
        # Who asks to join is for the Managers (and administrators) to see and decide.
        "asking": asking,
        "directory": directory.configured(),
        "named_groups": directory_roles.named_in(room.id),
        "through": directory_roles.reasons_in(room.id, people=shown),
    }


def _after_change(request: HtmxHttpRequest, room: Room, category: Category) -> HttpResponse:
    if request.htmx:
        response = TemplateResponse(
            request, "roles/_room_roles.html", roles_context(request, room, category)
        )
        return trigger_client_event(response, "rolesChanged")
    return redirect("rooms:detail", room_id=room.id)


@require_GET
@login_required
def roles_panel(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """The panel alone (HTMX filtering); without HTMX, the room's page."""
    room, category = room_for_viewer(user=request.user, room_id=room_id)
    if not request.htmx:
        return redirect("rooms:detail", room_id=room.id)
    return TemplateResponse(
        request, "roles/_room_roles.html", roles_context(request, room, category)
    )


@require_GET
@login_required
def people_picker(request: HtmxHttpRequest, room_id: str) -> TemplateResponse:
    """Chat users matching what was typed, in or out of the category's scope, and the
    directory's groups and OUs of that name (marked)."""
    room, category = room_for_manager(user=request.user, room_id=room_id)
    search = valid_or_400(PeopleSearchForm(request.GET))
    role, term = search["role"], search["q"]
    groups: list[Principal] = []
    error = ""
    if directory.configured() and len(term.strip()) >= 2:
        try:
            groups = directory_roles.principals_find(actor=request.user, room_id=room.id, text=term)
        except CategoryInvalid as exc:
            error = exc.message
    context = {
        "room": room,
        "category": category,
        "role": role,
        "q": term,
        "candidates": role_candidates(room=room, category=category, role=role, term=term),
        "groups": groups,
        "directory_error": error,
        "roles": list(Role),
    }
    template = "roles/people_picker.html#results" if request.htmx else "roles/people_picker.html"
    return TemplateResponse(request, template, context)


@require_POST
@login_required
def role_add(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    room, category = room_for_manager(user=request.user, room_id=room_id)
    change = valid_or_400(RoleChangeForm(request.POST))
    role, person = change["role"], change["user_id"]
    wanted = [Role.MEMBER, role] if change["also_member"] else [role]
    try:
        for each in wanted:
            room = role_services.role_add(
                actor=request.user, room_id=room.id, role=each, user_id=person
            )
    except role_services.RoleRefused as exc:
        messages.error(request, str(exc))
    except ChatNotFound:
        messages.error(request, f"There is no person {person} on the chat server.")
    except ChatBackendError as exc:
        messages.error(request, f"{person} was not added. {exc.detail}")
    else:
        messages.success(
            request,
            format_html(
                "<bdi>{}</bdi> is now {}.",
                room.label(person),
                " and ".join(r.label for r in wanted),
            ),
        )
    return _after_change(request, room, category)


@require_POST
@login_required
def role_remove(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Remove someone from a role, after a confirmation."""
    room, category = room_for_manager(user=request.user, room_id=room_id)
    change = valid_or_400(RoleChangeForm(request.POST))
    role, person = change["role"], change["user_id"]
    if not change["confirm"]:
        return TemplateResponse(
            request,
            "roles/role_remove.html",
            {"room": room, "category": category, "role": role, "person": person},
        )
    try:
        room = role_services.role_remove(
            actor=request.user, room_id=room.id, role=role, user_id=person
        )
    except role_services.RoleRefused as exc:
        messages.error(request, str(exc))
    except ChatBackendError as exc:
        messages.error(request, f"Nothing was changed. {exc.detail}")
    else:
        messages.success(
            request, format_html("<bdi>{}</bdi> is no longer a {}.", person, role.label)
        )
    return _after_change(request, room, category)


@require_POST
@login_required
def join_decide(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Let in, or turn down, someone asking to join; back to the page it was decided on."""
    room, category = room_for_manager(user=request.user, room_id=room_id)
    decision = valid_or_400(JoinDecisionForm(request.POST))
    person = decision["user_id"]
    try:
        if decision["decision"] == "accept":
            room = role_services.join_accept(actor=request.user, room_id=room.id, user_id=person)
            done = "is now a Member"
        else:
            room = role_services.join_decline(
                actor=request.user, room_id=room.id, user_id=person, reason=decision["reason"]
            )
            done = "was turned down"
    except role_services.RoleRefused as exc:
        messages.error(request, str(exc))
    except ChatBackendError as exc:
        messages.error(request, f"Nothing was changed: {person} is still asking. {exc.detail}")
    else:
        messages.success(request, format_html("<bdi>{}</bdi> {}.", room.label(person), done))
    back = decision["next"]
    if not request.htmx and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return _after_change(request, room, category)


@require_http_methods(["GET", "POST"])
@login_required
def role_bulk(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Paste a list, see each line's fate, then apply."""
    room, category = room_for_manager(user=request.user, room_id=room_id)
    bulk = valid_or_400(BulkRoleForm(request.POST if request.method == "POST" else request.GET))
    role, text = bulk["role"], bulk["people"]
    context = {
        "room": room,
        "category": category,
        "role": role,
        "roles": list(Role),
        "text": text,
        "limit": role_services.MAX_BULK_LINES,
        "fates": role_services.FATE_LABELS,
    }
    status = 200
    if request.method == "POST":
        try:
            if bulk["apply"]:
                op = role_services.bulk_start(
                    actor=request.user, room_id=room.id, role=role, text=text
                )
                return redirect("roles:bulk_run", room_id=room.id, run_id=op.pk)
            preview = role_services.bulk_preview(
                actor=request.user, room_id=room.id, role=role, text=text
            )
            context["preview"] = preview
            context["to_add"] = sum(1 for line in preview if line.will_add)
        except role_services.RoleRefused as exc:
            context["error"], status = str(exc), 400
        except ChatBackendError as exc:
            context["error"], status = f"Nothing was changed. {exc.detail}", 503
    return TemplateResponse(request, "roles/role_bulk.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def bulk_run(request: HtmxHttpRequest, room_id: str, run_id: uuid.UUID) -> HttpResponse:
    """A bulk add's progress, followed while the job runner applies it; a POST resumes
    one that the chat server stopped (its owner, or an administrator)."""
    room, category = room_for_manager(user=request.user, room_id=room_id)
    op = get_object_or_404(Operation, pk=run_id, kind=role_services.ROLES, target_id=room.id)
    if op.actor_id != request.user.pk and not request.user.is_administrator:
        raise PermissionDenied("This bulk add belongs to someone else.")
    if request.method == "POST" and op.status == Operation.Status.UNFINISHED:
        op = role_services.role_changes_resume(op, actor=request.user)
    changes = role_services.RoleChanges.of(op)
    done, total = changes.progress
    context = {
        "room": room,
        "category": category,
        "run": op,
        "role": changes.role,
        "lines": changes.lines,
        "running": op.status == Operation.Status.RUNNING,
        "unfinished": op.status == Operation.Status.UNFINISHED,
        "done": done,
        "total": total,
        "percent": int(100 * done / total) if total else 100,
    }
    if request.htmx:
        return TemplateResponse(request, "roles/bulk_run.html#progress", context)
    if request.method == "POST":
        return redirect("roles:bulk_run", room_id=room.id, run_id=op.pk)
    return TemplateResponse(request, "roles/bulk_run.html", context)


@require_GET
@login_required
def room_explain(request: HtmxHttpRequest, room_id: str) -> TemplateResponse:
    """What a person can do in the room, and why."""
    room, category = room_for_viewer(user=request.user, room_id=room_id)
    if not (can_manage(request.user, room) or request.user.can_audit):
        raise PermissionDenied("Only Managers, administrators and auditors see this.")
    asked = valid_or_400(ExplainForm(request.GET))["person"].strip()
    context: dict[str, Any] = {"room": room, "category": category}
    if asked:
        context["explained"] = explained(room=room, category=category, asked=asked)
    template = "roles/room_explain.html#result" if request.htmx else "roles/room_explain.html"
    return TemplateResponse(request, template, context)


@require_GET
@login_required
def directory_find(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """The directory picker: groups and OUs whose name contains what was typed."""
    room, category = room_for_manager(user=request.user, room_id=room_id)
    text = request.GET.get("q", "")[:200]
    found: list[Principal] = []
    error = ""
    try:
        found = directory_roles.principals_find(actor=request.user, room_id=room.id, text=text)
    except CategoryInvalid as exc:
        error = exc.message
    context = roles_context(request, room, category) | {
        "found": found,
        "dq": text,
        "directory_error": error,
    }
    if request.htmx:
        return TemplateResponse(request, "roles/_directory.html#principals", context)
    return TemplateResponse(request, "roles/directory_find.html", context)


def _role(request: HtmxHttpRequest) -> Role:
    try:
        return Role(request.POST.get("role", ""))
    except ValueError:
        raise BadRequest("Say member, manager or presenter.") from None


@require_POST
@login_required
def directory_add(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Name a group or an OU for a role: who gets it (and who the rules keep out) first,
    then done."""
    room, _ = room_for_manager(user=request.user, room_id=room_id)
    dn, role = request.POST.get("dn", "")[:1024], _role(request)
    subtree = request.POST.get("subtree") != "0"  # an OU: with the OUs under it
    try:
        if request.POST.get("confirm") != "1":
            principal, change = directory_roles.principal_preview(
                actor=request.user, room_id=room.id, role=role, dn=dn, subtree=subtree
            )
            context = {
                "room": room,
                "label": principal.label_as(subtree=subtree),
                "principal": principal,
                "subtree": subtree,
            }
            return TemplateResponse(
                request,
                "roles/directory_preview.html",
                context | {"role": role, "change": change},
            )
        change = directory_roles.principal_add(
            actor=request.user, room_id=room.id, role=role, dn=dn, subtree=subtree
        )
    except (CategoryInvalid, role_services.RoleRefused) as exc:
        messages.error(request, str(exc))
        return redirect("rooms:detail", room_id=room.id)
    _told(request, change)
    return redirect("rooms:detail", room_id=room.id)


@require_POST
@login_required
def directory_remove(request: HtmxHttpRequest, room_id: str) -> HttpResponse:
    """Take a group or an OU off a role: who loses which role first, then done."""
    room, _ = room_for_manager(user=request.user, room_id=room_id)
    try:
        named_id = int(request.POST.get("named", ""))
    except ValueError:
        raise BadRequest("Say which group or OU to take off.") from None
    try:
        if request.POST.get("confirm") != "1":
            named, change = directory_roles.removal_preview(
                actor=request.user, room_id=room.id, named_id=named_id
            )
            return TemplateResponse(
                request,
                "roles/directory_preview.html",
                {"room": room, "named": named, "change": change},
            )
        change = directory_roles.principal_remove(
            actor=request.user, room_id=room.id, named_id=named_id
        )
    except CategoryInvalid as exc:
        messages.error(request, str(exc))
        return redirect("rooms:detail", room_id=room.id)
    _told(request, change)
    return redirect("rooms:detail", room_id=room.id)


def _told(request: HtmxHttpRequest, change: directory_roles.RoleChange) -> None:
    parts = (
        (change.added, "given a role"),
        (change.removed, "lost a role"),
        (change.skipped, "kept out by the rules"),
    )
    directory_told(request, parts, len(change.failed))
