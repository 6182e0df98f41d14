"""The chat server as the portal's services change it: one declared interface, in the
portal's words (categories, rooms, privacy, roles, people) with typed records in and out.

Two things implement it, and mypy holds both to it: the Matrix client
(`rooms.backend.matrix.client.MatrixChatBackend`, the server alone) and the index's
write-through (`rooms.index.backend.IndexedChatBackend`, which makes each change with the
client and then puts what the server confirmed into the index). Reads are not part of
it: pages and services read the index (`rooms.index`), and what only the server knows
(a room's state after a failure part-way, messages) is asked for by name there
(`room_on_server`, `moderation`).

`ChatServer` is what the index's write-through needs of the server behind it: the
changes, and reading back one room or category as the portal's record. The Matrix client
is one; the fast tests' in-memory server (`tests/fake_chat.py`) is another."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from rooms.backend.records import (
    DEFAULT_OPTIONS,
    AddIn,
    Category,
    ChatOptions,
    Principal,
    Role,
    Room,
    RoomSettings,
)


class ChatChanges(Protocol):
    """What the portal changes on the chat server, and the people it asks it about."""

    # Categories: a space each, changed only by the service account.

    def create_category(
        self,
        *,
        name: str,
        description: str,
        invitations_allowed: bool = True,
        creators: Iterable[str] = (),
        options: ChatOptions = DEFAULT_OPTIONS,
    ) -> Category:
        """Create a category (a space only the service account and Creators change)."""
        ...

    def update_category(
        self,
        category_id: str,
        *,
        name: str,
        description: str,
        invitations_allowed: bool,
        options: ChatOptions | None = None,
    ) -> Category:
        """Change a category's name, description, invitations and chat options (None: as
        they are)."""
        ...

    def set_category_creators(self, category_id: str, creators: Iterable[str]) -> Category:
        """Make exactly these people the category's Creators."""
        ...

    def delete_category(self, category_id: str) -> None:
        """Delete an empty category's space."""
        ...

    def add_to_category_scope(self, category_id: str, user_ids: Iterable[str]) -> None:
        """Put people in the category's scope."""
        ...

    def remove_from_category_scope(self, category_id: str, user_ids: Iterable[str]) -> None:
        """Take people out of the category's scope."""
        ...

    def deny_in_category(self, category_id: str, user_ids: Iterable[str]) -> None:
        """Deny people the category (and so take them out of its scope)."""
        ...

    def undeny_in_category(self, category_id: str, user_ids: Iterable[str]) -> None:
        """Lift a denial; the person is not put back in scope by that alone."""
        ...

    # Rooms.

    def create_room(
        self,
        settings: RoomSettings,
        *,
        managers: Iterable[str] = (),
        members: Iterable[str] = (),
        category: Category | None = None,
    ) -> Room:
        """Create a room in its category with its settings, Managers and Members (the
        category as the caller already read it, or read now)."""
        ...

    def update_room(
        self, room_id: str, settings: RoomSettings, *, current: Room | None = None
    ) -> Room:
        """Change a room's name, description, privacy, auditorium, invitations or category
        (`current`: the room as the caller read it)."""
        ...

    def attach_add_in(self, room_id: str, add_in: AddIn) -> Room:
        """Show an add-in in the room (the same again changes nothing)."""
        ...

    def detach_add_in(self, room_id: str, add_in_id: str) -> Room:
        """Take an add-in out of the room (safe to repeat)."""
        ...

    def set_room_options(self, room_id: str, options: ChatOptions) -> Room:
        """Give a room its category's chat options (safe to repeat)."""
        ...

    def set_room_disabled(self, room_id: str, disabled: bool) -> Room:
        """Disable a room (nobody joins or posts) or re-enable it (safe to repeat)."""
        ...

    def delete_room(self, room_id: str) -> None:
        """Remove a room, with its history, then from its category."""
        ...

    # Roles.

    def add_to_role(
        self,
        room_id: str,
        role: Role,
        user_ids: Iterable[str],
        *,
        on_added: Callable[[str], None] | None = None,
        invite: bool | None = None,
    ) -> None:
        """Give people a role in a room; `on_added` hears of each person as it is done."""
        ...

    def remove_from_role(self, room_id: str, role: Role, user_ids: Iterable[str]) -> None:
        """Take a role away from people in a room."""
        ...

    # People: the chat server holds them.

    @property
    def service_user(self) -> str:
        """The service account's chat ID."""
        ...

    def whoami(self) -> str:
        """The chat ID the service token belongs to; fails if the token is not valid."""
        ...

    def get_user(self, user_id: str) -> Principal:
        """One person on this chat server, by chat ID."""
        ...

    def search_users(self, term: str, *, limit: int = 20) -> list[Principal]:
        """People whose chat ID or display name contains the term."""
        ...

    def user_id_for(self, name: str) -> str:
        """The full chat ID for a login name ("alice" or "@alice:server")."""
        ...

    def provision_user(self, localpart: str, *, display_name: str) -> Principal:
        """Make sure a person of the directory has a chat account, with its name."""
        ...

    def ensure_user(
        self, localpart: str, *, password: str, display_name: str, email: str = ""
    ) -> Principal:
        """Create a person on the chat server, or reset their password and name."""
        ...


class ChatServer(ChatChanges, Protocol):
    """A chat server the index's write-through puts in front of: the changes, and the
    reads it needs to put into the index what the server then holds."""

    def read(self, target_id: str) -> Room | Category | None:
        """One room or space as the portal's record: a category, a room of a category, or
        None for one that is not the portal's (ChatNotFound when the server has no such
        ID)."""
        ...

    def get_room(self, room_id: str) -> Room:
        """A portal room as the server has it now (ChatNotFound if it is not one)."""
        ...

    def room_exists(self, room_id: str, *, settle: float = 0.0) -> bool:
        """Whether the room is still there and not being deleted (`settle`: seconds given
        for a deletion started elsewhere to be listed)."""
        ...

    def unlink_room(self, room_id: str, category_id: str) -> bool:
        """Make sure the room and the category no longer point at each other; says whether
        anything was removed."""
        ...
