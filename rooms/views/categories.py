"""The categories area: where a person may create rooms, and category administration
(scope, Creators, delete) for portal administrators."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import accounts.directory as directory
from accounts.directory import Principal
from portal.http import HtmxHttpRequest
from rooms.backend import errors
from rooms.backend.records import Category
from rooms.forms.categories import (
    AdoptForm,
    CategoryForm,
    CategorySearchForm,
    ChatOptionsForm,
    CreatorsForm,
    NewCategoryForm,
    ScopeChangeForm,
)
from rooms.forms.roles import PeopleSearchForm
from rooms.models import Operation
from rooms.selectors.categories import (
    categories_page,
    category_by_id,
    category_rooms,
    scope_candidates,
    some_rooms,
)
from rooms.services import categories as category_services
from rooms.services import directory as directory_services
from rooms.services import rooms as room_services
from rooms.views.common import directory_told, valid_or_400

CATEGORIES_PER_PAGE = 48
PREVIEW_ROOMS = 10  # rooms named in a what-if of the chat options


def category_page_context(
    request: HtmxHttpRequest, per_page: int, *, people: bool
) -> dict[str, Any]:
    """A searchable page of the categories listed to the person (for both category lists)."""
    form = CategorySearchForm(request.GET)
    search = form.cleaned_data["q"] if form.is_valid() else ""
    page, categories = categories_page(
        user=request.user,
        search=search,
        page=request.GET.get("page"),
        per_page=per_page,
        people=people,
    )
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "form": form,
        "page": page,
        "categories": categories,
        "searched": bool(search),
        "query": query.urlencode(),
    }


@require_GET
@login_required
def category_list(request: HtmxHttpRequest) -> TemplateResponse:
    """The categories in which the person may create rooms, from the index."""
    return TemplateResponse(
        request,
        "categories/category_list.html",
        category_page_context(request, CATEGORIES_PER_PAGE, people=False),
    )


ADMIN_CATEGORIES_PER_PAGE = 50


def _admin(request: HtmxHttpRequest) -> None:
    if not request.user.is_administrator:
        raise PermissionDenied("Only portal administrators manage categories.")


def _category(request: HtmxHttpRequest, category_id: str) -> Category:
    _admin(request)
    try:
        return category_by_id(category_id)
    except errors.ChatNotFound:
        raise Http404("There is no such category.") from None


@require_GET
@login_required
def category_manage(request: HtmxHttpRequest) -> TemplateResponse:
    """Every category with its scope and Creators, for portal administrators."""
    _admin(request)
    return TemplateResponse(
        request,
        "categories/category_manage.html",
        category_page_context(request, ADMIN_CATEGORIES_PER_PAGE, people=True),
    )


@require_http_methods(["GET", "POST"])
@login_required
def category_new(request: HtmxHttpRequest) -> HttpResponse:
    _admin(request)
    form = NewCategoryForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                category = category_services.category_create(
                    actor=request.user, **form.cleaned_data
                )
            except category_services.CategoryInvalid as exc:
                form.add_error(exc.field, exc.message)
            except errors.ChatBackendError as exc:
                form.add_error(None, f"The category was not created. {exc.detail}")
                status = 503
            else:
                messages.success(
                    request, format_html("The category “<bdi>{}</bdi>” was created.", category.name)
                )
                return redirect("categories:detail", category_id=category.id)
    return TemplateResponse(request, "categories/category_form.html", {"form": form}, status=status)


def _detail(
    request: HtmxHttpRequest,
    category: Category,
    *,
    form: CategoryForm | None = None,
    status: int = 200,
    **extra: Any,
) -> TemplateResponse:
    form = form or CategoryForm(
        initial={
            "name": category.name,
            "description": category.description,
            "invitations_allowed": category.invitations_allowed,
        }
    )
    context = {
        "category": category,
        "form": form,
        "rooms": category_rooms(category),
        "options_form": extra.pop("options_form", None)
        or ChatOptionsForm(
            initial=category.options.values() | {"keep_days": category.options.keep_days or None}
        ),
        "allowed": sorted(category.allowed_members, key=str.casefold),
        "denied": sorted(category.denied_members, key=str.casefold),
        "directory": directory.configured(),
        "directory_scopes": directory_services.scopes_of(category.id),
        "through": directory_services.reasons_in(category.id),
        **extra,
    }
    return TemplateResponse(request, "categories/category_detail.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def category_detail(request: HtmxHttpRequest, category_id: str) -> HttpResponse:
    """A category's settings, scope, Creators and rooms; POST saves the settings."""
    category = _category(request, category_id)
    if request.method == "GET":
        return _detail(request, category)
    form = CategoryForm(request.POST)
    if not form.is_valid():
        return _detail(request, category, form=form, status=400)
    try:
        category = category_services.category_update(
            actor=request.user, category_id=category.id, **form.cleaned_data
        )
    except category_services.CategoryInvalid as exc:
        form.add_error(exc.field, exc.message)
        return _detail(request, category, form=form, status=400)
    except errors.ChatBackendError as exc:
        form.add_error(None, f"Nothing was changed. {exc.detail}")
        return _detail(request, category, form=form, status=503)
    messages.success(request, "The category was saved.")
    return redirect("categories:detail", category_id=category.id)


