"""Who may do what with categories and rooms (docs/architecture.md §3), decided by the portal."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import User
from rooms.backend.records import Category, Privacy, Room


def can_create_in(user: User, category: Category) -> bool:
    """Creators of the category, and portal administrators, create rooms in it."""
    return user.is_administrator or bool(user.chat_id and category.is_creator(user.chat_id))


def can_manage(user: User, room: Room) -> bool:
    """Managers of the room, and portal administrators, change it."""
    return user.is_administrator or bool(user.chat_id and user.chat_id in room.managers)


def can_view(user: User, room: Room, category: Category) -> bool:
    """Who sees a room in the portal: as in chat clients, plus administrators, auditors and
    compliance officers."""
    if user.can_audit or user.can_read_history or can_manage(user, room):
        return True
    if not user.chat_id:
        return False
    if user.chat_id in room.members or user.chat_id in room.presenters:
        return True
    return room.settings.privacy is not Privacy.SECRET and category.in_scope(user.chat_id)


def can_delete(user: User) -> bool:
    """Only portal administrators delete rooms."""
    return user.is_administrator


def can_read_history(user: User, room: Room) -> bool:
    """Portal administrators and compliance officers read every room's history; a room's
    Managers read theirs where its category lets them."""
    return user.can_read_history or (room.options.managers_read and can_manage(user, room))


def can_moderate(user: User) -> bool:
    """Only portal administrators clear what was said in a room."""
    return user.is_administrator


@dataclass(frozen=True)
class Capability:
    what: str
    allowed: bool
    why: str


def effective_permissions(room: Room, category: Category, user_id: str) -> list[Capability]:
    """What this person can do in the room from their chat app, and the reason for each."""
    managers, members = room.managers, room.members
    in_scope = category.in_scope(user_id)
    privacy = room.settings.privacy
    is_member = user_id in members
    scope_reason = (
        f"in the scope of “{category.name}”"
        if in_scope
        else f"not in the scope of “{category.name}”"
    )

    if is_member:
        see = Capability("See the room", True, "Member of the room.")
    elif not in_scope:
        see = Capability("See the room", False, f"Not a member and {scope_reason}.")
    elif privacy is Privacy.SECRET:
        see = Capability("See the room", False, "Secret room: only members see it.")
    else:
        see = Capability("See the room", True, f"{privacy.label} room, {scope_reason}.")

    if room.disabled:
        join = Capability("Join", False, "The room is disabled.")
    elif is_member:
        join = Capability("Join", True, "Member of the room.")
    elif not in_scope:
        join = Capability("Join", False, f"Not a member and {scope_reason}.")
    elif privacy is Privacy.OPEN:
        join = Capability("Join", True, f"Open room, {scope_reason}.")
    elif privacy is Privacy.CLOSED:
        join = Capability("Join", False, "Closed room: may ask to join; a Manager lets them in.")
    else:
        join = Capability("Join", False, "Secret room: only members get in.")

    can_enter = join.allowed or is_member
    read = Capability(
        "Read the history",
        can_enter,
        "Once joined, everyone in the room reads its history." if can_enter else join.why,
    )

    if room.disabled:
        post = Capability("Post", False, "The room is disabled: nobody posts.")
    elif not can_enter:
        post = Capability("Post", False, "Cannot get into the room.")
    elif room.settings.auditorium:
        presenter = user_id in room.presenters or user_id in managers
        post = Capability(
            "Post in the auditorium",
            presenter,
            "Presenter or Manager." if presenter else "Auditorium: only Presenters post.",
        )
    else:
        post = Capability("Post", True, "Everyone in the room posts.")

    manage = Capability(
        "Manage the room",
        user_id in managers,
        "Manager of the room." if user_id in managers else "Not a Manager.",
    )
    return [see, join, read, post, manage]
