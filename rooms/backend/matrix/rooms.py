"""Rooms: creating, reading, changing and deleting them, and their roles."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from rooms.backend.errors import (
    ChatBackendError,
    ChatNotFound,
    RoomCreationIncomplete,
)
from rooms.backend.matrix.base import ADMIN, CLIENT, PAGE_SIZE, state_event
from rooms.backend.matrix.categories import CategoryOperations
from rooms.backend.matrix.state import (
    MANAGER_LEVEL,
    PRESENTER_LEVEL,
    ROOM_SETTINGS_EVENT,
    category_of,
    events_default_for,
    join_rules_for,
    room_from_state,
    room_power_levels,
)
from rooms.backend.matrix.transport import segment
from rooms.backend.records import Category, Role, Room, RoomSettings

log = logging.getLogger(__name__)


class RoomOperations(CategoryOperations):
    def room_name_taken(self, name: str, *, exclude_room_id: str = "") -> bool:
        """Whether another room on the server already has this name, in any letter case."""
        wanted = name.strip().casefold()
        body = self.http.request(
            "GET", f"{ADMIN}/v1/rooms", params={"search_term": name.strip(), "limit": PAGE_SIZE}
        )
        return any(
            isinstance(r, dict)
            and str(r.get("name") or "").strip().casefold() == wanted
            and r.get("room_id") != exclude_room_id
            for r in body.get("rooms", [])
        )

    def get_room(self, room_id: str) -> Room:
        """A room's settings and roles, as they are on the chat server now."""
        state = self._state(room_id)
        room = room_from_state(state, service_user=self.service_user)
        if state.is_space or not room.settings.category_id:
            raise ChatNotFound("There is no such room.")
        return room

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
        category = category or self.get_category(settings.category_id)
        body = self.http.request(
            "POST",
            f"{CLIENT}/createRoom",
            json={
                "name": settings.name,
                "topic": settings.description,
                "preset": "private_chat",
                "initial_state": [
                    state_event("m.room.join_rules", join_rules_for(settings.privacy, category.id)),
                    state_event(
                        "m.space.parent",
                        {"via": [self.server_name], "canonical": True},
                        state_key=category.id,
                    ),
                    state_event(ROOM_SETTINGS_EVENT, _portal_settings(settings, disabled=False)),
                    state_event("m.room.guest_access", {"guest_access": "forbidden"}),
                    state_event("m.room.history_visibility", {"history_visibility": "shared"}),
                ],
                "power_level_content_override": room_power_levels(
                    managers=managers,
                    presenters=(),
                    auditorium=settings.auditorium,
                    disabled=False,
                ),
            },
        )
        room_id = body.get("room_id")
        if not isinstance(room_id, str):
            raise ChatBackendError("The chat server did not say which room it created.")
        try:
            self._put_state(category.id, "m.space.child", {"via": [self.server_name]}, room_id)
            invite = self._invites(settings.invitations, category)
            for user_id in members:
                self._add_member(room_id, user_id, invite=invite)
            return self.get_room(room_id)
        except ChatBackendError as exc:
            raise self._roll_back(room_id, exc) from exc

    def _roll_back(self, room_id: str, cause: ChatBackendError) -> RoomCreationIncomplete:
        """Remove a room whose setup failed; say whether that worked."""
        try:
            self.delete_room(room_id)
        except ChatBackendError:
            log.exception("Could not remove the half-made room %s", room_id)
            return RoomCreationIncomplete(
                cause.detail, room_id=room_id, rolled_back=False, code=cause.code
            )
        return RoomCreationIncomplete(
            cause.detail, room_id=room_id, rolled_back=True, code=cause.code
        )

    def delete_room(self, room_id: str) -> None:
        """Remove a room from its category and from the chat server, with its history."""
        state = self._state(room_id)
        category_id = category_of(state)
        if category_id:
            try:
                self._put_state(category_id, "m.space.child", {}, room_id)
            except ChatBackendError:
                # The room goes all the same; a link to a deleted room is skipped when
                # rooms are listed.
                log.warning("Could not unlink room %s from its category", room_id)
        self._purge(room_id, "This room was deleted.")

    def get_rooms(self, room_ids: Iterable[str]) -> list[Room]:
        """These rooms as the server has them; IDs of rooms that are gone are skipped."""
        found = [self._room_or_none(room_id) for room_id in room_ids]
        return [room for room in found if room is not None]

    def _room_or_none(self, room_id: str) -> Room | None:
        try:
            return self.get_room(room_id)
        except ChatNotFound:
            return None  # listed in a category, but deleted or not a portal room

    def update_room(
        self, room_id: str, settings: RoomSettings, *, current: Room | None = None
    ) -> Room:
        """Change a room's name, description, privacy, auditorium, invitations or category.

        `current` is the room as the caller read it; the server's state is read only when
        the power levels change (the auditorium), which are put with their whole content.
        """
        if current is None or settings.auditorium != current.settings.auditorium:
            state = self._state(room_id)
            current = room_from_state(state, service_user=self.service_user)
        old = current.settings
        if settings.category_id != old.category_id:
            # Linked into the new category before leaving the old one: a move that stops
            # half-way leaves the room in both, never in none (invisible to the portal).
            self.get_category(settings.category_id)
            self._put_state(
                settings.category_id, "m.space.child", {"via": [self.server_name]}, room_id
            )
            self._put_state(
                room_id,
                "m.space.parent",
                {"via": [self.server_name], "canonical": True},
                settings.category_id,
            )
            self._put_state(room_id, "m.space.parent", {}, old.category_id)
            self._put_state(old.category_id, "m.space.child", {}, room_id)
        if settings.name != old.name:
            self._put_state(room_id, "m.room.name", {"name": settings.name})
        if settings.description != old.description:
            self._put_state(room_id, "m.room.topic", {"topic": settings.description})
        if (settings.privacy, settings.category_id) != (old.privacy, old.category_id):
            self._put_state(
                room_id, "m.room.join_rules", join_rules_for(settings.privacy, settings.category_id)
            )
        if (settings.auditorium, settings.invitations) != (old.auditorium, old.invitations):
            self._put_state(
                room_id,
                ROOM_SETTINGS_EVENT,
                _portal_settings(settings, disabled=current.disabled),
            )
        if settings.auditorium != old.auditorium and not current.disabled:
            self._set_levels(
                state,
                events_default=events_default_for(auditorium=settings.auditorium, disabled=False),
            )
        return self.get_room(room_id)

    def set_room_disabled(self, room_id: str, disabled: bool) -> Room:
        """Disable a room (nobody joins or posts) or re-enable it; settings and roles stay."""
        state = self._state(room_id)
        room = room_from_state(state, service_user=self.service_user)
        self.http.request(
            "PUT", f"{ADMIN}/v1/rooms/{segment(room_id)}/block", json={"block": disabled}
        )
        self._put_state(room_id, ROOM_SETTINGS_EVENT, _portal_settings(room.settings, disabled))
        self._set_levels(
            state,
            events_default=events_default_for(
                auditorium=room.settings.auditorium, disabled=disabled
            ),
        )
        return self.get_room(room_id)

    def add_to_role(
        self,
        room_id: str,
        role: Role,
        user_ids: Iterable[str],
        *,
        on_added: Callable[[str], None] | None = None,
        invite: bool | None = None,
    ) -> None:
        """Give people a role in a room; `on_added` hears of each person as it is done.
        `invite` says whether new Members are invited (read from the room when not given).

        Members are added one call each, so a failure part-way leaves the ones already
        reported done and the rest not; Managers and Presenters are set in one call.
        """
        user_ids = list(user_ids)
        report = on_added or (lambda user_id: None)
        if role is Role.MEMBER:
            if invite is None:
                room = self.get_room(room_id)
                category = self.get_category(room.settings.category_id)
                invite = self._invites(room.settings.invitations, category)
            for user_id in user_ids:
                self._add_member(room_id, user_id, invite=invite)
                report(user_id)
            return
        state = self._state(room_id)
        level = MANAGER_LEVEL if role is Role.MANAGER else PRESENTER_LEVEL
        current = state.user_levels()
        # Never lower anyone: a Manager already posts wherever a Presenter may.
        raise_to = {u: level for u in user_ids if current.get(u, 0) < level}
        if raise_to:
            self._set_levels(state, users=raise_to)
        for user_id in user_ids:
            report(user_id)

    def remove_from_role(self, room_id: str, role: Role, user_ids: Iterable[str]) -> None:
        """Take a role away from people in a room."""
        state = self._state(room_id)
        if role is Role.MEMBER:
            present = state.memberships("join", "invite", "knock")
            for user_id in user_ids:
                if user_id in present:
                    self._kick(room_id, user_id, "Removed from the room's members")
            return
        level = MANAGER_LEVEL if role is Role.MANAGER else PRESENTER_LEVEL
        levels = state.user_levels()
        drop = {u: None for u in user_ids if u in levels and _role_level(levels[u]) == level}
        if drop:
            self._set_levels(state, users=drop)


def _role_level(level: int) -> int:
    return MANAGER_LEVEL if level >= MANAGER_LEVEL else PRESENTER_LEVEL


def _portal_settings(settings: RoomSettings, disabled: bool) -> dict[str, Any]:
    return {
        "invitations": str(settings.invitations),
        "auditorium": settings.auditorium,
        "disabled": disabled,
    }