@require_GET
@login_required
def category_people(request: HtmxHttpRequest, category_id: str) -> TemplateResponse:
    """The scope picker: chat users matching what was typed, and where they stand."""
    category = _category(request, category_id)
    term = valid_or_400(PeopleSearchForm(request.GET))["q"]
    found = {
        "candidates": scope_candidates(category=category, term=term),
        "q": term,
        # The directory's groups and OUs of that name too, marked (administrators).
        "found": _groups_named(request, term),
        "named": {s.dn for s in directory_services.scopes_of(category.id)},
    }
    if request.htmx:
        return TemplateResponse(
            request, "categories/category_detail.html#candidates", {"category": category} | found
        )
    return _detail(request, category, **found)


def _groups_named(request: HtmxHttpRequest, term: str) -> list[Principal]:
    """Groups and OUs whose name holds `term`, when a directory is there to ask and the
    person may name them (none otherwise: the people found are the answer)."""
    if not (directory.configured() and request.user.is_administrator and len(term.strip()) >= 2):
        return []
    try:
        return directory_services.principals_find(actor=request.user, text=term)
    except category_services.CategoryInvalid:
        return []


@require_POST
@login_required
def category_scope(request: HtmxHttpRequest, category_id: str) -> HttpResponse:
    """Change who is in scope or denied: preview what it does to the rooms, then apply."""
    category = _category(request, category_id)
    form = ScopeChangeForm(request.POST)
    valid_or_400(form)
    typed = form.typed()
    try:
        change = category_services.scope_change_check(
            actor=request.user, category_id=category.id, **typed
        )
    except category_services.CategoryInvalid as exc:
        return _detail(request, category, status=400, typed=typed, scope_error=exc.message)
    if change.empty:
        return _detail(
            request,
            category,
            status=400,
            typed=typed,
            scope_error="Type at least one chat ID to change the scope.",
        )
    if not form.cleaned_data["confirm"]:
        return TemplateResponse(
            request,
            "categories/scope_preview.html",
            {"category": category, "change": change, "typed": typed},
        )
    try:
        category_services.scope_change_apply(
            actor=request.user, category_id=category.id, change=change
        )
    except errors.ChatBackendError as exc:
        messages.error(
            request,
            f"The change stopped part-way: {exc.detail} The category below is as it is now; "
            "apply the change again to finish it.",
        )
    else:
        messages.success(request, "The scope was changed.")
    return redirect("categories:detail", category_id=category.id)


@require_POST
@login_required
def category_options(request: HtmxHttpRequest, category_id: str) -> HttpResponse:
    """Change the category's chat options: a what-if saying how many rooms change, then
    the change, carried to each room as one operation whose progress is shown."""
    category = _category(request, category_id)
    form = ChatOptionsForm(request.POST)
    valid_or_400(form)
    options = form.options()
    category, rooms = category_services.category_options_preview(
        actor=request.user, category_id=category.id, options=options
    )
    if options == category.options and not rooms:
        messages.info(request, "The chat options were already so: nothing was changed.")
        return redirect("categories:detail", category_id=category.id)
    if rooms and not form.cleaned_data["confirm"]:
        return TemplateResponse(
            request,
            "categories/options_preview.html",
            {
                "category": category,
                "options": options,
                "count": len(rooms),
                "sample": some_rooms(rooms, limit=PREVIEW_ROOMS),
            },
        )
    try:
        category, op = category_services.category_set_options(
            actor=request.user, category_id=category.id, options=options
        )
    except errors.ChatBackendError as exc:
        messages.error(request, f"Nothing was changed. {exc.detail}")
        return redirect("categories:detail", category_id=category.id)
    if op is None:
        messages.success(request, "The chat options were saved.")
        return redirect("categories:detail", category_id=category.id)
    return redirect("categories:options_progress", category_id=category.id, pk=op.pk)


