"""Categories through the API: list and read them; administrators create, change, set the
scope (with who loses which room roles, as a what-if too), Creators and chat options
(given to every room as an operation), and delete."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from ninja.params.functions import Header
from pydantic import ConfigDict, Field, StrictBool, StrictInt

from accounts.models import User
from portal.api.common import (
    READ_ERRORS,
    WRITE_ERRORS,
    ApiRequest,
    PrincipalOut,
    Problem,
    Text,
    changed_since_read,
    chat_ids,
    once,
    version_of,
    writes,
)
from rooms.backend.records import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH, Category
from rooms.chatserver.policy import KEEP_DAYS_AT_MOST
from rooms.models import IndexedCategory
from rooms.selectors import Hidden, NotFound
from rooms.selectors.requests import categories_for_requests
from rooms.services import categories as category_services
from rooms.services import directory as directory_services
from rooms.services.roles import MAX_BULK_LINES

router = Router(tags=["categories"])

NO_SUCH_CATEGORY = "There is no such category, or you may not see it."


class CategorySummary(Schema):
    id: str
    name: str
    description: str
    room_count: int


class CategoryOut(CategorySummary):
    invitations_allowed: bool
    chat_history: bool = Field(description="People who join a room later see what was said")
    file_uploads: bool = Field(description="Files may be sent in its rooms")
    keep_days: int = Field(description="Days the chat server keeps a message (0: for ever)")
    managers_read: bool = Field(description="Rooms' Managers read their history in the portal")
    allowed: list[str]
    denied: list[str]
    creators: list[str]
    room_ids: list[str]


class CategoryIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    description: Text = Field("", max_length=DESCRIPTION_MAX_LENGTH)
    invitations_allowed: StrictBool = True
    chat_history: StrictBool = True
    file_uploads: StrictBool = True
    keep_days: StrictInt = Field(0, ge=0, le=KEEP_DAYS_AT_MOST, description="0: for ever")
    managers_read: StrictBool = False


class CategoryChange(Schema):
    """Any of these; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(None, min_length=1, max_length=NAME_MAX_LENGTH)
    description: Text | None = Field(None, max_length=DESCRIPTION_MAX_LENGTH)
    invitations_allowed: StrictBool | None = None


class OptionsIn(Schema):
    """Any of the chat options; one left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    chat_history: StrictBool | None = None
    file_uploads: StrictBool | None = None
    keep_days: StrictInt | None = Field(
        None,
        ge=0,
        le=KEEP_DAYS_AT_MOST,
        description="Days the chat server keeps a message; older ones are deleted (0: for ever)",
    )
    managers_read: StrictBool | None = None


class OptionsResult(Schema):
    applied: bool
    rooms: list[str] = Field(description="The rooms whose options change (or would)")
    operation: str | None = Field(
        None, description="Poll GET /api/v1/operations/{operation}: a result per room"
    )
    category: CategoryOut


class ScopeIn(Schema):
    """Chat IDs to put in the scope, take out of it, deny, and allow again."""

    model_config = ConfigDict(extra="forbid")

    add: list[Text] = Field(default_factory=list, max_length=MAX_BULK_LINES)
    remove: list[Text] = Field(default_factory=list, max_length=MAX_BULK_LINES)
    deny: list[Text] = Field(default_factory=list, max_length=MAX_BULK_LINES)
    undeny: list[Text] = Field(default_factory=list, max_length=MAX_BULK_LINES)


class Leaving(Schema):
    person: str
    roles: dict[str, list[str]] = Field(description="Room ID → the roles lost there")


class ScopeResult(Schema):
    applied: bool
    leaving: list[Leaving]
    category: CategoryOut | None = None


class CreatorsIn(Schema):
    model_config = ConfigDict(extra="forbid")

    creators: list[Text] = Field(max_length=MAX_BULK_LINES)


def _out(category: Category) -> dict[str, Any]:
    return {
        "id": category.id,
        "name": category.name,
        "description": category.description,
        "room_count": category.room_count,
        "invitations_allowed": category.invitations_allowed,
        **category.options.values(),
        "allowed": sorted(category.allowed_members),
        "denied": sorted(category.denied_members),
        "creators": sorted(category.creators),
        "room_ids": list(category.room_ids),
    }


def _visible(user: User, category_id: str) -> Category:
    """The category, if the person may see it (in its scope, or an administrator); one
    that is there but not theirs is answered alike, and the probe audited."""
    for category in categories_for_requests(user=user):
        if category.id == category_id:
            return category
    if IndexedCategory.objects.filter(category_id=category_id).exists():
        raise Hidden(NO_SUCH_CATEGORY)
    raise NotFound(NO_SUCH_CATEGORY)


@router.get("", response={200: list[CategorySummary]} | READ_ERRORS, summary="List categories")
def category_list(request: ApiRequest) -> list[dict[str, Any]]:
    """The categories whose scope holds the token's owner (every one, for administrators)."""
    found = categories_for_requests(user=request.user)
    return [
        {"id": c.id, "name": c.name, "description": c.description, "room_count": c.room_count}
        for c in sorted(found, key=lambda c: c.name.casefold())
    ]


