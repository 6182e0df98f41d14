"""An in-memory chat server behind the portal's declared interface (`ChatServer`), for the
fast layer: services, pages and the authorization matrix's refusals run against it with
the real index and database in front, and no homeserver.

It keeps the portal's records (categories, rooms, people) as the Matrix client reads
them back after each change, and refuses what the client refuses (a category that still
has rooms). Like the homeserver's module, it lets the service account do what it asks:
the portal's own rules are the services' to keep (`tests/rooms/backend/
test_fake_keeps_to_the_server.py` walks both through every change and compares). What it
does not do is what only a real server does on demand (messages, adoption of rooms made
elsewhere, failures): those tests run against the test Synapse. `changes` lists every
change asked of it, by name, so a test can say that nothing was asked.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import replace

from rooms.backend.errors import ChatConflict, ChatNotFound
from rooms.backend.interface import ChatServer
from rooms.backend.records import (
    DEFAULT_OPTIONS,
    LOCALPART,
    AddIn,
    Category,
    ChatOptions,
    Principal,
    Role,
    Room,
    RoomSettings,
)

SERVER_NAME = "fake.test"


class FakeChatServer(ChatServer):
    """One chat server's portal records, kept in memory (mypy holds it to the declared
    interface, as it holds the Matrix client)."""

    def __init__(self) -> None:
        self.categories: dict[str, Category] = {}
        self.rooms: dict[str, Room] = {}
        self.people: dict[str, Principal] = {}
        self.changes: list[str] = []
        self._ids = itertools.count(1)

    def _new_id(self) -> str:
        return f"!{next(self._ids)}:{SERVER_NAME}"

    def _changed(self, name: str) -> None:
        self.changes.append(name)

    def _category(self, category_id: str) -> Category:
        try:
            return self.categories[category_id]
        except KeyError:
            raise ChatNotFound("There is no such category.") from None

    def _room(self, room_id: str) -> Room:
        try:
            return self.rooms[room_id]
        except KeyError:
            raise ChatNotFound("There is no such room.") from None

    # Reads.

    def read(self, target_id: str) -> Room | Category | None:
        if target_id in self.rooms:
            return self.rooms[target_id]
        return self._category(target_id)

    def get_room(self, room_id: str) -> Room:
        return self._room(room_id)

    def room_exists(self, room_id: str, *, settle: float = 0.0) -> bool:
        return room_id in self.rooms

    # Categories.

    def create_category(
        self,
        *,
        name: str,
        description: str,
        invitations_allowed: bool = True,
        creators: Iterable[str] = (),
        options: ChatOptions = DEFAULT_OPTIONS,
    ) -> Category:
        self._changed("create_category")
        made = Category(
            id=self._new_id(),
            name=name,
            description=description,
            invitations_allowed=invitations_allowed,
            allowed_members=frozenset(),
            denied_members=frozenset(),
            creators=frozenset(creators),
            room_ids=(),
            options=options,
        )
        self.categories[made.id] = made
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
        self._changed("update_category")
        current = self._category(category_id)
        changed = replace(
            current,
            name=name,
            description=description,
            invitations_allowed=invitations_allowed,
            options=options or current.options,
        )
        self.categories[category_id] = changed
        return changed

    def set_category_creators(self, category_id: str, creators: Iterable[str]) -> Category:
        self._changed("set_category_creators")
        changed = replace(self._category(category_id), creators=frozenset(creators))
        self.categories[category_id] = changed
        return changed

    def delete_category(self, category_id: str) -> None:
        self._changed("delete_category")
        if self._category(category_id).room_ids:
            raise ChatConflict("The category still has rooms.")
        del self.categories[category_id]

    def _scope(self, category_id: str, change: Callable[[Category], Category]) -> None:
        self.categories[category_id] = change(self._category(category_id))

    def add_to_category_scope(self, category_id: str, user_ids: Iterable[str]) -> None:
        self._changed("add_to_category_scope")
        people = frozenset(user_ids)
        self._scope(
            category_id,
            lambda c: replace(c, allowed_members=c.allowed_members | (people - c.denied_members)),
        )

    def remove_from_category_scope(self, category_id: str, user_ids: Iterable[str]) -> None:
        self._changed("remove_from_category_scope")
        people = frozenset(user_ids)
        self._scope(category_id, lambda c: replace(c, allowed_members=c.allowed_members - people))

    def deny_in_category(self, category_id: str, user_ids: Iterable[str]) -> None:
        self._changed("deny_in_category")
        people = frozenset(user_ids)
        self._scope(
            category_id,
            lambda c: replace(
                c,
                allowed_members=c.allowed_members - people,
                denied_members=c.denied_members | people,
            ),
        )

    def undeny_in_category(self, category_id: str, user_ids: Iterable[str]) -> None:
        self._changed("undeny_in_category")
        people = frozenset(user_ids)
        self._scope(category_id, lambda c: replace(c, denied_members=c.denied_members - people))

    # Rooms.

    def _link(self, category_id: str, room_id: str, *, linked: bool) -> None:
        category = self._category(category_id)
        ids = set(category.room_ids) | {room_id} if linked else set(category.room_ids) - {room_id}
        self.categories[category_id] = replace(category, room_ids=tuple(sorted(ids)))

    def create_room(
        self,
        settings: RoomSettings,
        *,
        managers: Iterable[str] = (),
        members: Iterable[str] = (),
        category: Category | None = None,
    ) -> Room:
        self._changed("create_room")
        category = self._category(settings.category_id)
        made = Room(
            id=self._new_id(),
            settings=settings,
            members=frozenset(members),
            managers=frozenset(managers),
            options=category.options,
        )
        self.rooms[made.id] = made
        self._link(category.id, made.id, linked=True)
        return made

    def update_room(
        self, room_id: str, settings: RoomSettings, *, current: Room | None = None
    ) -> Room:
        self._changed("update_room")
        room = self._room(room_id)
        options = room.options
        if settings.category_id != room.settings.category_id:
            options = self._category(settings.category_id).options
            self._link(settings.category_id, room_id, linked=True)
            self._link(room.settings.category_id, room_id, linked=False)
        changed = replace(room, settings=settings, options=options)
        self.rooms[room_id] = changed
        return changed

    def unlink_room(self, room_id: str, category_id: str) -> bool:
        self._changed("unlink_room")
        linked = room_id in self._category(category_id).room_ids
        self._link(category_id, room_id, linked=False)
        return linked

    def _set(self, room_id: str, name: str, change: Callable[[Room], Room]) -> Room:
        self._changed(name)
        changed = self.rooms[room_id] = change(self._room(room_id))
        return changed

    def attach_add_in(self, room_id: str, add_in: AddIn) -> Room:
        return self._set(
            room_id,
            "attach_add_in",
            lambda r: replace(r, add_ins=(*(a for a in r.add_ins if a.id != add_in.id), add_in)),
        )

    def detach_add_in(self, room_id: str, add_in_id: str) -> Room:
        return self._set(
            room_id,
            "detach_add_in",
            lambda r: replace(r, add_ins=tuple(a for a in r.add_ins if a.id != add_in_id)),
        )

    def set_room_options(self, room_id: str, options: ChatOptions) -> Room:
        return self._set(room_id, "set_room_options", lambda r: replace(r, options=options))

    def set_room_disabled(self, room_id: str, disabled: bool) -> Room:
        return self._set(room_id, "set_room_disabled", lambda r: replace(r, disabled=disabled))

    def delete_room(self, room_id: str) -> None:
        self._changed("delete_room")
        room = self.rooms.pop(room_id)
        self._link(room.settings.category_id, room_id, linked=False)

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
        self._changed("add_to_role")
        room, people, role = self._room(room_id), list(user_ids), Role(role)
        for user_id in people:
            room = self.rooms[room_id] = _with_role(room, role, room.principals(role) | {user_id})
            if on_added:
                on_added(user_id)

    def remove_from_role(self, room_id: str, role: Role, user_ids: Iterable[str]) -> None:
        people, role = frozenset(user_ids), Role(role)
        self._set(
            room_id,
            "remove_from_role",
            lambda r: _with_role(r, role, r.principals(role) - people),
        )

    # People.

    @property
    def service_user(self) -> str:
        return f"@portal:{SERVER_NAME}"

    def whoami(self) -> str:
        return self.service_user

    def get_user(self, user_id: str) -> Principal:
        try:
            return self.people[user_id]
        except KeyError:
            raise ChatNotFound(f"{user_id} is not a person on this chat server.") from None

    def search_users(self, term: str, *, limit: int = 20) -> list[Principal]:
        wanted = term.casefold()
        return [
            p
            for p in sorted(self.people.values(), key=lambda p: p.id)
            if wanted in p.id.casefold() or wanted in p.display_name.casefold()
        ][:limit]

    def user_id_for(self, name: str) -> str:
        name = name.strip()
        if name.startswith("@") or not LOCALPART.fullmatch(name.lower()):
            return name
        return f"@{name.lower()}:{SERVER_NAME}"

    def provision_user(self, localpart: str, *, display_name: str) -> Principal:
        self._changed("provision_user")
        person = Principal(self.user_id_for(localpart), display_name)
        self.people[person.id] = person
        return person

    def ensure_user(
        self, localpart: str, *, password: str, display_name: str, email: str = ""
    ) -> Principal:
        self._changed("ensure_user")
        person = Principal(
            self.user_id_for(localpart), display_name, emails=(email,) if email else ()
        )
        self.people[person.id] = person
        return person


def _with_role(room: Room, role: Role, people: AbstractSet[str]) -> Room:
    """The room with these people, and no others, in the role."""
    if role is Role.MANAGER:
        return replace(room, managers=people)
    if role is Role.PRESENTER:
        return replace(room, presenters=people)
    return replace(room, members=people)
