"""The chat client with the index in front (`chat_backend()`): reads from the index,
changes made on the chat server and written through into the index."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Generic, TypeVar

from rooms.backend import server_client
from rooms.backend.errors import ChatBackendError
from rooms.backend.interface import ChatChanges, ChatServer
from rooms.backend.matrix.adoption import RoomFit, SpaceFit
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.backend.matrix.moderation import ModerationOperations
from rooms.backend.records import (
    DEFAULT_OPTIONS,
    AddIn,
    Category,
    ChatOptions,
    Invitations,
    Principal,
    Role,
    Room,
    RoomSettings,
)
from rooms.index.changes import Change, refresh
from rooms.index.records import (
    categories,
    categories_for_creator,
    category,
    name_taken,
    room,
    rooms,
)
from rooms.index.writes import (
    add_people,
    add_to_scope,
    drop,
    link_room,
    note_difference,
    put_category,
    put_room,
)
from rooms.models import (
    CategoryPerson,
    IndexedCategory,
    IndexedRoom,
)

Standing = CategoryPerson.Standing


Server = TypeVar("Server", bound=ChatServer)


class IndexedChatBackend(ChatChanges, Generic[Server]):
    """The chat client with the index in front: reads come from the index, and every
    change is made on the server and then written into the index as the server confirmed
    it. People (accounts, logins, search) are asked of the server, which holds them.

    The server behind it is any `ChatServer`: the Matrix client in the portal, an
    in-memory one in the fast tests. Adoption and moderation read Matrix rooms as they
    are, so they are there only in front of the Matrix client (mypy holds callers to it).
    """

    def __init__(self, server: Callable[[], Server]) -> None:
        self._connect = server
        self._server: Server | None = None

    @property
    def server(self) -> Server:
        """The chat server alone, with no index in front (the sync worker, which keeps
        the index, and what is measured or arranged in benchmarks and tests); looked up
        only when something asks the server: pages that read the index answer even when
        the chat server is not there."""
        if self._server is None:
            self._server = self._connect()
        return self._server

    @property
    def moderation(self: IndexedChatBackend[MatrixChatBackend]) -> ModerationOperations:
        """What is said in rooms (messages, reports, history), asked of the chat server:
        the index holds rooms and people, never messages."""
        return self.server

    def room_on_server(self, room_id: str) -> Room:
        """The room as the chat server has it now, not as indexed: after a failure part-way
        through a change, the index may not know what was applied."""
        return self.server.get_room(room_id)

    def unlink_room(self, room_id: str, category_id: str) -> None:
        """Take the room from the category's child links (a move's other end), and index
        the category as the server then has it."""
        if self.server.unlink_room(room_id, category_id):
            self.refresh(category_id)

    # Reads from the index.

    def get_category(self, category_id: str) -> Category:
        return category(category_id)

    def list_categories(self) -> list[Category]:
        return categories()

    def get_categories(self, category_ids: Iterable[str]) -> list[Category]:
        return categories(category_ids)

    def find_categories_with_create_rights(self, user_id: str) -> list[Category]:
        return categories_for_creator(user_id)

    def get_room(self, room_id: str) -> Room:
        return room(room_id)

    def get_rooms(self, room_ids: Iterable[str]) -> list[Room]:
        return rooms(room_ids)

    def room_name_taken(self, name: str, *, exclude_room_id: str = "") -> bool:
        return name_taken(name, exclude_room_id=exclude_room_id)

    # Changes: made on the server, then indexed.

    def refresh(self, target_id: str) -> Change:
        return refresh(self.server, target_id)

    def create_category(
        self,
        *,
        name: str,
        description: str,
        invitations_allowed: bool = True,
        creators: Iterable[str] = (),
        options: ChatOptions = DEFAULT_OPTIONS,
    ) -> Category:
        made = self.server.create_category(
            name=name,
            description=description,
            invitations_allowed=invitations_allowed,
            creators=creators,
            options=options,
        )
        put_category(made)
        return made

    def update_category(
        self,
        category_id: str,
        *,
        name: str,
        description: str,
        invitations_allowed: bool,
        options: ChatOptions | None = None,
    ) -> Category:
        changed = self.server.update_category(
            category_id,
            name=name,
            description=description,
            invitations_allowed=invitations_allowed,
            options=options,
        )
        put_category(changed)
        return changed

    def set_category_creators(self, category_id: str, creators: Iterable[str]) -> Category:
        changed = self.server.set_category_creators(category_id, creators)
        put_category(changed)
        return changed

    def delete_category(self, category_id: str) -> None:
        self.server.delete_category(category_id)
        drop(category_id)

    def _then_refresh(self, target_id: str, change: Callable[[], None]) -> None:
        try:
            change()
        finally:
            # Part of a change may have been made before a failure: index what is there.
            self._refresh_quietly(target_id)

    def _refresh_quietly(self, target_id: str) -> None:
        try:
            self.refresh(target_id)
        except ChatBackendError:
            note_difference(target_id, "stale", "Changed, but not read back: the sync worker will.")

    def find_adoptable(
        self: IndexedChatBackend[MatrixChatBackend], term: str
    ) -> list[tuple[str, str, int, bool]]:
        """Spaces and rooms on the server matching the term that are not the portal's."""
        return [s for s in self.server.find_adoptable(term) if not self.held_by_portal(s[0])]

    def room_fit(
        self: IndexedChatBackend[MatrixChatBackend], room_id: str, category_id: str
    ) -> RoomFit:
        """How a room made outside the portal maps into this category."""
        category = self.get_category(category_id)
        fit = self.server.room_fit(room_id, frozenset(category.allowed_members))
        if not fit.impossible and self.held_by_portal(room_id):
            return replace(fit, impossible="It is a portal room already.")
        return fit

    def held_by_portal(self, target_id: str) -> bool:
        """Whether this is one of the portal's categories or rooms (as indexed)."""
        return (
            IndexedCategory.objects.filter(category_id=target_id).exists()
            or IndexedRoom.objects.filter(room_id=target_id).exists()
        )

    def adoption_fit(self: IndexedChatBackend[MatrixChatBackend], space_id: str) -> SpaceFit:
        """How the space maps; its rooms that are the portal's already are not adopted."""
        fit = self.server.adoption_fit(space_id)
        rooms = tuple(
            replace(room, impossible="It is a portal room already.")
            if not room.impossible and self.held_by_portal(room.room_id)
            else room
            for room in fit.rooms
        )
        return replace(fit, rooms=rooms)

    def adopt_room(
        self: IndexedChatBackend[MatrixChatBackend], fit: RoomFit, category_id: str
    ) -> None:
        try:
            self._then_refresh(fit.room_id, lambda: self.server.adopt_room(fit, category_id))
        finally:
            self._refresh_quietly(category_id)

    def add_to_category_scope(self, category_id: str, user_ids: Iterable[str]) -> None:
        """Into the scope on the server, then into the index as confirmed (after a failure
        part-way, the category is read back instead)."""
        people = list(user_ids)
        try:
            self.server.add_to_category_scope(category_id, people)
        except ChatBackendError:
            self._refresh_quietly(category_id)
            raise
        add_to_scope(category_id, people)

    def remove_from_category_scope(self, category_id: str, user_ids: Iterable[str]) -> None:
        people = list(user_ids)
        self._then_refresh(
            category_id, lambda: self.server.remove_from_category_scope(category_id, people)
        )

    def deny_in_category(self, category_id: str, user_ids: Iterable[str]) -> None:
        people = list(user_ids)
        self._then_refresh(category_id, lambda: self.server.deny_in_category(category_id, people))

    def undeny_in_category(self, category_id: str, user_ids: Iterable[str]) -> None:
        people = list(user_ids)
        self._then_refresh(category_id, lambda: self.server.undeny_in_category(category_id, people))

    def create_room(
        self,
        settings: RoomSettings,
        *,
        managers: Iterable[str] = (),
        members: Iterable[str] = (),
        category: Category | None = None,
    ) -> Room:
        made = self.server.create_room(
            settings,
            managers=managers,
            members=members,
            category=category or self.get_category(settings.category_id),
        )
        put_room(made)
        link_room(made.settings.category_id, made.id, linked=True)
        return made

    def update_room(
        self, room_id: str, settings: RoomSettings, *, current: Room | None = None
    ) -> Room:
        """`current`: the room as the caller read it from the server (the index's, if not)."""
        before = current or self.get_room(room_id)
        try:
            changed = self.server.update_room(room_id, settings, current=before)
        except ChatBackendError:
            self._refresh_quietly(room_id)
            raise
        put_room(changed)
        if changed.settings.category_id != before.settings.category_id:
            link_room(before.settings.category_id, room_id, linked=False)
            link_room(changed.settings.category_id, room_id, linked=True)
        return changed

    def attach_add_in(self, room_id: str, add_in: AddIn) -> Room:
        changed = self.server.attach_add_in(room_id, add_in)
        put_room(changed)
        return changed

    def detach_add_in(self, room_id: str, add_in_id: str) -> Room:
        changed = self.server.detach_add_in(room_id, add_in_id)
        put_room(changed)
        return changed

    def set_room_options(self, room_id: str, options: ChatOptions) -> Room:
        try:
            changed = self.server.set_room_options(room_id, options)
        except ChatBackendError:
            self._refresh_quietly(room_id)
            raise
        put_room(changed)
        return changed

    def set_room_disabled(self, room_id: str, disabled: bool) -> Room:
        try:
            changed = self.server.set_room_disabled(room_id, disabled)
        except ChatBackendError:
            self._refresh_quietly(room_id)
            raise
        put_room(changed)
        return changed

    def delete_room(self, room_id: str) -> None:
        held = IndexedRoom.objects.filter(room_id=room_id).first()
        try:
            self.server.delete_room(room_id)
        except ChatBackendError as failure:
            # The server may have deleted it and lost the answer: ask before saying no.
            try:
                gone = not self.server.room_exists(room_id, settle=2.0)
            except ChatBackendError:
                raise failure from None
            if not gone:
                raise
        drop(room_id)
        if held is not None and held.category_id:
            link_room(held.category_id, room_id, linked=False)

    def add_to_role(
        self,
        room_id: str,
        role: Role,
        user_ids: Iterable[str],
        *,
        on_added: Callable[[str], None] | None = None,
        invite: bool | None = None,
    ) -> None:
        """Members are invited or joined as the room's invitations say (read from the
        index), unless `invite` says (someone joining on their own is joined); what the
        server confirmed is written into the index as it is confirmed."""
        people = list(user_ids)
        if invite is None:
            held = self.get_room(room_id)
            invite = (
                held.settings.invitations is Invitations.INHERIT
                and self.get_category(held.settings.category_id).invitations_allowed
            )
        done: list[str] = []

        def confirmed(user_id: str) -> None:
            done.append(user_id)
            if on_added:
                on_added(user_id)

        try:
            self.server.add_to_role(room_id, role, people, on_added=confirmed, invite=invite)
        except ChatBackendError:
            self._refresh_quietly(room_id)
            raise
        add_people(room_id, role, done)

    def remove_from_role(self, room_id: str, role: Role, user_ids: Iterable[str]) -> None:
        people = list(user_ids)
        self._then_refresh(room_id, lambda: self.server.remove_from_role(room_id, role, people))

    # People: the server holds them.

    @property
    def service_user(self) -> str:
        return self.server.service_user

    def whoami(self) -> str:
        return self.server.whoami()

    def get_user(self, user_id: str) -> Principal:
        return self.server.get_user(user_id)

    def search_users(self, term: str, *, limit: int = 20) -> list[Principal]:
        return self.server.search_users(term, limit=limit)

    def user_id_for(self, name: str) -> str:
        return self.server.user_id_for(name)

    def provision_user(self, localpart: str, *, display_name: str) -> Principal:
        return self.server.provision_user(localpart, display_name=display_name)

    def ensure_user(
        self, localpart: str, *, password: str, display_name: str, email: str = ""
    ) -> Principal:
        return self.server.ensure_user(
            localpart, password=password, display_name=display_name, email=email
        )


def chat_backend() -> IndexedChatBackend[MatrixChatBackend]:
    """The portal's chat client: the configured homeserver, with the index in front."""
    return IndexedChatBackend(server_client)