@router.post(
    "", response={201: CategoryOut, 200: CategoryIn} | WRITE_ERRORS, summary="Create a category"
)
def category_create(
    request: ApiRequest,
    response: HttpResponse,
    new: CategoryIn,
    dry_run: bool = False,
    idempotency_key: str = Header("", alias="Idempotency-Key", max_length=255),
) -> tuple[int, dict[str, Any]]:
    """A category with nobody in its scope yet (administrators). The same `Idempotency-Key`
    sent again returns the first answer, and no second category."""
    actor = request.user
    if not actor.is_administrator:
        raise PermissionDenied("Only portal administrators manage categories.")
    if dry_run:
        problem = category_services.category_name_problem(new.name)
        if problem:
            raise category_services.CategoryInvalid("name", problem)
        return 200, new.model_dump()
    writes(request)
    return once(
        request,
        response,
        idempotency_key,
        lambda: (201, _out(category_services.category_create(actor=actor, **new.model_dump()))),
    )


def etag(category: Category) -> str:
    """A category's entity tag: its version (name, description, invitations, scope,
    Creators)."""
    return f'"{category_services.category_version(category)}"'


IF_MATCH = Header("", alias="If-Match", description="The category's `ETag` as read")
STALE: dict[int, type[Problem]] = {412: Problem}


def stale(request: HttpRequest, exc: category_services.CategoryStale) -> HttpResponse:
    """412: the category changed since its ETag was read; here it is now."""
    return changed_since_read("category", _out(exc.current), etag(exc.current))


@router.get("/{category_id}", response={200: CategoryOut} | READ_ERRORS, summary="Get a category")
def category_get(request: ApiRequest, response: HttpResponse, category_id: str) -> dict[str, Any]:
    """The category, with its `ETag`: send it back as `If-Match` to change the category
    only if nobody changed it meanwhile (412 otherwise, with the category as it is now)."""
    category = _visible(request.user, category_id)
    response["ETag"] = etag(category)
    return _out(category)


@router.patch(
    "/{category_id}",
    response={200: CategoryOut} | STALE | WRITE_ERRORS,
    summary="Change a category",
)
def category_update(
    request: ApiRequest,
    response: HttpResponse,
    category_id: str,
    change: CategoryChange,
    dry_run: bool = False,
    if_match: str = IF_MATCH,
) -> dict[str, Any]:
    """Its name, description and invitations, each left as it is when left out; with
    `dry_run=true`, checked and shown as it would be."""
    actor = request.user
    asked = change.model_dump(exclude_none=True)
    if dry_run:
        now = category_services.category_change_check(
            actor=actor, category_id=category_id, name=asked.get("name", "")
        )
        return _out(now) | asked
    writes(request)
    after = category_services.category_update(
        actor=actor, category_id=category_id, version=version_of(if_match), **asked
    )
    response["ETag"] = etag(after)
    return _out(after)


