"""Rooms: creating, reading, changing and deleting them, and their roles."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from rooms.backend.errors import (
    ChatBackendError,
    ChatConflict,
    ChatNotFound,
    ChatServerUnavailable,
    RoomCreationIncomplete,
)
from rooms.backend.matrix.base import ADMIN, CLIENT, PAGE_SIZE, TRIES, state_event
from rooms.backend.matrix.categories import CategoryOperations
from rooms.backend.matrix.state import (
    category_of,
    events_default_for,
    join_rules_for,
    room_from_state,
    room_power_levels,
    widget_content,
)
from rooms.backend.matrix.transport import segment
from rooms.backend.records import AddIn, Category, ChatOptions, Role, Room, RoomSettings
from rooms.chatserver.policy import (
    ADD_IN_PREFIX,
    MANAGER_LEVEL,
    PRESENTER_LEVEL,
    ROOM_SETTINGS_EVENT,
    WIDGET_EVENT,
    history_visibility,
    retention,
)

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
        # The creation's own alias makes createRoom safe to repeat: after a lost answer the
        # room it made is found by it, never made twice. It is not the room's published
        # address (the canonical alias is left empty).
        key = f"portal-{uuid.uuid4().hex}"
        room_id = self._create_once(
            key,
            {
                "name": settings.name,
                "room_alias_name": key,
                "topic": settings.description,
                "preset": "private_chat",
                "initial_state": [
                    state_event("m.room.join_rules", join_rules_for(settings.privacy, category.id)),
                    state_event(
                        "m.space.parent",
                        {"via": [self.server_name], "canonical": True},
                        state_key=category.id,
                    ),
                    state_event(
                        ROOM_SETTINGS_EVENT,
                        portal_settings(settings, disabled=False, options=category.options),
                    ),
                    state_event("m.room.guest_access", {"guest_access": "forbidden"}),
                    state_event(
                        "m.room.history_visibility",
                        {"history_visibility": history_visibility(category.options.chat_history)},
                    ),
                    state_event("m.room.retention", retention(category.options.keep_days)),
                    state_event("m.room.canonical_alias", {}),
                ],
                "power_level_content_override": room_power_levels(
                    managers=managers,
                    presenters=(),
                    auditorium=settings.auditorium,
                    disabled=False,
                ),
            },
        )
        try:
            self._again(
                lambda: self._put_state(
                    category.id, "m.space.child", {"via": [self.server_name]}, room_id
                )
            )
            invite = self._invites(settings.invitations, category)
            for user_id in members:
                self._again(lambda: self._ensure_member(room_id, user_id, invite=invite))  # noqa: B023
            room: Room = self._again(lambda: self.get_room(room_id))
            return room
        except ChatBackendError as exc:
            raise self._roll_back(room_id, exc) from exc

    def _create_once(self, key: str, request: dict[str, Any]) -> str:
        """createRoom, tried again while the server is unavailable; a room an earlier try
        made (its answer lost) is found by the creation's alias."""
        alias = f"#{key}:{self.server_name}"
        for attempt in range(1, TRIES + 1):
            try:
                room_id = self.http.request("POST", f"{CLIENT}/createRoom", json=request).get(
                    "room_id"
                )
                if not isinstance(room_id, str):
                    raise ChatServerUnavailable("The chat server did not say which room it made.")
                return room_id
            except ChatServerUnavailable:
                if attempt == TRIES:
                    raise
            except ChatConflict:  # M_ROOM_IN_USE: the alias is taken by an earlier try
                pass
            try:
                found = self.http.request("GET", f"{CLIENT}/directory/room/{segment(alias)}")
            except (ChatNotFound, ChatServerUnavailable):
                continue  # not made (or not known yet): try again
            if isinstance(found.get("room_id"), str):
                return str(found["room_id"])
        raise ChatServerUnavailable()

    def _roll_back(self, room_id: str, cause: ChatBackendError) -> RoomCreationIncomplete:
        """Remove a room whose setup failed; say whether that worked."""
        try:
            self._again(lambda: self.delete_room(room_id))
        except ChatBackendError:
            log.exception("Could not remove the half-made room %s", room_id)
            return RoomCreationIncomplete(
                cause.detail, room_id=room_id, rolled_back=False, code=cause.code
            )
        return RoomCreationIncomplete(
            cause.detail, room_id=room_id, rolled_back=True, code=cause.code
        )

    def delete_room(self, room_id: str) -> None:
        """Remove a room from the chat server, with its history, then from its category.
        In that order: a failure leaves the room whole, or gone with at most a link to it
        left in its category (skipped wherever rooms are listed)."""
        category_id = category_of(self._state(room_id))
        self._purge(room_id, "This room was deleted.")
        if category_id:
            try:
                self._again(lambda: self._put_state(category_id, "m.space.child", {}, room_id))
            except ChatBackendError:
                log.warning("Could not unlink the deleted room %s from its category", room_id)

    def unlink_room(self, room_id: str, category_id: str) -> bool:
        """Make sure the room and this category no longer point at each other (a move that
        stopped half-way leaves one or both links); says whether anything was removed."""
        removed = False
        if self._state(room_id).content("m.space.parent", category_id):
            self._put_state(room_id, "m.space.parent", {}, category_id)
            removed = True
        if self._state(category_id).content("m.space.child", room_id):
            self._put_state(category_id, "m.space.child", {}, room_id)
            removed = True
        return removed

    def room_exists(self, room_id: str, *, settle: float = 0.0) -> bool:
        """Whether the room is still on the server and not being deleted (after a delete
        whose answer was lost, the deletion it started goes on on the server). A deletion
        is listed only once the server starts it: `settle` seconds are given for that."""
        deadline = time.monotonic() + settle
        while self._room_present(room_id):
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.2)
        return False

    def _room_present(self, room_id: str) -> bool:
        try:
            deletions = self._again(
                lambda: self.http.request(
                    "GET", f"{ADMIN}/v2/rooms/{segment(room_id)}/delete_status"
                )
            ).get("results", [])
        except ChatNotFound:
            deletions = []
        if any(isinstance(d, dict) and d.get("status") != "failed" for d in deletions):
            return False
        try:
            body = self._again(
                lambda: self.http.request("GET", f"{ADMIN}/v1/rooms/{segment(room_id)}")
            )
        except ChatNotFound:
            return False
        return bool(body.get("room_id")) and body.get("joined_local_members", 1) > 0

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
        options = current.options
        if settings.category_id != old.category_id:
            # Linked into the new category before leaving the old one: a move that stops
            # half-way leaves the room in both, never in none (invisible to the portal).
            # The room takes its new category's chat options.
            options = self.get_category(settings.category_id).options
            if options.chat_history != current.options.chat_history:
                history = {"history_visibility": history_visibility(options.chat_history)}
                self._put_state(room_id, "m.room.history_visibility", history)
            if options.keep_days != current.options.keep_days:
                self._put_state(room_id, "m.room.retention", retention(options.keep_days))
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
        if (settings.auditorium, settings.invitations, options) != (
            old.auditorium,
            old.invitations,
            current.options,
        ):
            self._put_state(
                room_id,
                ROOM_SETTINGS_EVENT,
                portal_settings(settings, disabled=current.disabled, options=options),
            )
        if settings.auditorium != old.auditorium and not current.disabled:
            self._set_levels(
                state,
                events_default=events_default_for(auditorium=settings.auditorium, disabled=False),
            )
        return self.get_room(room_id)

    def set_room_options(self, room_id: str, options: ChatOptions) -> Room:
        """Give a room its category's chat options: the settings event the module reads
        (file upload), the history visibility that says whether people who join later
        see what was said before, and the retention policy that says how long the
        homeserver keeps messages. The settings event is written last: a half-done
        change is read as not done (it still holds the old options) and is finished by
        doing it again."""
        state = self._state(room_id)
        room = room_from_state(state, service_user=self.service_user)
        history = {"history_visibility": history_visibility(options.chat_history)}
        if state.content("m.room.history_visibility") != history:
            self._put_state(room_id, "m.room.history_visibility", history)
        if state.content("m.room.retention") != retention(options.keep_days):
            self._put_state(room_id, "m.room.retention", retention(options.keep_days))
        portal = portal_settings(room.settings, room.disabled, options)
        if state.content(ROOM_SETTINGS_EVENT) != portal:
            self._put_state(room_id, ROOM_SETTINGS_EVENT, portal)
        return self.get_room(room_id)

    def attach_add_in(self, room_id: str, add_in: AddIn) -> Room:
        """Show an add-in in the room (its widget; the same again changes nothing)."""
        content = widget_content(add_in, creator=self.service_user)
        key = ADD_IN_PREFIX + add_in.id
        self._put_state(room_id, WIDGET_EVENT, content, key)
        return self.get_room(room_id)

    def detach_add_in(self, room_id: str, add_in_id: str) -> Room:
        """Take an add-in out of the room (its widget emptied; safe to repeat)."""
        self._put_state(room_id, WIDGET_EVENT, {}, ADD_IN_PREFIX + add_in_id)
        return self.get_room(room_id)

    def set_room_disabled(self, room_id: str, disabled: bool) -> Room:
        """Disable a room (nobody joins or posts) or re-enable it; settings and roles stay.

        Its three parts (the server's block, the portal's settings event, the power to
        post) are each compared first and sent only when they differ, so doing it again,
        or undoing a half-done one, touches only what is not yet right.
        """
        state = self._state(room_id)
        room = room_from_state(state, service_user=self.service_user)
        block = f"{ADMIN}/v1/rooms/{segment(room_id)}/block"
        portal = portal_settings(room.settings, disabled, room.options)
        posting = events_default_for(auditorium=room.settings.auditorium, disabled=disabled)

        def record() -> None:
            if state.content(ROOM_SETTINGS_EVENT) != portal:
                self._put_state(room_id, ROOM_SETTINGS_EVENT, portal)

        def levels() -> None:
            if state.power_levels.get("events_default") != posting:
                self._set_levels(state, events_default=posting)

        def blocked() -> None:
            if bool(self.http.request("GET", block).get("block")) != disabled:
                self.http.request("PUT", block, json={"block": disabled})

        # The settings event records the auditorium while a room is disabled (its power
        # to post says nothing then): written first on the way in, last on the way out,
        # so a half-done change is always read right.
        for part in (record, levels, blocked) if disabled else (levels, blocked, record):
            part()
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
        user_ids, role = list(user_ids), Role(role)  # a role's name is taken too
        report = on_added or (lambda user_id: None)
        if role is Role.MEMBER:
            if invite is None:
                room = self.get_room(room_id)
                category = self.get_category(room.settings.category_id)
                invite = self._invites(room.settings.invitations, category)
            for user_id in user_ids:
                self._again(lambda: self._ensure_member(room_id, user_id, invite=bool(invite)))  # noqa: B023
                report(user_id)
            return
        level = MANAGER_LEVEL if role is Role.MANAGER else PRESENTER_LEVEL

        def raise_levels() -> None:
            state = self._state(room_id)
            current = state.user_levels()
            # Never lower anyone: a Manager already posts wherever a Presenter may.
            raise_to = {u: level for u in user_ids if current.get(u, 0) < level}
            if raise_to:
                self._set_levels(state, users=raise_to)

        self._again(raise_levels)
        for user_id in user_ids:
            report(user_id)

    def remove_from_role(self, room_id: str, role: Role, user_ids: Iterable[str]) -> None:
        """Take a role away from people in a room (read afresh on every try, so a try
        after a lost answer finds the person already gone)."""
        people, role = list(user_ids), Role(role)
        self._again(lambda: self._remove_from_role(room_id, role, people))

    def _remove_from_role(self, room_id: str, role: Role, user_ids: Iterable[str]) -> None:
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


def portal_settings(settings: RoomSettings, disabled: bool, options: ChatOptions) -> dict[str, Any]:
    """The room's settings event: what the portal keeps of the room on the chat server,
    with its category's chat options (which the homeserver's module enforces)."""
    return {
        "invitations": str(settings.invitations),
        "auditorium": settings.auditorium,
        "disabled": disabled,
    } | options.values()
