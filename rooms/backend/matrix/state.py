"""How portal concepts are written into, and read back from, Matrix room state.

The mapping (docs/architecture.md §2): a category is a space; a room is a room whose canonical
m.space.parent is that space; privacy is the join rule; roles are membership and
power levels; the portal's own settings live in namespaced state events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rooms.backend.records import (
    AddIn,
    Category,
    ChatOptions,
    Invitations,
    Privacy,
    Room,
    RoomSettings,
)
from rooms.chatserver.policy import (  # the levels and events the rules are written in
    ADD_IN_PREFIX,
    CATEGORY_SETTINGS_EVENT,
    DISABLED_LEVEL,
    MANAGER_LEVEL,
    PRESENTER_LEVEL,
    ROOM_SETTINGS_EVENT,
    SPACE_TYPE,
    WIDGET_EVENT,
    chat_history,
    file_uploads,
    keep_days,
    managers_read,
)

# In a category's space: the level to add rooms to it (send m.space.child).
CREATOR_LEVEL = 50
FIRST_VERSION_WITH_CREATOR_POWER = 12

StateKey = tuple[str, str]

# Which fields of a record each kind of state maps to (an audit entry of a change made
# in a chat client names, for each sender, the fields their own changes made).
FIELDS_OF = {
    "m.room.name": ("name",),
    "m.room.topic": ("description",),
    "m.room.join_rules": ("privacy",),
    "m.space.parent": ("category_id",),
    "m.room.member": ("members", "asking_to_join", "in_scope", "denied"),
    "m.room.power_levels": ("managers", "presenters", "auditorium", "disabled", "creators"),
    "m.space.child": ("room_ids",),
    ROOM_SETTINGS_EVENT: ("invitations", "auditorium", "disabled"),
    CATEGORY_SETTINGS_EVENT: ("invitations_allowed",),
}


def fields_of(kind: str) -> tuple[str, ...]:
    """The record's fields this kind of state maps to (none: the index does not map it,
    an avatar or custom state)."""
    return FIELDS_OF.get(kind, ())


@dataclass(frozen=True)
class RoomState:
    """The current state of one Matrix room, keyed by (event type, state key)."""

    room_id: str
    events: dict[StateKey, dict[str, Any]]
    # From room version 12 on, the room's creator is the sender of m.room.create.
    create_sender: str = ""

    @classmethod
    def from_events(cls, room_id: str, events: Iterable[dict[str, Any]]) -> RoomState:
        state, create_sender = {}, ""
        for event in events:
            if isinstance(event, dict) and "state_key" in event:
                content = event.get("content")
                state[(event.get("type", ""), event["state_key"])] = (
                    content if isinstance(content, dict) else {}
                )
                if event.get("type") == "m.room.create":
                    create_sender = str(event.get("sender", ""))
        return cls(room_id, state, create_sender)

    def content(self, event_type: str, state_key: str = "") -> dict[str, Any]:
        return self.events.get((event_type, state_key), {})

    @property
    def name(self) -> str:
        """The room's name ("" for none)."""
        return self.text("m.room.name", "name")

    @property
    def encrypted(self) -> bool:
        """Whether the room encrypts its messages (the portal cannot read them then)."""
        return bool(self.content("m.room.encryption"))

    def of_type(self, event_type: str) -> dict[str, dict[str, Any]]:
        return {key: c for (kind, key), c in self.events.items() if kind == event_type and c}

    @property
    def is_space(self) -> bool:
        return self.content("m.room.create").get("type") == SPACE_TYPE

    @property
    def creators(self) -> set[str]:
        create = self.content("m.room.create")
        found = {u for u in create.get("additional_creators", []) if isinstance(u, str)}
        found.add(self.create_sender)
        if isinstance(create.get("creator"), str):  # room versions before 11
            found.add(create["creator"])
        return found - {""}

    @property
    def version(self) -> int:
        """The room version (0 for one that is not a number)."""
        value = str(self.content("m.room.create").get("room_version", "1"))
        return int(value) if value.isdigit() else 0

    @property
    def creators_have_power(self) -> bool:
        """From room version 12 on, creators hold unlimited power, outside the levels."""
        return self.version >= FIRST_VERSION_WITH_CREATOR_POWER

    def memberships(self, *kinds: str) -> frozenset[str]:
        return frozenset(
            user
            for user, c in self.of_type("m.room.member").items()
            if c.get("membership") in kinds
        )

    @property
    def power_levels(self) -> dict[str, Any]:
        return self.content("m.room.power_levels")

    def user_levels(self) -> dict[str, int]:
        users = self.power_levels.get("users", {})
        return {u: lvl for u, lvl in users.items() if isinstance(lvl, int)}

    def text(self, event_type: str, key: str) -> str:
        value = self.content(event_type).get(key, "")
        return value if isinstance(value, str) else ""

    def level(self, key: str, default: int) -> int:
        value = self.power_levels.get(key, default)
        return value if isinstance(value, int) else default