@router.post(
    "/{category_id}/scope",
    response={200: ScopeResult} | STALE | WRITE_ERRORS,
    summary="Change who is in scope",
)
def category_scope(
    request: ApiRequest,
    response: HttpResponse,
    category_id: str,
    change: ScopeIn,
    dry_run: bool = False,
    if_match: str = IF_MATCH,
) -> dict[str, Any]:
    """Put people in the scope, take them out, deny them or allow them again. People who
    leave the scope lose their roles in the category's rooms: listed first, as the page does,
    and only listed with `dry_run=true`."""
    actor = request.user
    checked = category_services.scope_change_check(
        actor=actor,
        category_id=category_id,
        **{key: "\n".join(getattr(change, key)) for key in ("add", "remove", "deny", "undeny")},
    )
    leaving = [
        {"person": person, "roles": {room.id: [str(r) for r in roles] for room, roles in held}}
        for person, held in checked.leaving
    ]
    if dry_run or checked.empty:
        return {"applied": False, "leaving": leaving}
    writes(request)
    after = category_services.scope_change_apply(
        actor=actor, category_id=category_id, change=checked, version=version_of(if_match)
    )
    response["ETag"] = etag(after)
    return {"applied": True, "leaving": leaving, "category": _out(after)}


@router.put(
    "/{category_id}/options",
    response={200: OptionsResult, 202: OptionsResult} | STALE | WRITE_ERRORS,
    summary="Set the chat options",
)
def category_options(
    request: ApiRequest,
    response: HttpResponse,
    category_id: str,
    given: OptionsIn,
    dry_run: bool = False,
    if_match: str = IF_MATCH,
) -> tuple[int, dict[str, Any]]:
    """Chat history and file upload for every room of the category (administrators):
    the category at once, then each room whose options differ, as one operation of the
    job runner (202, with the operation to poll: a result per room); 200 when no room
    changes. With `dry_run=true`, the rooms that would change."""
    actor = request.user
    current = category_services.category_change_check(actor=actor, category_id=category_id)
    options = replace(current.options, **given.model_dump(exclude_none=True))
    now, rooms = category_services.category_options_preview(
        actor=actor, category_id=category_id, options=options
    )
    if dry_run:
        shown = _out(now) | options.values()
        return 200, {"applied": False, "rooms": rooms, "category": shown}
    writes(request)
    after, op = category_services.category_set_options(
        actor=actor, category_id=category_id, options=options, version=version_of(if_match)
    )
    response["ETag"] = etag(after)
    answer = {"applied": True, "rooms": rooms, "category": _out(after)}
    if op is None:
        return 200, answer
    response["Location"] = f"/api/v1/operations/{op.pk}"
    return 202, answer | {"operation": str(op.pk)}


@router.put(
    "/{category_id}/creators",
    response={200: CategoryOut} | STALE | WRITE_ERRORS,
    summary="Set the Creators",
)
def category_creators(
    request: ApiRequest,
    response: HttpResponse,
    category_id: str,
    given: CreatorsIn,
    dry_run: bool = False,
    if_match: str = IF_MATCH,
) -> dict[str, Any]:
    """Make exactly these people (who must be in scope) the category's Creators."""
    actor = request.user
    creators = chat_ids(given.creators, "creators")
    if dry_run:
        now = category_services.category_change_check(
            actor=actor, category_id=category_id, creators=creators
        )
        return _out(now) | {"creators": sorted(creators)}
    writes(request)
    after = category_services.creators_set(
        actor=actor, category_id=category_id, creators=creators, version=version_of(if_match)
    )
    response["ETag"] = etag(after)
    return _out(after)


@router.delete(
    "/{category_id}",
    response={204: None, 200: CategoryOut} | STALE | WRITE_ERRORS,
    summary="Delete a category",
)
def category_delete(
    request: ApiRequest, category_id: str, dry_run: bool = False, if_match: str = IF_MATCH
) -> tuple[int, dict[str, Any] | None]:
    """Delete a category that has no rooms (administrators); with `dry_run=true`, the
    category that would go (200)."""
    actor = request.user
    if dry_run:
        now = category_services.category_change_check(
            actor=actor, category_id=category_id, deleting=True
        )
        return 200, _out(now)
    writes(request)
    category_services.category_delete(
        actor=actor, category_id=category_id, version=version_of(if_match)
    )
    return 204, None


class DirectoryScopeOut(Schema):
    id: int
    kind: str
    dn: str
    name: str
    standing: str = Field(description="allowed, denied or creator")
    subtree: bool = Field(description="An OU: with the OUs under it")
    people: int = Field(description="How many people it stood for at the last read")


class DirectoryScopeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    dn: Text = Field(min_length=1, max_length=1024, description="The group's or OU's DN")
    standing: Literal["allowed", "denied", "creator"] = Field(
        "allowed", description="In the scope, denied it, or its Creators (those in scope)"
    )
    subtree: StrictBool = Field(True, description="An OU: with the OUs under it")


class DirectoryChange(Schema):
    applied: bool
    added: list[str] = Field(description="Put in the scope (or, with dry_run, would be)")
    removed: list[str] = Field(description="Taken out of the scope, with their room roles")
    denied: list[str]
    undenied: list[str]
    creators: list[str] = Field(description="Made Creators")
    uncreated: list[str] = Field(description="Creators no longer")
    failed: list[str] = Field(description="Refused by the chat server: tried again later")
    losing: list[tuple[str, str]] = Field(
        description="In a what-if: [person, the room roles they lose, 'Room (Member)']"
    )


def _change(change: directory_services.Change, *, applied: bool) -> dict[str, Any]:
    return {"applied": applied} | {k: list(v) for k, v in vars(change).items()}


@router.get(
    "/directory/principals",
    response={200: list[PrincipalOut]} | READ_ERRORS,
    summary="Find groups and OUs of the directory",
)
def directory_principals(request: ApiRequest, q: str = "") -> list[dict[str, Any]]:
    """Groups and OUs whose name contains `q` (administrators)."""
    found = directory_services.principals_find(actor=request.user, text=q[:200])
    return [{"kind": p.kind, "dn": p.dn, "name": p.name, "label": p.label} for p in found]


@router.get(
    "/{category_id}/directory",
    response={200: list[DirectoryScopeOut]} | READ_ERRORS,
    summary="The groups and OUs in a category's scope",
)
def category_directory(request: ApiRequest, category_id: str) -> list[dict[str, Any]]:
    if not request.user.is_administrator:
        raise PermissionDenied("Only portal administrators manage categories.")
    category = _visible(request.user, category_id)
    return [
        {
            "id": s.pk,
            "kind": s.kind,
            "dn": s.dn,
            "name": s.name,
            "standing": s.standing,
            "subtree": s.subtree,
            "people": s.people,
        }
        for s in directory_services.scopes_of(category.id)
    ]


@router.post(
    "/{category_id}/directory",
    response={200: DirectoryChange} | WRITE_ERRORS,
    summary="Put a group or an OU in a category's scope, or deny it",
)
def category_directory_add(
    request: ApiRequest, category_id: str, given: DirectoryScopeIn, dry_run: bool = False
) -> dict[str, Any]:
    """Everyone the group (with its nested groups) or the OU (with those under it) stands
    for comes into the scope, is denied the category, or (those in scope) is a Creator,
    and is kept so as the directory changes. With `dry_run=true`, who would."""
    actor = request.user
    if dry_run:
        _, change = directory_services.principal_preview(
            actor=actor,
            category_id=category_id,
            dn=given.dn,
            standing=given.standing,
            subtree=given.subtree,
        )
        return _change(change, applied=False)
    writes(request)
    change = directory_services.principal_add(
        actor=actor,
        category_id=category_id,
        dn=given.dn,
        standing=given.standing,
        subtree=given.subtree,
    )
    return _change(change, applied=True)


@router.delete(
    "/{category_id}/directory/{scope_id}",
    response={200: DirectoryChange} | WRITE_ERRORS,
    summary="Take a group or an OU out of a category's scope",
)
def category_directory_remove(
    request: ApiRequest, category_id: str, scope_id: int, dry_run: bool = False
) -> dict[str, Any]:
    """The people only it held leave the scope (and their room roles); those only it
    denied are let in again. With `dry_run=true`, who would."""
    actor = request.user
    if dry_run:
        _, change = directory_services.removal_preview(
            actor=actor, category_id=category_id, scope_id=scope_id
        )
        return _change(change, applied=False)
    writes(request)
    change = directory_services.principal_remove(
        actor=actor, category_id=category_id, scope_id=scope_id
    )
    return _change(change, applied=True)