@require_GET
@login_required
def category_options_progress(request: HtmxHttpRequest, category_id: str, pk: str) -> HttpResponse:
    """How far the change of the chat options has reached the category's rooms."""
    category = _category(request, category_id)
    op = get_object_or_404(Operation, pk=pk, kind=room_services.BULK)
    work = room_services.RoomsChange.of(op)
    done, total = work.progress
    context = {
        "category": category,
        "operation": op,
        "results": work.results,
        "total": total,
        "done": done,
        "failed": work.not_done,
        "running": op.status == Operation.Status.RUNNING,
    }
    template = "categories/options_progress.html"
    return TemplateResponse(request, template + ("#progress" if request.htmx else ""), context)


@require_POST
@login_required
def category_creators(request: HtmxHttpRequest, category_id: str) -> HttpResponse:
    category = _category(request, category_id)
    try:
        creators = valid_or_400(CreatorsForm(request.POST))["creators"]
        category_services.creators_set(
            actor=request.user, category_id=category.id, creators=creators
        )
    except category_services.CategoryInvalid as exc:
        return _detail(request, category, status=400, creators_error=exc.message)
    except errors.ChatBackendError as exc:
        messages.error(request, f"Nothing was changed. {exc.detail}")
    else:
        messages.success(request, "The Creators were saved.")
    return redirect("categories:detail", category_id=category.id)


@require_http_methods(["GET", "POST"])
@login_required
def category_delete(request: HtmxHttpRequest, category_id: str) -> HttpResponse:
    category = _category(request, category_id)
    if request.method == "GET":
        return TemplateResponse(request, "categories/category_delete.html", {"category": category})
    try:
        category_services.category_delete(actor=request.user, category_id=category.id)
    except category_services.CategoryInvalid as exc:
        messages.error(request, exc.message)
        return redirect("categories:detail", category_id=category.id)
    except errors.ChatBackendError as exc:
        messages.error(request, f"The category was not deleted. {exc.detail}")
        return redirect("categories:detail", category_id=category.id)
    messages.success(
        request, format_html("The category “<bdi>{}</bdi>” was deleted.", category.name)
    )
    return redirect("categories:manage")


@require_http_methods(["GET", "POST"])
@login_required
def category_adopt(request: HtmxHttpRequest) -> HttpResponse:
    """Find a space or a room made outside the portal, see how it maps (and what does not
    fit), and adopt it: a space as a category with its rooms, a room into a category."""
    _admin(request)
    chosen = valid_or_400(AdoptForm(request.POST if request.method == "POST" else request.GET))
    space_id, room_id = chosen["space"].strip(), chosen["room"].strip()
    context: dict[str, Any] = {"q": chosen["q"].strip(), "space_id": space_id, "room_id": room_id}
    status = 200
    try:
        if request.method == "POST":
            return _adopt(request, space_id, room_id, chosen["category"])
        if space_id:
            context["fit"] = category_services.adoption_fit(actor=request.user, space_id=space_id)
            context["last"] = category_services.last_adoption(space_id)
        elif room_id:
            context["categories"] = category_services.categories_to_adopt_into(actor=request.user)
            if chosen["category"]:
                context["category_id"] = chosen["category"]
                context["room_fit"] = category_services.room_adoption_fit(
                    actor=request.user, room_id=room_id, category_id=chosen["category"]
                )
        elif context["q"]:
            context["found"] = category_services.adoptable_found(
                actor=request.user, term=context["q"]
            )
    except category_services.CategoryInvalid as exc:
        context["error"], status = exc.message, 400
    except errors.ChatNotFound as exc:
        context["error"], status = f"There is no such space or room. {exc.detail}", 404
    except errors.ChatBackendError as exc:
        context["error"], status = f"Nothing was changed. {exc.detail}", 503
    return TemplateResponse(request, "categories/category_adopt.html", context, status=status)


