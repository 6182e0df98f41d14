"""Reads of the people area: one person's standing across categories and rooms, for
portal administrators and (read-only) auditors, all from the index and the portal's tables:
no chat-server call per row."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q

from accounts.models import User
from portal.models import AuditEntry
from rooms.backend.errors import ChatBackendError
from rooms.index import chat_backend
from rooms.models import (
    CategoryPerson,
    DirectoryGrant,
    DirectoryRoleGrant,
    IndexedRoom,
    JoinRequest,
    RoomPerson,
    RoomRequest,
)

RECENT_ENTRIES = 20
FOUND_AT_MOST = 50
ROLE_ORDER = ("presenter", "manager", "member")  # the order roles are taken away in


def require_viewer(user: User) -> None:
    if not (user.is_administrator or user.can_audit):
        raise PermissionDenied("Only portal administrators and auditors see a person's page.")


@dataclass
class CategoryStanding:
    category_id: str
    name: str
    standings: set[str] = field(default_factory=set)  # allowed, denied, creator
    through: str = ""  # the group or OU of the directory that holds them there, and how

    @property
    def in_scope(self) -> bool:
        return "allowed" in self.standings and "denied" not in self.standings


@dataclass
class RoomStanding:
    room_id: str
    name: str
    category_id: str
    privacy: str
    roles: list[str] = field(default_factory=list)  # presenter, manager, member; in that order
    managers: int = 0  # how many Managers the room has
    through: str = ""  # the group or OU of the directory that gives them a role, and how

    @property
    def last_manager(self) -> bool:
        return "manager" in self.roles and self.managers == 1


@dataclass
class Standing:
    """Everything one person holds in the portal."""

    user_id: str
    account: User | None
    categories: list[CategoryStanding]
    rooms: list[RoomStanding]
    room_requests: list[RoomRequest]
    join_requests: list[JoinRequest]
    recent: list[AuditEntry]

    @property
    def empty(self) -> bool:
        return not (self.categories or self.rooms)


def person_standing(*, viewer: User, user_id: str) -> Standing:
    """The person's categories (in scope, denied, Creator), room roles, pending requests
    and most recent audit entries (by them or about them)."""
    require_viewer(viewer)
    categories: dict[str, CategoryStanding] = {}
    for entry in (
        CategoryPerson.objects.filter(user_id=user_id)
        .select_related("category")
        .order_by("category__name_key")
    ):
        held = categories.setdefault(
            entry.category_id, CategoryStanding(entry.category_id, entry.category.name)
        )
        held.standings.add(entry.standing)
    for category_id, why in DirectoryGrant.objects.filter(user_id=user_id).values_list(
        "scope__category_id", "reason"
    ):
        if category_id in categories:
            categories[category_id].through = why
    rooms: dict[str, RoomStanding] = {}
    held_roles = (
        RoomPerson.objects.filter(user_id=user_id)
        .exclude(role=RoomPerson.Role.KNOCKING)
        .select_related("room")
        .order_by("room__name_key")
    )
    for held_role in held_roles:
        row = held_role.room
        room = rooms.setdefault(
            row.room_id, RoomStanding(row.room_id, row.name, row.category_id or "", row.privacy)
        )
        room.roles.append(held_role.role)
    managers = dict(
        IndexedRoom.objects.filter(room_id__in=rooms)
        .annotate(manager_count=Count("people", filter=Q(people__role=RoomPerson.Role.MANAGER)))
        .values_list("room_id", "manager_count")
    )
    for room_id, role, why in DirectoryRoleGrant.objects.filter(user_id=user_id).values_list(
        "named__room_id", "named__role", "reason"
    ):
        if room_id in rooms:
            rooms[room_id].through = f"{role.capitalize()}: {why}"
    for room in rooms.values():
        room.roles.sort(key=ROLE_ORDER.index)
        room.managers = managers.get(room.room_id, 0)
    account = User.objects.filter(chat_id=user_id).first()
    about = Q(actor_chat_id=user_id) | Q(target_id=user_id) | Q(after__person=user_id)
    return Standing(
        user_id=user_id,
        account=account,
        categories=list(categories.values()),
        rooms=list(rooms.values()),
        room_requests=list(
            RoomRequest.objects.filter(
                requester__chat_id=user_id, status=RoomRequest.Status.PENDING
            ).order_by("created_at")
        ),
        join_requests=list(
            JoinRequest.objects.filter(
                requester__chat_id=user_id, status=JoinRequest.Status.PENDING
            ).order_by("created_at")
        ),
        recent=list(AuditEntry.objects.filter(about).order_by("-created_at")[:RECENT_ENTRIES]),
    )


@dataclass(frozen=True)
class Found:
    """People found, as (chat ID, name) by chat ID, and what could not be searched."""

    people: list[tuple[str, str]]
    problem: str = ""


def people_found(*, viewer: User, term: str) -> Found:
    """People whose chat ID or name holds the term: portal accounts, anyone the index
    knows in a category or room, and the chat server's people by name (those who never
    signed in to the portal too)."""
    require_viewer(viewer)
    term = term.strip()
    if not term:
        return Found([])
    found: dict[str, str] = {
        chat_id or "": name or username
        for chat_id, name, username in User.objects.filter(
            Q(chat_id__icontains=term)
            | Q(display_name__icontains=term)
            | Q(username__icontains=term)
        )
        .exclude(chat_id=None)
        .exclude(chat_id="")
        .values_list("chat_id", "display_name", "username")[:FOUND_AT_MOST]
    }
    for model in (CategoryPerson, RoomPerson):
        for chat_id in (
            model.objects.filter(user_id__icontains=term)
            .values_list("user_id", flat=True)
            .distinct()[:FOUND_AT_MOST]
        ):
            found.setdefault(chat_id, "")
    problem = ""
    try:
        for principal in chat_backend().search_users(term, limit=FOUND_AT_MOST):
            if not found.get(principal.id):
                found[principal.id] = principal.display_name
    except ChatBackendError as exc:
        problem = (
            f"The chat server could not be searched ({exc.detail}): only people the portal "
            "knows are listed."
        )
    return Found(sorted(found.items())[:FOUND_AT_MOST], problem)
