"""The chat backend client: the portal's operations carried out on a Matrix homeserver."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from rooms.backend.errors import (
    ChatBackendError,
    ChatInvalid,
    ChatNotFound,
    ChatServerDenied,
    ChatServerUnavailable,
    RoomCreationIncomplete,
)
from rooms.backend.matrix.state import (
    CATEGORY_SETTINGS_EVENT,
    MANAGER_LEVEL,
    PRESENTER_LEVEL,
    ROOM_SETTINGS_EVENT,
    SPACE_TYPE,
    RoomState,
    category_from_state,
    category_of,
    category_power_levels,
    events_default_for,
    join_rules_for,
    room_from_state,
    room_power_levels,
)
from rooms.backend.matrix.transport import MatrixTransport, segment
from rooms.backend.records import (
    Category,
    Invitations,
    Principal,
    Role,
    Room,
    RoomSettings,
)

log = logging.getLogger(__name__)

CLIENT = "/_matrix/client/v3"
ADMIN = "/_synapse/admin"
PAGE_SIZE = 500


class MatrixChatBackend:
    """Acts on a Synapse homeserver as the portal's service account (a server admin)."""

    def __init__(
        self,
        *,
        base_url: str,
        server_name: str,
        token: str,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        extra = {"sleep": sleep} if sleep else {}
        self.http = MatrixTransport(
            base_url=base_url, token=token, timeout=timeout, transport=transport, **extra
        )
        self.server_name = server_name
        self._service_user = ""

    def close(self) -> None:
        self.http.close()

    # --- the service account and people -------------------------------------------------

    @property
    def service_user(self) -> str:
        """The service account's chat ID (asked of the server once)."""
        if not self._service_user:
            self._service_user = self.whoami()
        return self._service_user

    def whoami(self) -> str:
        """The chat ID the service token belongs to; fails if the token is not valid."""
        user_id = self.http.request("GET", f"{CLIENT}/account/whoami").get("user_id")
        if not isinstance(user_id, str):
            raise ChatBackendError("The chat server did not say who the service account is.")
        return user_id

    def is_server_admin(self) -> bool:
        """Whether the service account is a server administrator."""
        body = self.http.request("GET", f"{ADMIN}/v1/users/{segment(self.service_user)}/admin")
        return bool(body.get("admin"))

    def user_id_for(self, name: str) -> str:
        """The full chat ID for a login name ("alice" or "@alice:server")."""
        name = name.strip()
        if name.startswith("@"):
            return name
        return f"@{name.lower()}:{self.server_name}"

    def login(self, username: str, password: str) -> Principal:
        """Check a person's chat-server password; the session made to check it is ended at once.

        The portal keeps no chat password or token of the person.
        """
        body = self.http.request(
            "POST",
            f"{CLIENT}/login",
            json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": username},
                "password": password,
                "initial_device_display_name": "Room portal login check",
            },
            authenticated=False,
        )
        user_id, token = body.get("user_id"), body.get("access_token")
        if not isinstance(user_id, str) or not isinstance(token, str):
            raise ChatServerDenied("The chat server did not confirm the login.")
        try:
            profile = self.http.request("GET", f"{CLIENT}/profile/{segment(user_id)}", token=token)
        except ChatNotFound:
            profile = {}
        finally:
            self.http.request("POST", f"{CLIENT}/logout", json={}, token=token)
        return Principal(id=user_id, display_name=str(profile.get("displayname") or ""))

    def get_user(self, user_id: str) -> Principal:
        """One person on this chat server, by chat ID."""
        if not user_id.endswith(f":{self.server_name}"):
            raise ChatNotFound(f"{user_id} is not a person on this chat server.")
        try:
            body = self.http.request("GET", f"{ADMIN}/v2/users/{segment(user_id)}")
        except ChatInvalid as exc:  # malformed IDs are answered with 400
            raise ChatNotFound(f"{user_id} is not a valid chat ID.") from exc
        return _principal(body)

    def search_users(self, term: str, *, limit: int = 20) -> list[Principal]:
        """People whose chat ID or display name contains the term."""
        body = self.http.request(
            "GET",
            f"{ADMIN}/v2/users",
            params={"name": term, "limit": limit, "deactivated": "false", "guests": "false"},
        )
        users = body.get("users", [])
        return [
            _principal(user)
            for user in users
            if isinstance(user, dict) and user.get("name") != self.service_user
        ]

    def ensure_user(self, localpart: str, *, password: str, display_name: str) -> Principal:
        """Create a person on the chat server, or reset their password and name (demo data)."""
        user_id = self.user_id_for(localpart)
        body = self.http.request(
            "PUT",
            f"{ADMIN}/v2/users/{segment(user_id)}",
            json={"password": password, "displayname": display_name, "logout_devices": False},
        )
        return _principal(body)

    # --- categories ------------------------------------------------------------------

    def _state(self, room_id: str) -> RoomState:
        body = self.http.request("GET", f"{ADMIN}/v1/rooms/{segment(room_id)}/state")
        events = body.get("state")
        if not isinstance(events, list):
            raise ChatBackendError("The chat server sent room state the portal cannot read.")
        return RoomState.from_events(room_id, events)

    def _space_ids(self) -> list[str]:
        """Every space the service account created: the portal's categories."""
        ids, start = [], 0
        while True:
            body = self.http.request(
                "GET", f"{ADMIN}/v1/rooms", params={"from": start, "limit": PAGE_SIZE}
            )
            rooms = body.get("rooms", [])
            ids += [
                r["room_id"]
                for r in rooms
                if isinstance(r, dict)
                and r.get("room_type") == SPACE_TYPE
                and r.get("creator") == self.service_user
            ]
            next_batch = body.get("next_batch")
            if not rooms or next_batch is None:
                return ids
            start = int(next_batch)

    def list_categories(self) -> list[Category]:
        """Every category, sorted by name."""
        categories = [
            category_from_state(self._state(space_id), service_user=self.service_user)
            for space_id in self._space_ids()
        ]
        return sorted(categories, key=lambda c: c.name.casefold())

    def find_categories_with_create_rights(self, user_id: str) -> list[Category]:
        """The categories in which this person may create rooms (Lync's
        FindCategoriesWithCreateRights)."""
        return [c for c in self.list_categories() if c.is_creator(user_id)]

    def get_category(self, category_id: str) -> Category:
        """One category with its scope, creators and rooms."""
        state = self._state(category_id)
        if not state.is_space or self.service_user not in state.creators:
            raise ChatNotFound("There is no such category.")
        return category_from_state(state, service_user=self.service_user)

    def create_category(
        self,
        *,
        name: str,
        description: str,
        invitations_allowed: bool = True,
        creators: Iterable[str] = (),
    ) -> Category:
        """Create a category (a space only the service account and Creators change)."""
        body = self.http.request(
            "POST",
            f"{CLIENT}/createRoom",
            json={
                "name": name,
                "topic": description,
                "preset": "private_chat",
                "creation_content": {"type": SPACE_TYPE},
                "initial_state": [
                    _state_event(
                        CATEGORY_SETTINGS_EVENT, {"invitations_allowed": invitations_allowed}
                    ),
                    _state_event("m.room.guest_access", {"guest_access": "forbidden"}),
                ],
                "power_level_content_override": category_power_levels(creators=creators),
            },
        )
        return self.get_category(body["room_id"])

    def add_to_category_scope(self, category_id: str, user_ids: Iterable[str]) -> None:
        """Put people in the category's scope (joined to its space, so Open rooms admit them)."""
        for user_id in user_ids:
            self._add_member(category_id, user_id, invite=False)

    # --- rooms ------------------------------------------------------------------------

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
    ) -> Room:
        """Create a room in its category with its settings, Managers and Members."""
        category = self.get_category(settings.category_id)
        body = self.http.request(
            "POST",
            f"{CLIENT}/createRoom",
            json={
                "name": settings.name,
                "topic": settings.description,
                "preset": "private_chat",
                "initial_state": [
                    _state_event(
                        "m.room.join_rules", join_rules_for(settings.privacy, category.id)
                    ),
                    _state_event(
                        "m.space.parent",
                        {"via": [self.server_name], "canonical": True},
                        state_key=category.id,
                    ),
                    _state_event(ROOM_SETTINGS_EVENT, _portal_settings(settings, disabled=False)),
                    _state_event("m.room.guest_access", {"guest_access": "forbidden"}),
                    _state_event("m.room.history_visibility", {"history_visibility": "shared"}),
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

    def delete_room(self, room_id: str, *, timeout: float = 60.0) -> None:
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
        body = self.http.request(
            "DELETE",
            f"{ADMIN}/v2/rooms/{segment(room_id)}",
            json={"purge": True, "block": False, "message": "This room was deleted."},
        )
        delete_id = body.get("delete_id")
        deadline = time.monotonic() + timeout
        while isinstance(delete_id, str) and time.monotonic() < deadline:
            status = self.http.request(
                "GET", f"{ADMIN}/v2/rooms/delete_status/{segment(delete_id)}"
            ).get("status")
            if status == "complete":
                return
            if status == "failed":
                raise ChatBackendError("The chat server could not delete the room.")
            time.sleep(0.2)
        raise ChatServerUnavailable("The chat server is still deleting the room; check again soon.")

    def list_rooms(self) -> list[Room]:
        """Every room in every category, read in parallel."""
        room_ids = {room_id for c in self.list_categories() for room_id in c.room_ids}
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = pool.map(self._room_or_none, sorted(room_ids))
        return [room for room in found if room is not None]

    def _room_or_none(self, room_id: str) -> Room | None:
        try:
            return self.get_room(room_id)
        except ChatNotFound:
            return None  # listed in a category, but deleted or not a portal room

    def update_room(self, room_id: str, settings: RoomSettings) -> Room:
        """Change a room's name, description, privacy, auditorium, invitations or category."""
        state = self._state(room_id)
        current = room_from_state(state, service_user=self.service_user)
        old = current.settings
        if settings.category_id != old.category_id:
            self.get_category(settings.category_id)
            self._put_state(room_id, "m.space.parent", {}, old.category_id)
            self._put_state(
                room_id,
                "m.space.parent",
                {"via": [self.server_name], "canonical": True},
                settings.category_id,
            )
            self._put_state(
                settings.category_id, "m.space.child", {"via": [self.server_name]}, room_id
            )
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
            self._set_levels(state, events_default=PRESENTER_LEVEL if settings.auditorium else 0)
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

    def add_to_role(self, room_id: str, role: Role, user_ids: Iterable[str]) -> None:
        """Give people a role in a room."""
        user_ids = list(user_ids)
        state = self._state(room_id)
        if role is Role.MEMBER:
            room = room_from_state(state, service_user=self.service_user)
            category = self.get_category(room.settings.category_id)
            invite = self._invites(room.settings.invitations, category)
            for user_id in user_ids:
                self._add_member(room_id, user_id, invite=invite)
            return
        level = MANAGER_LEVEL if role is Role.MANAGER else PRESENTER_LEVEL
        current = state.user_levels()
        # Never lower anyone: a Manager already posts wherever a Presenter may.
        raise_to = {u: level for u in user_ids if current.get(u, 0) < level}
        if raise_to:
            self._set_levels(state, users=raise_to)

    def remove_from_role(self, room_id: str, role: Role, user_ids: Iterable[str]) -> None:
        """Take a role away from people in a room."""
        state = self._state(room_id)
        if role is Role.MEMBER:
            present = state.memberships("join", "invite", "knock")
            for user_id in user_ids:
                if user_id in present:
                    self.http.request(
                        "POST",
                        f"{CLIENT}/rooms/{segment(room_id)}/kick",
                        json={"user_id": user_id, "reason": "Removed from the room's members"},
                    )
            return
        level = MANAGER_LEVEL if role is Role.MANAGER else PRESENTER_LEVEL
        levels = state.user_levels()
        drop = {u: None for u in user_ids if u in levels and _role_level(levels[u]) == level}
        if drop:
            self._set_levels(state, users=drop)

    # --- helpers ----------------------------------------------------------------------

    def _invites(self, invitations: Invitations, category: Category) -> bool:
        return invitations is Invitations.INHERIT and category.invitations_allowed

    def _add_member(self, room_id: str, user_id: str, *, invite: bool) -> None:
        # The admin join API works for people on this server only; others are invited.
        if invite or not user_id.endswith(f":{self.server_name}"):
            self.http.request(
                "POST", f"{CLIENT}/rooms/{segment(room_id)}/invite", json={"user_id": user_id}
            )
        else:
            self.http.request(
                "POST", f"{ADMIN}/v1/join/{segment(room_id)}", json={"user_id": user_id}
            )

    def _put_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> None:
        self.http.request(
            "PUT",
            f"{CLIENT}/rooms/{segment(room_id)}/state/{segment(event_type)}/{segment(state_key)}",
            json=content,
        )

    def _set_levels(
        self,
        state: RoomState,
        *,
        users: dict[str, int | None] | None = None,
        events_default: int | None = None,
    ) -> None:
        """Change the power levels, keeping everything not named (None removes a user)."""
        content = dict(state.power_levels)
        levels = dict(content.get("users", {}))
        for user_id, level in (users or {}).items():
            if level is None:
                levels.pop(user_id, None)
            else:
                levels[user_id] = level
        content["users"] = levels
        if events_default is not None:
            content["events_default"] = events_default
        self._put_state(state.room_id, "m.room.power_levels", content)


def _role_level(level: int) -> int:
    return MANAGER_LEVEL if level >= MANAGER_LEVEL else PRESENTER_LEVEL


def _state_event(event_type: str, content: dict[str, Any], state_key: str = "") -> dict[str, Any]:
    return {"type": event_type, "state_key": state_key, "content": content}


def _portal_settings(settings: RoomSettings, disabled: bool) -> dict[str, Any]:
    return {
        "invitations": str(settings.invitations),
        "auditorium": settings.auditorium,
        "disabled": disabled,
    }


def _principal(body: dict[str, Any]) -> Principal:
    user_id = body.get("name") or body.get("user_id")
    if not isinstance(user_id, str):
        raise ChatBackendError("The chat server sent a person the portal cannot read.")
    return Principal(
        id=user_id,
        display_name=str(body.get("displayname") or ""),
        deactivated=bool(body.get("deactivated", False)),
    )