def _adopt(request: HtmxHttpRequest, space_id: str, room_id: str, category_id: str) -> HttpResponse:
    """Adopt the space (results room by room on its page) or the room (then its page)."""
    if room_id:
        fit = category_services.room_adopt(
            actor=request.user, room_id=room_id, category_id=category_id
        )
        messages.success(request, f"“{fit.name}” was adopted.")
        return redirect("rooms:detail", room_id=room_id)
    op = category_services.category_adopt(actor=request.user, space_id=space_id)
    if op.status == op.Status.SUCCEEDED:
        messages.success(request, f"“{op.target_label}” was adopted.")
        return redirect("categories:detail", category_id=op.change["category_id"])
    messages.error(
        request,
        f"The adoption stopped part-way: {op.error} The results are below; adopting "
        "again carries on where it stopped.",
    )
    return redirect(f"{request.path}?{urlencode({'space': space_id})}")


@require_GET
@login_required
def category_directory(request: HtmxHttpRequest, category_id: str) -> TemplateResponse:
    """The directory picker: groups and OUs whose name contains what was typed."""
    category = _category(request, category_id)
    text = request.GET.get("q", "")[:200]
    found: list[Principal] = []
    error = ""
    try:
        found = directory_services.principals_find(actor=request.user, text=text)
    except category_services.CategoryInvalid as exc:
        error = exc.message
    if request.htmx:
        return TemplateResponse(
            request,
            "categories/category_detail.html#principals",
            {
                "category": category,
                "found": found,
                "dq": text,
                "directory_error": error,
                "named": {s.dn for s in directory_services.scopes_of(category.id)},
            },
        )
    named = {s.dn for s in directory_services.scopes_of(category.id)}
    return _detail(request, category, found=found, dq=text, directory_error=error, named=named)


@require_POST
@login_required
def category_directory_add(request: HtmxHttpRequest, category_id: str) -> HttpResponse:
    """Name a group or an OU in the scope, as denied, or as Creators: what it does first,
    then done."""
    category = _category(request, category_id)
    dn, standing = request.POST.get("dn", "")[:1024], request.POST.get("standing", "allowed")
    subtree = request.POST.get("subtree") != "0"  # an OU: with the OUs under it
    try:
        if request.POST.get("confirm") != "1":
            principal, change = directory_services.principal_preview(
                actor=request.user,
                category_id=category.id,
                dn=dn,
                standing=standing,
                subtree=subtree,
            )
            return TemplateResponse(
                request,
                "categories/directory_preview.html",
                {
                    "category": category,
                    "label": principal.label_as(subtree=subtree),
                    "principal": principal,
                    "subtree": subtree,
                    "standing": standing,
                    "change": change,
                },
            )
        change = directory_services.principal_add(
            actor=request.user, category_id=category.id, dn=dn, standing=standing, subtree=subtree
        )
    except category_services.CategoryInvalid as exc:
        return _detail(request, category, status=400, directory_error=exc.message)
    _told(request, change)
    return redirect("categories:detail", category_id=category.id)


@require_POST
@login_required
def category_directory_remove(request: HtmxHttpRequest, category_id: str) -> HttpResponse:
    """Take a group or an OU out of the scope: who leaves first, then done."""
    category = _category(request, category_id)
    try:
        scope_id = int(request.POST.get("scope", ""))
    except ValueError:
        raise Http404("There is no such group or OU in this category.") from None
    try:
        if request.POST.get("confirm") != "1":
            named, change = directory_services.removal_preview(
                actor=request.user, category_id=category.id, scope_id=scope_id
            )
            return TemplateResponse(
                request,
                "categories/directory_preview.html",
                {"category": category, "named": named, "change": change},
            )
        change = directory_services.principal_remove(
            actor=request.user, category_id=category.id, scope_id=scope_id
        )
    except category_services.CategoryInvalid as exc:
        return _detail(request, category, status=400, directory_error=exc.message)
    _told(request, change)
    return redirect("categories:detail", category_id=category.id)


def _told(request: HtmxHttpRequest, change: directory_services.Change) -> None:
    parts = (
        (change.added, "came into the scope"),
        (change.removed, "left the scope"),
        (change.denied, "denied"),
        (change.undenied, "no longer denied"),
        (change.creators, "made Creators"),
        (change.uncreated, "no longer Creators"),
    )
    directory_told(request, parts, len(change.failed))