def options_from(settings: dict[str, Any]) -> ChatOptions:
    """The chat options a category's or a room's settings event holds."""
    return ChatOptions(
        chat_history=chat_history(settings),
        file_uploads=file_uploads(settings),
        keep_days=keep_days(settings),
        managers_read=managers_read(settings),
    )


def add_ins_of(state: RoomState) -> tuple[AddIn, ...]:
    """The add-ins the portal attached to a room: its widgets of the portal's keys."""
    found = [
        AddIn(id=key.removeprefix(ADD_IN_PREFIX), name=str(c.get("name", "")), url=str(c["url"]))
        for key, c in state.of_type(WIDGET_EVENT).items()
        if key.startswith(ADD_IN_PREFIX) and isinstance(c.get("url"), str)
    ]
    return tuple(sorted(found, key=lambda a: (a.name.casefold(), a.id)))


def widget_content(add_in: AddIn, *, creator: str) -> dict[str, Any]:
    """An add-in as the widget Element shows (a custom widget: a web page)."""
    key = ADD_IN_PREFIX + add_in.id
    return {
        "type": "m.custom",
        "url": add_in.url,
        "name": add_in.name,
        "id": key,
        "creatorUserId": creator,
        "data": {"title": add_in.name},
    }


def category_from_state(state: RoomState, *, service_user: str) -> Category:
    levels = state.power_levels
    child_level = levels.get("events", {}).get("m.space.child", state.level("state_default", 50))
    creators = {
        user
        for user, level in state.user_levels().items()
        if level >= child_level and user != service_user
    }
    settings = state.content(CATEGORY_SETTINGS_EVENT)
    return Category(
        id=state.room_id,
        name=state.name,
        description=state.text("m.room.topic", "topic"),
        invitations_allowed=bool(settings.get("invitations_allowed", True)),
        allowed_members=state.memberships("join", "invite") - {service_user},
        denied_members=state.memberships("ban"),
        creators=frozenset(creators),
        room_ids=tuple(sorted(state.of_type("m.space.child"))),
        options=options_from(settings),
    )


def category_of(state: RoomState) -> str:
    parents = state.of_type("m.space.parent")
    canonical = [key for key, c in parents.items() if c.get("canonical")]
    return (canonical or sorted(parents) or [""])[0]


def privacy_of(state: RoomState) -> Privacy:
    rule = state.content("m.room.join_rules").get("join_rule")
    if rule in ("restricted", "public"):
        return Privacy.OPEN
    if rule in ("knock", "knock_restricted"):
        return Privacy.CLOSED
    return Privacy.SECRET


