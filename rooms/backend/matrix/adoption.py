"""Adopting a space and its rooms made outside the portal (in a chat client, or by an
earlier tool): how each maps to a category and portal rooms, what does not fit, and
taking them over.

A category is a space the service account created, so an adopted space is not taken over
itself: a category of the same name, scope, denials and Creators is made, and the
space's rooms are moved into it (their canonical parent). The old space is left as it was.

The service account needs more power in a room than its Managers (to disable it, posting
is raised above them). In a room of version 12 or later its creator has unlimited power
and can give it that; the portal acts once as the creator (the server administrator's
log-in-as API), then the token is logged out. A room of an older version, or made by
someone on another server, cannot give that power: it is reported as impossible to adopt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.matrix.base import ADMIN, CLIENT, MatrixBase
from rooms.backend.matrix.state import RoomState, join_rules_for, room_power_levels
from rooms.backend.matrix.transport import segment
from rooms.backend.records import Invitations, Privacy
from rooms.chatserver.policy import (
    MANAGER_LEVEL,
    PRESENTER_LEVEL,
    ROOM_SETTINGS_EVENT,
    SERVICE_LEVEL,
    SPACE_TYPE,
)

log = logging.getLogger(__name__)
FOUND_AT_MOST = 50


@dataclass(frozen=True)
class RoomFit:
    """How one room of the space maps to a portal room."""

    room_id: str
    name: str
    description: str
    privacy: Privacy
    auditorium: bool
    managers: frozenset[str]
    presenters: frozenset[str]
    members: frozenset[str]
    outside_scope: frozenset[str]  # in the room, not in the space: put in the scope
    acting_as: str  # the room's creator on this server, who gives the service account power
    notes: tuple[str, ...]  # what changes or does not fit
    impossible: str  # why it cannot be adopted; "" when it can


@dataclass(frozen=True)
class SpaceFit:
    """How a space maps to a category, and its rooms to portal rooms."""

    space_id: str
    name: str
    description: str
    allowed: frozenset[str]
    denied: frozenset[str]
    creators: frozenset[str]
    rooms: tuple[RoomFit, ...]

    @property
    def adoptable(self) -> tuple[RoomFit, ...]:
        return tuple(room for room in self.rooms if not room.impossible)


class AdoptionOperations(MatrixBase):
    def find_adoptable(self, term: str) -> list[tuple[str, str, int, bool]]:
        """Spaces and rooms on the server whose name holds the term: (ID, name, members,
        whether it is a space)."""
        body = self.http.request(
            "GET",
            f"{ADMIN}/v1/rooms",
            params={"search_term": term, "limit": FOUND_AT_MOST},
        )
        return [
            (
                room["room_id"],
                room.get("name") or room["room_id"],
                room.get("joined_members", 0),
                room.get("room_type") == SPACE_TYPE,
            )
            for room in body.get("rooms", [])
            if isinstance(room, dict) and isinstance(room.get("room_id"), str)
        ]

    def room_fit(self, room_id: str, allowed: frozenset[str]) -> RoomFit:
        """How one room made outside the portal maps into a category with this scope."""
        state = self._state(room_id)
        if state.is_space:
            raise ChatNotFound("That is a space: adopt it as a category instead.")
        return self._room_fit(state, allowed)

    def adoption_fit(self, space_id: str) -> SpaceFit:
        """Read the space and its rooms (as the server administrator: the service account
        need not be in them) and map them."""
        space = self._state(space_id)
        if not space.is_space:
            raise ChatNotFound("That is a room, not a space: adopt the space it belongs to.")
        service = self.service_user
        allowed = space.memberships("join", "invite") - {service}
        levels = space.power_levels
        child_level = levels.get("events", {}).get(
            "m.space.child", space.level("state_default", 50)
        )
        creators = {u for u, lvl in space.user_levels().items() if lvl >= child_level}
        if space.creators_have_power:
            creators |= space.creators
        rooms = []
        for room_id in sorted(space.of_type("m.space.child")):
            try:
                rooms.append(self._room_fit(self._state(room_id), allowed))
            except ChatNotFound:
                continue  # a child the server does not have (gone, or on another server)
        return SpaceFit(
            space_id=space_id,
            name=space.name or space_id,
            description=space.text("m.room.topic", "topic"),
            allowed=frozenset(allowed),
            denied=space.memberships("ban"),
            creators=frozenset((creators - {service}) & allowed),
            rooms=tuple(rooms),
        )

    def _room_fit(self, state: RoomState, allowed: frozenset[str] | set[str]) -> RoomFit:
        service = self.service_user
        notes: list[str] = []
        rule = state.content("m.room.join_rules").get("join_rule")
        privacy = {
            "public": Privacy.OPEN,
            "restricted": Privacy.OPEN,
            "knock": Privacy.CLOSED,
            "knock_restricted": Privacy.CLOSED,
        }.get(str(rule), Privacy.SECRET)
        if rule == "public":
            notes.append(
                "Public on the chat server (anyone there could join): adopted as Open, "
                "which admits the category's scope only."
            )
        levels = {u: lvl for u, lvl in state.user_levels().items() if u != service}
        creator_power = state.creators_have_power
        creators = state.creators - {service}
        managers = {u for u, lvl in levels.items() if lvl >= MANAGER_LEVEL}
        if creator_power:
            managers |= creators
            for creator in sorted(creators):
                notes.append(
                    f"{creator} made the room and keeps unlimited power on the chat server: "
                    "they stay a Manager."
                )
        presenters = {u for u, lvl in levels.items() if PRESENTER_LEVEL <= lvl < MANAGER_LEVEL}
        members = state.memberships("join", "invite") - {service}
        outside = (members | managers | presenters) - allowed
        if outside:
            notes.append(
                f"Not in the space, so put in the category's scope: {', '.join(sorted(outside))}."
            )
        local = sorted(c for c in creators if c.endswith(f":{self.server_name}"))
        impossible = ""
        if service in state.creators:
            impossible = "It is a portal room already."
        elif state.content("m.room.create").get("type") == SPACE_TYPE:
            impossible = "It is a space inside the space: categories do not nest."
        elif not creator_power:
            impossible = (
                f"Room version {state.version or 'unknown'}: nobody in it can give the portal "
                "more power than its Managers, which it needs to disable the room. Upgrade the "
                "room to version 12 in a chat client, then adopt it."
            )
        elif not local:
            impossible = "Its creator is on another server: the portal cannot act for them."
        return RoomFit(
            room_id=state.room_id,
            name=state.name or state.room_id,
            description=state.text("m.room.topic", "topic"),
            privacy=privacy,
            auditorium=state.level("events_default", 0) >= PRESENTER_LEVEL,
            managers=frozenset(managers),
            presenters=frozenset(presenters),
            members=frozenset(members),
            outside_scope=frozenset(outside),
            acting_as=local[0] if local else "",
            notes=tuple(notes),
            impossible=impossible,
        )

    def adopt_room(self, fit: RoomFit, category_id: str) -> None:
        """Take the room over into the category: the service account is given power and
        joins (as the room's creator), then writes the portal's settings, the join rule
        of its privacy, the roles' power levels and its link to the category. Each step
        is safe to repeat."""
        service = self.service_user
        state = self._state(fit.room_id)
        if state.user_levels().get(service, 0) < SERVICE_LEVEL or service not in state.memberships(
            "join"
        ):
            self._as_person(fit.acting_as, lambda token: self._give_power(token, state, service))
            self._again(
                lambda: self.http.request("POST", f"{CLIENT}/join/{segment(fit.room_id)}", json={})
            )
        creators = state.creators
        levels = room_power_levels(
            managers=fit.managers - creators,  # a creator's power is not in the list
            presenters=fit.presenters,
            auditorium=fit.auditorium,
            disabled=False,
        )
        levels["users"][service] = SERVICE_LEVEL
        steps: list[tuple[str, dict[str, Any], str]] = [
            (
                ROOM_SETTINGS_EVENT,
                {
                    "invitations": str(Invitations.INHERIT),
                    "auditorium": fit.auditorium,
                    "disabled": False,
                },
                "",
            ),
            ("m.room.join_rules", join_rules_for(fit.privacy, category_id), ""),
            ("m.room.power_levels", levels, ""),
            ("m.space.parent", {"via": [self.server_name], "canonical": True}, category_id),
        ]
        for event_type, content, key in steps:
            self._again(lambda: self._put_state(fit.room_id, event_type, content, key))  # noqa: B023
        self._again(
            lambda: self._put_state(
                category_id, "m.space.child", {"via": [self.server_name]}, fit.room_id
            )
        )

    def _give_power(self, token: str, state: RoomState, service: str) -> None:
        """As the room's creator: the service account above every Manager, and invited."""
        content = dict(state.power_levels)
        content["users"] = dict(content.get("users", {})) | {service: SERVICE_LEVEL}
        room = segment(state.room_id)
        self.http.request(
            "PUT", f"{CLIENT}/rooms/{room}/state/m.room.power_levels/", json=content, token=token
        )
        if service not in state.memberships("join", "invite"):
            self.http.request(
                "POST", f"{CLIENT}/rooms/{room}/invite", json={"user_id": service}, token=token
            )

    def _as_person(self, user_id: str, act: Callable[[str], None]) -> None:
        """Act once as a person of this server (the administrator's log-in-as API) with a
        token that is logged out afterwards."""
        token = self.http.request(
            "POST", f"{ADMIN}/v1/users/{segment(user_id)}/login", json={}
        ).get("access_token")
        if not isinstance(token, str):
            raise ChatBackendError(f"The chat server did not let the portal act as {user_id}.")
        try:
            act(token)
        finally:
            try:
                self.http.request("POST", f"{CLIENT}/logout", json={}, token=token)
            except ChatBackendError:
                log.warning("Could not log out the token used to act as %s", user_id)
