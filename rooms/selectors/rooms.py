"""Reads of the rooms area: one room for its viewer or Manager, My rooms and Find a room
(searched, filtered and paged in the index)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from accounts.models import User
from rooms import index
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.records import Category, Privacy, Role, Room
from rooms.index import chat_backend
from rooms.models import IndexedCategory, IndexedRoom, JoinRequest, PolicyBreach, RoomPerson
from rooms.permissions import can_manage, can_view
from rooms.selectors import Hidden, NotFound


def room_for_viewer(*, user: User, room_id: str) -> tuple[Room, Category]:
    """A room and its category, if this person may see it; `NotFound` otherwise.

    A room the person may not see is answered exactly like one that does not exist, so
    Secret rooms are not revealed. Both are read as pages show them: people when asked.
    """
    try:
        room = index.room_to_show(room_id)
        category = index.category_to_show(room.settings.category_id)
    except ChatNotFound:
        raise NotFound("There is no such room, or you may not see it.") from None
    if not can_view(user, room, category):
        raise Hidden("There is no such room, or you may not see it.")
    return room, category


ROLES = (RoomPerson.Role.MANAGER, RoomPerson.Role.PRESENTER, RoomPerson.Role.MEMBER)


@dataclass(frozen=True)
class RoomListing:
    """One row of My rooms: what the list shows of a room, and the person's roles in it."""

    id: str
    name: str
    category_name: str
    privacy: Privacy
    auditorium: bool
    disabled: bool
    roles: tuple[str, ...]

    @property
    def joinable(self) -> bool:
        """Whether the person may join it themselves (an Open room they are not in; the
        directory lists only rooms of their scope)."""
        return self.privacy is Privacy.OPEN and "Member" not in self.roles and not self.disabled


def rooms_for_user(*, user: User) -> QuerySet[IndexedRoom]:
    """The rooms the person manages or belongs to (every room, for administrators), by
    name, from the index."""
    found = IndexedRoom.objects.all()
    if not user.is_administrator:
        holding = RoomPerson.objects.filter(user_id=user.chat_id or "", role__in=ROLES)
        found = found.filter(room_id__in=holding.values("room_id"))
    return found.order_by("name_key", "room_id")


def directory_rooms(*, user: User) -> QuerySet[IndexedRoom]:
    """The rooms a person may find (Lync's room search): Open and Closed rooms of the
    categories whose scope holds them, and the rooms where they hold a role (their Secret
    ones too); every room, for administrators and auditors. By name, from the index."""
    found = IndexedRoom.objects.all()
    if not (user.is_administrator or user.can_audit):
        chat_id = user.chat_id or ""
        found = found.filter(
            Q(
                privacy__in=[Privacy.OPEN, Privacy.CLOSED],
                category_id__in=index.category_ids_in_scope(chat_id),
            )
            | Q(room_id__in=RoomPerson.objects.filter(user_id=chat_id).values("room_id"))
        )
    return found.order_by("name_key", "room_id")


def filter_rooms(
    rooms: QuerySet[IndexedRoom], *, search: str, category_id: str, privacy: str
) -> QuerySet[IndexedRoom]:
    """Narrow a room list by part of the name (any letter case), a category and a privacy."""
    if search.strip():
        rooms = rooms.filter(name_key__contains=search.strip().casefold())
    if category_id:
        rooms = rooms.filter(category_id=category_id)
    if privacy:
        rooms = rooms.filter(privacy=privacy)
    return rooms


def listings(rooms: Iterable[IndexedRoom], *, user: User) -> list[RoomListing]:
    """A page of rooms as My rooms shows them, with the person's roles (two queries)."""
    rows = list(rooms)
    roles: dict[str, list[str]] = {}
    held = RoomPerson.objects.filter(
        room_id__in=[row.room_id for row in rows], user_id=user.chat_id or "", role__in=ROLES
    )
    for person in held:
        roles.setdefault(person.room_id, []).append(person.role)
    names = dict(
        IndexedCategory.objects.filter(
            category_id__in={row.category_id for row in rows}
        ).values_list("category_id", "name")
    )
    return [
        RoomListing(
            id=row.room_id,
            name=row.name,
            category_name=names.get(row.category_id or "", ""),
            privacy=Privacy(row.privacy),
            auditorium=row.auditorium,
            disabled=row.disabled,
            roles=tuple(Role(r).label for r in ROLES if r in roles.get(row.room_id, ())),
        )
        for row in rows
    ]


def categories_of(rooms: QuerySet[IndexedRoom]) -> list[tuple[str, str]]:
    """The categories these rooms are in, as (ID, name), by name."""
    return list(
        IndexedCategory.objects.filter(category_id__in=rooms.values("category_id"))
        .order_by("name_key")
        .values_list("category_id", "name")
    )


def room_for_manager(*, user: User, room_id: str) -> tuple[Room, Category]:
    """A room its Manager (or an administrator) is about to change; 403 for anyone else."""
    room, category = room_for_viewer(user=user, room_id=room_id)
    if not can_manage(user, room):
        raise PermissionDenied("Only the room's Managers and portal administrators change it.")
    return room, category


def chat_server_reachable() -> bool:
    """Whether the chat server answers the service account (for the health check)."""
    try:
        chat_backend().whoami()
    except ChatBackendError:
        return False
    return True


def asked_to_join(*, user: User) -> set[str]:
    """The rooms this person asked to join through the portal and is waiting for."""
    return set(
        JoinRequest.objects.filter(requester=user, status=JoinRequest.Status.PENDING).values_list(
            "room_id", flat=True
        )
    )


def turned_down(*, user: User) -> dict[str, JoinRequest]:
    """The person's latest request to join each room, where it was turned down (with the
    reason given): told in the portal itself, whatever became of the e-mail."""
    latest: dict[str, JoinRequest] = {}
    for request in JoinRequest.objects.filter(requester=user).order_by("created_at", "pk"):
        latest[request.room_id] = request
    return {
        room_id: request
        for room_id, request in latest.items()
        if request.status == JoinRequest.Status.DECLINED
    }


def open_breaches(room_id: str) -> list[PolicyBreach]:
    """What chat users broke in this room on the chat server that the portal could not
    put back: the room's page says so, instead of a label that no longer holds."""
    return list(PolicyBreach.objects.filter(target_id=room_id, undone_at__isnull=True))
