"""Rooms through the API: list (filtered, paged by cursor, from the index), read, and
change settings, privacy and whether a room is disabled (with a what-if)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponse
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from ninja.params.functions import Header
from pydantic import ConfigDict, Field, StrictBool

from accounts.models import User
from portal.api.common import (
    READ_ERRORS,
    REPLAYED,
    WRITE_ERRORS,
    ApiRequest,
    CategoryIdFilter,
    ChatIdFilter,
    PrincipalOut,
    Problem,
    Text,
    after_cursor,
    changed_since_read,
    cursor_of,
    once,
    page_of,
    settings_of,
    version_of,
    writes,
)
from rooms.backend.records import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    Role,
    Room,
)
from rooms.models import IndexedRoom, RoomPerson
from rooms.permissions import can_delete, can_manage
from rooms.selectors.rooms import directory_rooms, room_for_viewer
from rooms.services import directory_roles
from rooms.services import roles as role_services
from rooms.services import rooms as room_services

router = Router(tags=["rooms"])

PrivacyName = Literal["open", "closed", "secret"]
RoleName = Literal["member", "manager", "presenter"]


class RoomSummary(Schema):
    id: str
    name: str
    description: str
    category_id: str
    privacy: PrivacyName
    auditorium: bool
    invitations: Literal["inherit", "off"]
    disabled: bool


class RoomOut(RoomSummary):
    add_ins: list[str] = Field(description="The names of the add-ins it shows")
    chat_history: bool = Field(description="Its category's option, as the room has it")
    file_uploads: bool = Field(description="Its category's option, as the room has it")
    keep_days: int = Field(description="Its category's option, as the room has it")
    managers_read: bool = Field(description="Its category's option, as the room has it")
    managers: list[str]
    presenters: list[str]
    members: list[str]


class RoomPage(Schema):
    items: list[RoomSummary]
    count: int = Field(description="How many rooms match, over every page")
    next_cursor: str | None = Field(
        None, description="Give it as `cursor` for the next page; none after the last."
    )


class RoomWhere(Schema):
    """Which rooms: those the token's owner may find that match every filter given."""

    q: Text = Field("", max_length=NAME_MAX_LENGTH, description="Part of the name, any case")
    category: CategoryIdFilter = Field("", max_length=255, description="A category's ID")
    privacy: PrivacyName | None = None
    auditorium: bool | None = None
    disabled: bool | None = None
    person: ChatIdFilter = Field("", max_length=255, description="A chat ID holding a role")
    role: RoleName | None = Field(None, description="With `person`: that role only")


class RoomFilters(RoomWhere):
    cursor: Text = Field("", max_length=1000)
    limit: int = Field(50, ge=1, le=200)


