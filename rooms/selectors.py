"""Reads from the chat server, in the portal's words, for the person asking."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import User
from rooms.backend import chat_backend
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.records import Category, Role, Room
from rooms.permissions import can_manage, can_view
from rooms.roles import role_problem


def categories_with_create_rights(*, user: User) -> list[Category]:
    """The categories in which this person may create rooms; administrators may in all."""
    client = chat_backend()
    if user.is_administrator:
        return client.list_categories()
    if not user.chat_id:
        return []
    return client.find_categories_with_create_rights(user.chat_id)


def room_for_viewer(*, user: User, room_id: str) -> tuple[Room, Category]:
    """A room and its category, if this person may see it; 404 otherwise.

    A room the person may not see is answered exactly like one that does not exist, so
    Secret rooms are not revealed.
    """
    client = chat_backend()
    try:
        room = client.get_room(room_id)
        category = client.get_category(room.settings.category_id)
    except ChatNotFound:
        raise Http404("There is no such room, or you may not see it.") from None
    if not can_view(user, room, category):
        raise Http404("There is no such room, or you may not see it.")
    return room, category


@dataclass(frozen=True)
class RoomListing:
    room: Room
    category: Category
    roles: tuple[str, ...]


def rooms_for_user(*, user: User) -> list[RoomListing]:
    """The rooms the person manages or belongs to (every room, for administrators)."""
    client = chat_backend()
    categories = {c.id: c for c in client.list_categories()}
    listings = []
    for room in client.get_rooms(sorted({r for c in categories.values() for r in c.room_ids})):
        category = categories.get(room.settings.category_id)
        roles = tuple(role.label for role in room.roles_of(user.chat_id or ""))
        if category is not None and (roles or user.is_administrator):
            listings.append(RoomListing(room, category, roles))
    return sorted(listings, key=lambda listing: listing.room.name.casefold())


def filter_listings(
    listings: list[RoomListing], *, search: str, category_id: str, privacy: str
) -> list[RoomListing]:
    """Narrow a room list by part of the name, a category and a privacy."""
    return [
        listing
        for listing in listings
        if search.casefold() in listing.room.name.casefold()
        and category_id in ("", listing.category.id)
        and privacy in ("", listing.room.settings.privacy)
    ]


def categories_of(listings: list[RoomListing]) -> list[Category]:
    found = {listing.category.id: listing.category for listing in listings}
    return sorted(found.values(), key=lambda c: c.name.casefold())


def room_for_manager(*, user: User, room_id: str) -> tuple[Room, Category]:
    """A room its Manager (or an administrator) is about to change; 403 for anyone else."""
    room, category = room_for_viewer(user=user, room_id=room_id)
    if not can_manage(user, room):
        raise PermissionDenied("Only the room's Managers and portal administrators change it.")
    return room, category


@dataclass(frozen=True)
class Candidate:
    """A person found by the people picker, and whether they may get the role."""

    id: str
    label: str
    problem: str


def role_candidates(*, room: Room, category: Category, role: Role, term: str) -> list[Candidate]:
    """People matching part of a name or chat ID, each with why they can't be picked."""
    term = term.strip()
    if len(term) < 2:
        return []
    found = chat_backend().search_users(term, limit=20)
    return [
        Candidate(
            person.id,
            person.described,
            "Already a " + role.label
            if person.id in room.principals(role)
            else role_problem(room, category, role, person.id),
        )
        for person in found
    ]


def chat_server_reachable() -> bool:
    """Whether the chat server answers the service account (for the health check)."""
    try:
        chat_backend().whoami()
    except ChatBackendError:
        return False
    return True


def category_by_id(category_id: str) -> Category:
    return chat_backend().get_category(category_id)


def category_rooms(category: Category) -> list[Room]:
    """The rooms of a category that still exist, by name."""
    rooms = chat_backend().get_rooms(category.room_ids)
    return sorted(rooms, key=lambda room: room.name.casefold())


def scope_candidates(*, category: Category, term: str) -> list[Candidate]:
    """People matching part of a name or chat ID, and where they stand in the category."""
    term = term.strip()
    if len(term) < 2:
        return []
    found = chat_backend().search_users(term, limit=20)
    standing = {
        **dict.fromkeys(category.allowed_members, "In scope"),
        **dict.fromkeys(category.denied_members, "Denied"),
    }
    return [
        Candidate(
            person.id,
            person.described,
            standing.get(person.id, ""),
        )
        for person in found
    ]