def room_from_state(state: RoomState, *, service_user: str) -> Room:
    portal = state.content(ROOM_SETTINGS_EVENT)
    disabled = bool(portal.get("disabled", False))
    events_default = state.level("events_default", 0)
    # While disabled, posting is closed to all, so the auditorium flag is read from
    # the portal's own record of it instead of the power levels.
    auditorium = (
        bool(portal.get("auditorium", False)) if disabled else events_default >= PRESENTER_LEVEL
    )
    levels = {u: lvl for u, lvl in state.user_levels().items() if u != service_user}
    invitations = portal.get("invitations", Invitations.INHERIT)
    settings = RoomSettings(
        name=state.name,
        description=state.text("m.room.topic", "topic"),
        category_id=category_of(state),
        privacy=privacy_of(state),
        auditorium=auditorium,
        invitations=Invitations(invitations)
        if invitations in Invitations._value2member_map_
        else Invitations.INHERIT,
    )
    return Room(
        id=state.room_id,
        settings=settings,
        disabled=disabled,
        members=state.memberships("join", "invite") - {service_user},
        # A creator other than the service account (a room adopted from a chat client)
        # holds unlimited power: a Manager for good.
        managers=frozenset(u for u, lvl in levels.items() if lvl >= MANAGER_LEVEL)
        | (state.creators - {service_user} if state.creators_have_power else frozenset()),
        presenters=frozenset(
            u for u, lvl in levels.items() if PRESENTER_LEVEL <= lvl < MANAGER_LEVEL
        ),
        knocking=state.memberships("knock"),
        names={
            user: str(c.get("displayname") or "")
            for user, c in state.of_type("m.room.member").items()
            if c.get("displayname")
        },
        options=options_from(portal),
        add_ins=add_ins_of(state),
    )


def join_rules_for(privacy: Privacy, category_id: str) -> dict[str, Any]:
    if privacy is Privacy.OPEN:
        return {
            "join_rule": "restricted",
            "allow": [{"type": "m.room_membership", "room_id": category_id}],
        }
    return {"join_rule": "knock" if privacy is Privacy.CLOSED else "invite"}


def events_default_for(*, auditorium: bool, disabled: bool) -> int:
    """The level needed to post: nobody when disabled, Presenters in an auditorium."""
    if disabled:
        return DISABLED_LEVEL
    return PRESENTER_LEVEL if auditorium else 0


def room_power_levels(
    *, managers: Iterable[str], presenters: Iterable[str], auditorium: bool, disabled: bool
) -> dict[str, Any]:
    """Power levels for a room: only Managers change membership or settings."""
    users = dict.fromkeys(presenters, PRESENTER_LEVEL) | dict.fromkeys(managers, MANAGER_LEVEL)
    return {
        "users": users,
        "users_default": 0,
        "events_default": events_default_for(auditorium=auditorium, disabled=disabled),
        "state_default": MANAGER_LEVEL,
        "invite": MANAGER_LEVEL,
        "kick": MANAGER_LEVEL,
        "ban": MANAGER_LEVEL,
        "redact": MANAGER_LEVEL,
        "events": {
            "m.room.name": MANAGER_LEVEL,
            "m.room.topic": MANAGER_LEVEL,
            "m.room.power_levels": MANAGER_LEVEL,
            "m.room.join_rules": MANAGER_LEVEL,
            "m.room.history_visibility": MANAGER_LEVEL,
        },
    }


def category_power_levels(*, creators: Iterable[str]) -> dict[str, Any]:
    """Power levels for a category's space: Creators may add rooms, nobody else changes it."""
    return {
        "users": dict.fromkeys(creators, CREATOR_LEVEL),
        "users_default": 0,
        "events_default": MANAGER_LEVEL,
        "state_default": MANAGER_LEVEL,
        "invite": MANAGER_LEVEL,
        "kick": MANAGER_LEVEL,
        "ban": MANAGER_LEVEL,
        "redact": MANAGER_LEVEL,
        "events": {"m.space.child": CREATOR_LEVEL},
    }


def portal_record(state: RoomState, *, service_user: str) -> Room | Category | None:
    """What one room's or space's state is to the portal: a category (a space the service
    account created), a room (whose canonical parent is a category), or nothing."""
    if state.is_space and service_user in state.creators:
        return category_from_state(state, service_user=service_user)
    room_record = room_from_state(state, service_user=service_user)
    if not state.is_space and room_record.settings.category_id:
        return room_record
    return None