class RoomChange(Schema):
    """Any of the settings; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(None, min_length=1, max_length=NAME_MAX_LENGTH)
    description: Text | None = Field(None, max_length=DESCRIPTION_MAX_LENGTH)
    auditorium: StrictBool | None = None
    invitations: Literal["inherit", "off"] | None = None
    privacy: PrivacyName | None = None
    disabled: StrictBool | None = None


class RoomStale(Problem):
    current: RoomOut


class RoomChangeResult(Schema):
    applied: bool = Field(description="False for a what-if (`dry_run=true`)")
    before: dict[str, Any]
    after: dict[str, Any]
    presenters_losing: list[str] = Field(
        description="Presenters who lose the role because the room stops being an auditorium"
    )


def _summary(row: IndexedRoom) -> dict[str, Any]:
    return {
        "id": row.room_id,
        "name": row.name,
        "description": row.description,
        "category_id": row.category_id or "",
        "privacy": row.privacy,
        "auditorium": row.auditorium,
        "invitations": row.invitations,
        "disabled": row.disabled,
    }


def _matching(user: User, where: RoomWhere) -> QuerySet[IndexedRoom]:
    """The rooms the person may find (every room for administrators and auditors) that
    match every filter given."""
    rooms = directory_rooms(user=user)
    if where.q.strip():
        rooms = rooms.filter(name_key__contains=where.q.strip().casefold())
    if where.category:
        rooms = rooms.filter(category_id=where.category)
    if where.privacy:
        rooms = rooms.filter(privacy=where.privacy)
    if where.auditorium is not None:
        rooms = rooms.filter(auditorium=where.auditorium)
    if where.disabled is not None:
        rooms = rooms.filter(disabled=where.disabled)
    if where.person:
        held = RoomPerson.objects.filter(user_id=where.person)
        if where.role:
            held = held.filter(role=where.role)
        rooms = rooms.filter(room_id__in=held.values("room_id"))
    elif where.role:
        raise HttpError(400, "A role filters the rooms of a person: give `person` too.")
    return rooms


@router.get("", response={200: RoomPage} | READ_ERRORS, summary="List rooms")
def room_list(
    request: ApiRequest, response: HttpResponse, filters: Query[RoomFilters]
) -> dict[str, Any]:
    """The rooms the token's owner may find (every room for administrators and auditors),
    by name."""
    rooms = _matching(request.user, filters)
    count = rooms.count()
    if filters.cursor:
        name_key, room_id = after_cursor(filters.cursor, size=2)
        rooms = rooms.filter(name_key__gt=name_key) | rooms.filter(
            name_key=name_key, room_id__gt=room_id
        )
    rows = list(rooms.order_by("name_key", "room_id")[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return page_of(
        request,
        response,
        [_summary(row) for row in rows],
        count,
        cursor_of([rows[-1].name_key, rows[-1].room_id]) if more else None,
    )


# Before /{room_id}: the first pattern that matches an address takes it.
# How many rooms are answered at once: few enough to be done well within the web worker's
# time limit (30 s; a room's change takes a few chat-server requests, about 0.2 s), and a
# what-if reads only the index. More rooms become an operation, answered 202 and polled.
ANSWERED_CHANGES_AT_MOST = 20
ANSWERED_WHAT_IFS_AT_MOST = 200
BACKGROUND_AT_MOST = 5000


class BulkChange(Schema):
    """One change for many rooms: their IDs (as `GET /rooms` lists them), or `where`, the
    list's filters (every Closed room in a category: `{"category": "!…", "privacy":
    "closed"}`), read when the change is asked."""

    model_config = ConfigDict(extra="forbid")

    rooms: list[Text] = Field(default_factory=list, max_length=BACKGROUND_AT_MOST)
    where: RoomWhere | None = None
    change: RoomChange


class RoomResult(Schema):
    room: str
    result: Literal["changed", "unchanged", "would change", "refused", "not found", "failed"]
    detail: str = ""
    after: dict[str, Any] | None = None


class BulkResult(Schema):
    applied: bool
    results: list[RoomResult]


class BulkStarted(Schema):
    operation: str = Field(description="Poll GET /api/v1/operations/{operation}")
    total: int


@router.post(
    "/bulk",
    response={200: BulkResult, 202: BulkStarted} | WRITE_ERRORS,
    summary="Change many rooms",
)
def room_bulk_change(
    request: ApiRequest, bulk: BulkChange, dry_run: bool = False, background: bool = False
) -> tuple[int, dict[str, Any]]:
    """Apply one change to each room, each as `PATCH /rooms/{id}` would, with a result per
    room: one refused, missing or failed at the chat server does not stop the others, and
    sending the same call again completes what failed (rooms already changed come back
    `unchanged`). Up to 20 rooms (a what-if: 200) are answered at once (200); more, up to
    5,000, or any number with `background=true`, are run by the job runner as an
    operation, and the answer is that operation to poll (202)."""
    asked = bulk.change.model_dump(exclude_none=True)
    if not asked:
        raise HttpError(422, "Say what to change: the change is empty.")
    actor = request.user
    if (bulk.where is None) == (not bulk.rooms):
        raise HttpError(422, "Give the rooms either by their IDs (`rooms`) or by `where`.")
    if bulk.where is not None:
        found = _matching(actor, bulk.where).order_by("name_key", "room_id")
        rooms = list(found.values_list("room_id", flat=True)[: BACKGROUND_AT_MOST + 1])
        if len(rooms) > BACKGROUND_AT_MOST:
            raise HttpError(422, f"At most {BACKGROUND_AT_MOST} rooms at once: narrow `where`.")
        if not rooms:
            return 200, {"applied": not dry_run, "results": []}
    else:
        rooms = list(dict.fromkeys(bulk.rooms))
    if not dry_run:
        writes(request)
    answered = ANSWERED_WHAT_IFS_AT_MOST if dry_run else ANSWERED_CHANGES_AT_MOST
    if background or len(rooms) > answered:
        op = room_services.bulk_change_start(
            actor=actor, room_ids=rooms, changes=asked, dry_run=dry_run
        )
        return 202, {"operation": str(op.pk), "total": len(rooms)}
    results = [
        room_services.room_change_result(
            actor=actor, room_id=room_id, changes=asked, dry_run=dry_run
        )
        for room_id in rooms
    ]
    return 200, {"applied": not dry_run, "results": results}


def etag(room: Room) -> str:
    """A room's entity tag: the version of its settings (what PATCH changes), which the
    pages' edit forms carry too. Roles are changed person by person and have none."""
    return f'"{room_services.room_version(room)}"'


@router.get("/{room_id}", response={200: RoomOut} | READ_ERRORS, summary="Get a room")
def room_get(request: ApiRequest, response: HttpResponse, room_id: str) -> dict[str, Any]:
    """The room, with its `ETag`: send it back as `If-Match` to change the room only if
    nobody changed it meanwhile."""
    room, _ = room_for_viewer(user=request.user, room_id=room_id)
    response["ETag"] = etag(room)
    return room_out(room)


@router.patch(
    "/{room_id}",
    response={200: RoomChangeResult, 412: RoomStale} | WRITE_ERRORS,
    summary="Change a room",
)
def room_change(
    request: ApiRequest,
    response: HttpResponse,
    room_id: str,
    change: RoomChange,
    dry_run: bool = False,
    if_match: str = Header("", alias="If-Match", description="The room's `ETag` as read"),
) -> Any:
    """Change any settings of a room, make it Open, Closed or Secret, disable or enable it:
    each as the room's page does it (the same rules, operations and audit entries). With
    `dry_run=true`, what would change is checked and said, and nothing is changed. With
    `If-Match`, refused (412, with the room as it is now) if the room changed since that
    `ETag` was read."""
    actor = request.user
    asked = change.model_dump(exclude_none=True)
    if asked and not dry_run:
        writes(request)
    room, _ = room_for_viewer(user=actor, room_id=room_id)  # 404 if not theirs to see
    version = version_of(if_match)
    try:
        if version is not None and version != room_services.room_version(room):
            raise room_services.StaleEdit(room)
        answer, room = _change_one(actor, room, asked, dry_run, version=version)
    except room_services.StaleEdit as exc:
        if version is None:
            raise  # two changes met without If-Match: 409, as before
        return changed_since_read("room", room_out(exc.current), etag(exc.current))
    response["ETag"] = etag(room)
    return answer


def _change_one(
    actor: User, room: Room, asked: dict[str, Any], dry_run: bool, *, version: str | None
) -> tuple[dict[str, Any], Room]:
    before, after, losing = room_services.room_change_preview(
        actor=actor, room_id=room.id, changes=asked
    )
    if dry_run or not asked:
        answer = {"applied": False, "before": before, "after": after, "presenters_losing": losing}
        return answer, room
    room = room_services.room_change(actor=actor, room_id=room.id, changes=asked, version=version)
    answer = {
        "applied": True,
        "before": before,
        "after": room_services.snapshot(room),
        "presenters_losing": losing,
    }
    return answer, room


class RoleChange(Schema):
    """People (chat IDs) to give the role and to take it from; at most 1,000 in all, as on
    the pages."""

    model_config = ConfigDict(extra="forbid")

    add: list[Text] = Field(default_factory=list, max_length=role_services.MAX_BULK_LINES)
    remove: list[Text] = Field(default_factory=list, max_length=role_services.MAX_BULK_LINES)


class PersonResult(Schema):
    person: str
    change: Literal["add", "remove"]
    result: Literal["done", "had it already", "did not have it", "refused", "failed", "would do"]
    detail: str = ""


class RoleChangeResult(Schema):
    applied: bool
    results: list[PersonResult]


@router.post(
    "/{room_id}/roles/{role}",
    response={200: RoleChangeResult, 202: BulkStarted} | WRITE_ERRORS,
    summary="Change a role",
)
def role_change(
    request: ApiRequest,
    room_id: str,
    role: RoleName,
    change: RoleChange,
    dry_run: bool = False,
    background: bool = False,
) -> tuple[int, dict[str, Any]]:
    """Give a role to people and take it from others, each person as the room's page does
    it (its rules, one audit entry each), with a result per person. A chat-server failure
    for one person is that person's result; asking again completes the rest. Up to 20
    people are answered at once (200); more, or any number with `background=true`, are
    changed by the job runner as an operation, as a list pasted on the room's page is,
    and the answer is that operation to poll (202). A change answered at once whose
    process dies part-way is finished by the job runner too."""
    actor = request.user
    room, _ = room_for_viewer(user=actor, room_id=room_id)
    if not can_manage(actor, room):
        raise PermissionDenied("Only the room's Managers and portal administrators change roles.")
    if len(change.add) + len(change.remove) > role_services.MAX_BULK_LINES:
        raise HttpError(422, f"At most {role_services.MAX_BULK_LINES} people at once.")
    lines = [role_services.role_line(p, "add") for p in change.add] + [
        role_services.role_line(p, "remove") for p in change.remove
    ]
    changes = role_services.RoleChanges(Role(role), lines)
    if dry_run:
        checked = role_services.role_changes_check(actor=actor, room_id=room.id, changes=changes)
        return 200, {"applied": False, "results": [line.as_result() for line in checked]}
    writes(request)
    inline = not background and len(lines) <= role_services.ANSWERED_AT_MOST
    op = role_services.role_changes_start(actor=actor, room=room, changes=changes, inline=inline)
    if not inline:
        return 202, {"operation": str(op.pk), "total": len(lines)}
    role_services.role_changes_step(op, chunk=len(lines))
    done = role_services.RoleChanges.of(op).lines
    return 200, {"applied": True, "results": [line.as_result() for line in done]}


class NamedRoleOut(Schema):
    id: int
    kind: str = Field(description="group or ou")
    dn: str
    name: str
    role: RoleName
    subtree: bool = Field(description="An OU: with the OUs under it")
    people: int = Field(description="How many people it stood for at the last read")


class NamedRoleIn(Schema):
    model_config = ConfigDict(extra="forbid")

    role: RoleName
    dn: str = Field(max_length=1024, description="The group's or the OU's DN")
    subtree: StrictBool = Field(True, description="An OU: with the OUs under it")


class RoleHeld(Schema):
    role: RoleName
    person: str


class KeptOut(Schema):
    person: str
    why: str


class NamedRoleChange(Schema):
    applied: bool
    added: list[RoleHeld] = Field(description="Given the role")
    removed: list[RoleHeld] = Field(description="Lost the role")
    skipped: list[KeptOut] = Field(description="Named by the group, kept out by the rules")
    failed: list[RoleHeld] = Field(description="Refused by the chat server: tried again later")


def _named_change(change: directory_roles.RoleChange, *, applied: bool) -> dict[str, Any]:
    def held(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
        return [{"role": role, "person": person} for role, person in pairs]

    return {
        "applied": applied,
        "added": held(change.added),
        "removed": held(change.removed),
        "skipped": [{"person": person, "why": why} for person, why in change.skipped],
        "failed": held(change.failed),
    }


@router.get(
    "/{room_id}/directory/principals",
    response={200: list[PrincipalOut]} | READ_ERRORS,
    summary="Find groups and OUs of the directory for a room's roles",
)
def room_principals(request: ApiRequest, room_id: str, q: str = "") -> list[dict[str, Any]]:
    """Groups and OUs whose name contains `q` (the room's Managers and administrators)."""
    room, _ = room_for_viewer(user=request.user, room_id=room_id)
    found = directory_roles.principals_find(actor=request.user, room_id=room.id, text=q[:200])
    return [{"kind": p.kind, "dn": p.dn, "name": p.name, "label": p.label} for p in found]


@router.get(
    "/{room_id}/directory",
    response={200: list[NamedRoleOut]} | READ_ERRORS,
    summary="The groups and OUs named for a room's roles",
)
def room_directory(request: ApiRequest, room_id: str) -> list[dict[str, Any]]:
    room, _ = room_for_viewer(user=request.user, room_id=room_id)
    return [
        {
            "id": n.pk,
            "kind": n.kind,
            "dn": n.dn,
            "name": n.name,
            "role": n.role,
            "subtree": n.subtree,
            "people": n.people,
        }
        for n in directory_roles.named_in(room.id)
    ]


@router.post(
    "/{room_id}/directory",
    response={200: NamedRoleChange} | WRITE_ERRORS,
    summary="Make a group or an OU a room's Members, Managers or Presenters",
)
def room_directory_add(
    request: ApiRequest, room_id: str, given: NamedRoleIn, dry_run: bool = False
) -> dict[str, Any]:
    """Those of the group's (with its nested groups) or the OU's (with those under it)
    people the rules allow get the role, and keep it as the directory changes; the others
    are listed with why. With `dry_run=true`, who would."""
    room_id = room_for_viewer(user=request.user, room_id=room_id)[0].id
    role = Role(given.role)
    if dry_run:
        _, change = directory_roles.principal_preview(
            actor=request.user, room_id=room_id, role=role, dn=given.dn, subtree=given.subtree
        )
        return _named_change(change, applied=False)
    writes(request)
    change = directory_roles.principal_add(
        actor=request.user, room_id=room_id, role=role, dn=given.dn, subtree=given.subtree
    )
    return _named_change(change, applied=True)


@router.delete(
    "/{room_id}/directory/{named_id}",
    response={200: NamedRoleChange} | WRITE_ERRORS,
    summary="Take a group or an OU off a room's role",
)
def room_directory_remove(
    request: ApiRequest, room_id: str, named_id: int, dry_run: bool = False
) -> dict[str, Any]:
    """The people only it gave the role lose it. With `dry_run=true`, who would."""
    room_id = room_for_viewer(user=request.user, room_id=room_id)[0].id
    if dry_run:
        _, change = directory_roles.removal_preview(
            actor=request.user, room_id=room_id, named_id=named_id
        )
        return _named_change(change, applied=False)
    writes(request)
    change = directory_roles.principal_remove(
        actor=request.user, room_id=room_id, named_id=named_id
    )
    return _named_change(change, applied=True)


class RoomCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    description: Text = Field("", max_length=DESCRIPTION_MAX_LENGTH)
    category: Text = Field(max_length=255, description="The category's ID")
    privacy: PrivacyName = "closed"
    auditorium: StrictBool = False
    invitations: Literal["inherit", "off"] = "inherit"


class RoomMove(Schema):
    model_config = ConfigDict(extra="forbid")

    category: Text = Field(max_length=255, description="The category's ID")


class MoveResult(Schema):
    applied: bool
    room: RoomOut | None = None
    losing: dict[str, list[str]] = Field(
        description="People outside the new category's scope, and the roles they lose"
    )


def room_out(room: Room) -> dict[str, Any]:
    settings = room.settings
    return {
        "id": room.id,
        "name": settings.name,
        "description": settings.description,
        "category_id": settings.category_id,
        "privacy": str(settings.privacy),
        "auditorium": settings.auditorium,
        "invitations": str(settings.invitations),
        "disabled": room.disabled,
        **room.options.values(),
        "add_ins": [a.name for a in room.add_ins],
        "managers": sorted(room.managers),
        "presenters": sorted(room.presenters),
        "members": sorted(room.members),
    }


# How long a request repeated while the first is still making the room (a retry after a
# dropped connection) waits for that room, to answer with it rather than a 409.
FIRST_REQUEST_WAIT_SECONDS = 20


@router.post("", response={201: RoomOut, 200: RoomSummary} | WRITE_ERRORS, summary="Create a room")
def room_create(
    request: ApiRequest,
    response: HttpResponse,
    new: RoomCreate,
    dry_run: bool = False,
    idempotency_key: str = Header("", alias="Idempotency-Key", max_length=255),
) -> tuple[int, dict[str, Any]]:
    """Create a room, as the New room page does. The same `Idempotency-Key` sent again
    (after a lost answer) returns the room made the first time, never a second one — also
    while the first request is still making it (the repeat waits for it, up to 20 s; 409
    with `Retry-After` after that). With `dry_run=true` the settings are checked and the
    room is not made (200)."""
    actor = request.user
    settings = settings_of(new)
    if dry_run:
        checked = room_services.room_create_check(actor=actor, settings=settings)
        return 200, {"id": "", **room_services.snapshot(checked), "disabled": False} | {
            "category_id": checked.category_id
        }
    writes(request)
    key = idempotency_key or uuid.uuid4().hex
    # The key's first answer is kept (and bound to this body); a room made by a request
    # whose answer was never kept is found again by the submission the key names.
    submission = uuid.uuid5(uuid.NAMESPACE_URL, f"roomportal:{actor.pk}:{key}")

    def make() -> tuple[int, dict[str, Any]]:
        try:
            room = room_services.room_create(actor=actor, settings=settings, submission=submission)
        except room_services.SubmissionInProgress:
            made = room_services.submission_room(submission, wait=FIRST_REQUEST_WAIT_SECONDS)
            if made is None:
                raise
            response[REPLAYED] = "true"
            return 201, room_out(made)
        return 201, room_out(room)

    return once(request, response, idempotency_key, make)


@router.post("/{room_id}/move", response={200: MoveResult} | WRITE_ERRORS, summary="Move a room")
def room_move(
    request: ApiRequest, room_id: str, move: RoomMove, dry_run: bool = False
) -> dict[str, Any]:
    """Move a room to another category where you create rooms; people outside its scope
    lose their roles in the room (listed, and nothing moved, with `dry_run=true`)."""
    actor = request.user
    room, _ = room_for_viewer(user=actor, room_id=room_id)
    target = room_services.move_check(actor=actor, room=room, category_id=move.category)
    losing = {
        person: [str(r) for r in roles]
        for person, roles in room_services.people_leaving_scope(room, target)
    }
    if dry_run:
        return {"applied": False, "losing": losing}
    writes(request)
    moved = room_services.room_move(
        actor=actor,
        room_id=room.id,
        category_id=target.id,
        version=room_services.room_version(room),
    )
    return {"applied": True, "room": room_out(moved), "losing": losing}


@router.delete(
    "/{room_id}", response={204: None, 200: RoomOut} | WRITE_ERRORS, summary="Delete a room"
)
def room_delete(request: ApiRequest, room_id: str, dry_run: bool = False) -> Any:
    """Delete a room and its history (portal administrators only). With `dry_run=true`,
    the room that would go is shown (200) and nothing is deleted."""
    actor = request.user
    room, _ = room_for_viewer(user=actor, room_id=room_id)
    if not can_delete(actor):
        raise PermissionDenied("Only portal administrators delete rooms.")
    if dry_run:
        return 200, room_out(room)
    writes(request)
    room_services.room_delete(actor=actor, room_id=room.id, confirm_name=room.name)
    return 204, None
