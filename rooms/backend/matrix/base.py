"""What every part of the Matrix client shares: the transport, the service account, and
reading and writing room state."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from rooms.backend.errors import ChatBackendError, ChatNotFound, ChatServerUnavailable
from rooms.backend.matrix.state import RoomState, portal_record
from rooms.backend.matrix.transport import MatrixTransport, segment
from rooms.backend.records import Category, Invitations, Room

CLIENT = "/_matrix/client/v3"
ADMIN = "/_synapse/admin"
RULES_MODULE_STATUS = "/_synapse/client/roomportal/rules"
PAGE_SIZE = 500
TRIES = 3  # of a step that is safe to repeat, while the server is unavailable


class MatrixBase:
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

    def rules_module(self) -> dict[str, Any] | None:
        """What the portal's module on the homeserver says of itself (None: it does not
        run there)."""
        try:
            return self.http.request("GET", RULES_MODULE_STATUS)
        except ChatNotFound:
            return None

    def _purge(self, room_id: str, message: str, *, timeout: float = 60.0) -> None:
        """Delete a room or space with its history, and wait until the server is done."""
        body = self.http.request(
            "DELETE",
            f"{ADMIN}/v2/rooms/{segment(room_id)}",
            json={"purge": True, "block": False, "message": message},
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
                raise ChatBackendError("The chat server could not delete it.")
            time.sleep(0.2)
        raise ChatServerUnavailable("The chat server is still deleting it; check again soon.")

    def read_state(self, room_id: str) -> RoomState:
        """A room's or space's whole current state (ChatNotFound when there is none)."""
        return self._state(room_id)

    def read(self, target_id: str) -> Room | Category | None:
        """One room or space as the portal's record (None: not the portal's)."""
        return portal_record(self._state(target_id), service_user=self.service_user)

    def joined_room_ids(self) -> list[str]:
        """Every room and space the service account is in: the portal's, and no others."""
        ids = self.http.request("GET", f"{CLIENT}/joined_rooms").get("joined_rooms")
        if not isinstance(ids, list):
            raise ChatBackendError("The chat server did not list the service account's rooms.")
        return [i for i in ids if isinstance(i, str)]

    def current_state_ids(self, room_id: str) -> dict[str, tuple[str, str]]:
        """The event ID of each piece of a room's current state, with its type and state
        key (one request, whatever the number of events asked about)."""
        body = self.http.request("GET", f"{ADMIN}/v1/rooms/{segment(room_id)}/state")
        events = body.get("state")
        if not isinstance(events, list):
            raise ChatBackendError("The chat server sent room state the portal cannot read.")
        return {
            e["event_id"]: (e["type"], e["state_key"])
            for e in events
            if isinstance(e, dict)
            and isinstance(e.get("event_id"), str)
            and isinstance(e.get("type"), str)
            and isinstance(e.get("state_key"), str)
        }

    def _state(self, room_id: str) -> RoomState:
        body = self.http.request("GET", f"{ADMIN}/v1/rooms/{segment(room_id)}/state")
        events = body.get("state")
        if not isinstance(events, list):
            raise ChatBackendError("The chat server sent room state the portal cannot read.")
        return RoomState.from_events(room_id, events)

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

    def _again(self, step: Callable[[], Any]) -> Any:
        """A step that is safe to repeat, tried again (at once) while the server is
        unavailable: a lost answer or a passing failure does not leave a change half-made."""
        for attempt in range(1, TRIES + 1):
            try:
                return step()
            except ChatServerUnavailable:
                if attempt == TRIES:
                    raise
        raise AssertionError("unreachable")

    def _settle(
        self, room_id: str, user_id: str, change: Callable[[], Any], settled: set[str]
    ) -> None:
        """Change someone's membership; a refusal is fine when their membership is already
        one of `settled` (an earlier try whose answer was lost did it)."""
        try:
            change()
        except ChatServerUnavailable:
            raise
        except ChatBackendError:
            try:
                membership = self.http.request(
                    "GET",
                    f"{CLIENT}/rooms/{segment(room_id)}/state/m.room.member/{segment(user_id)}",
                ).get("membership", "leave")
            except ChatNotFound:
                membership = "leave"
            if membership not in settled:
                raise

    def _ensure_member(self, room_id: str, user_id: str, *, invite: bool) -> None:
        """Invite or join someone unless they are already invited or joined."""
        self._settle(
            room_id,
            user_id,
            lambda: self._add_member(room_id, user_id, invite=invite),
            {"invite", "join"},
        )

    def _kick(self, room_id: str, user_id: str, reason: str) -> None:
        """Remove someone from a room or space; an invitation or a knock is withdrawn too."""
        self.http.request(
            "POST",
            f"{CLIENT}/rooms/{segment(room_id)}/kick",
            json={"user_id": user_id, "reason": reason},
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
        users: Mapping[str, int | None] | None = None,
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


def state_event(event_type: str, content: dict[str, Any], state_key: str = "") -> dict[str, Any]:
    return {"type": event_type, "state_key": state_key, "content": content}
