"""Who may do what with categories and rooms (DESIGN.md §4), decided by the portal."""

from __future__ import annotations

from accounts.models import User
from rooms.backend.records import Category, Privacy, Room


def can_create_in(user: User, category: Category) -> bool:
    """Creators of the category, and portal administrators, create rooms in it."""
    return user.is_administrator or bool(user.chat_id and category.is_creator(user.chat_id))


def can_manage(user: User, room: Room) -> bool:
    """Managers of the room, and portal administrators, change it."""
    return user.is_administrator or bool(user.chat_id and user.chat_id in room.managers)


def can_view(user: User, room: Room, category: Category) -> bool:
    """Who sees a room in the portal: as in chat clients, plus administrators and auditors."""
    if user.is_administrator or user.can_audit or can_manage(user, room):
        return True
    if not user.chat_id:
        return False
    if user.chat_id in room.members or user.chat_id in room.presenters:
        return True
    return room.settings.privacy is not Privacy.SECRET and category.in_scope(user.chat_id)


def can_delete(user: User) -> bool:
    """Only portal administrators delete rooms."""
    return user.is_administrator
