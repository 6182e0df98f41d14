"""The portal's Synapse module: the homeserver itself refuses what the rules forbid.

Loaded by the homeserver from its configuration (docs/deploy.md):

    modules:
      - module: rooms.chatserver.module.PortalRules
        config:
          service_user: "@roomportal:example.org"

It registers one third-party-rules callback, `check_event_allowed`, which Synapse calls
for every event a local user sends. Messages pass at once. A state event in a governed
room or category is checked with `rooms.chatserver.policy.refusal` and, when it breaks a
rule, refused with an error (403, M_FORBIDDEN) whose text names the rule and where to go
instead; the chat client shows that text.

What it decides from, never asking the portal:
- the event's room state, which Synapse hands to the callback;
- whether a space is a category (its creator is the service account): read once per
  space from the homeserver's state, kept in memory (a room's creator never changes);
- whether a person is in a category's scope: their membership of the category's space,
  read from the homeserver's current state for just that person, when an event touches
  them (invites, joins, knocks, new Managers and Presenters);
- which room holds a name: a table in memory of every governed room's name, loaded from
  the homeserver's database at start and every minute after, kept current by the events
  this process sees, and read afresh when a new name is not in it (at most once a
  second); a hit is checked against the holder's current state before it refuses.

Each refusal is also sent, as an `org.roomportal.refusal` event, into a private room of
the service account's (alias `#roomportal-refusals`), so the portal's sync worker audits
it with the chat user and the rule. `GET /_synapse/client/roomportal/rules` says that the
module runs (the portal's `manage.py check` asks it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from synapse.api.errors import Codes, SynapseError
from synapse.events import EventBase
from synapse.module_api import ModuleApi
from synapse.types import StateMap
from twisted.web.resource import Resource
from twisted.web.server import Request

from rooms.chatserver.policy import (
    REFUSAL_EVENT,
    REFUSALS_ALIAS,
    SPACE_TYPE,
    Breach,
    Governed,
    name_key,
    refusal,
    touched,
)

log = logging.getLogger(__name__)

VERSION = 1
STATUS_PATH = "/_synapse/client/roomportal/rules"  # rooms.backend.matrix.base asks it
RELOAD_MS = 60_000
FRESH_MS = 1_000
REPORT_TRIES = 5


class Status(Resource):
    """Says that the module runs, and for which service account."""

    isLeaf = True

    def __init__(self, rules: PortalRules) -> None:
        super().__init__()
        self.rules = rules

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps(
            {
                "module": "roomportal",
                "version": VERSION,
                "service_user": self.rules.service_user,
                "names": len(self.rules.names),
            }
        ).encode()


class PortalRules:
    def __init__(self, config: Mapping[str, Any], api: ModuleApi) -> None:
        self.api = api
        self.service_user = str(config["service_user"])
        self.spaces: dict[str, tuple[bool, str]] = {}  # space ID: (a category?, its name)
        self.names: dict[str, str] = {}  # name key: the room holding it
        self.refusals_room = ""
        self.loaded_at = 0
        api.register_third_party_rules_callbacks(check_event_allowed=self.check_event_allowed)
        api.register_web_resource(STATUS_PATH, Status(self))
        api.looping_background_call(
            self.load_names, RELOAD_MS, desc="roomportal_names", run_on_all_instances=True
        )
        api.delayed_background_call(0, self.load_names, desc="roomportal_names_first")

    @staticmethod
    def parse_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
        if not isinstance(config.get("service_user"), str):
            raise ValueError("The room portal's module needs `service_user`.")
        return config

    # The callback.

    async def check_event_allowed(
        self, event: EventBase, state_events: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
        if not event.is_state():
            return True, None
        ours = event.sender == self.service_user
        if ours and event.type not in ("m.room.name", "m.space.parent"):
            return True, None  # nothing to check, nothing to note
        room = await self.governed(event, state_events, ask_scope=not ours)
        if room is None:
            if ours and event.type == "m.room.name" and event.state_key == "":
                # A room the portal makes is named in the same batch that links it to its
                # category, and may not look linked yet: its name is taken from now on
                # (an entry for a room that is not linked is dropped when it is checked).
                self.note_name(event.room_id, event.content.get("name"))
            return True, None
        content = dict(event.content)
        if ours:
            self.note(room, event.type, event.state_key, content)
            return True, None
        breach = refusal(
            room,
            event_type=event.type,
            state_key=event.state_key,
            content=content,
            sender=event.sender,
        )
        if breach is None:
            self.note(room, event.type, event.state_key, content)
            return True, None
        self.report(event, room, breach)
        raise SynapseError(403, breach.message, Codes.FORBIDDEN)

    async def governed(
        self, event: EventBase, state_events: StateMap[EventBase], *, ask_scope: bool = True
    ) -> Governed | None:
        """The room or category this event is in, if the portal governs it; with what a
        check of this event needs (the people it touches, the name it takes)."""
        state = {key: dict(ev.content) for key, ev in state_events.items()}
        create = state_events.get(("m.room.create", ""))
        creators = frozenset(
            [create.sender, *create.content.get("additional_creators", [])] if create else []
        )
        if create is not None and create.content.get("type") == SPACE_TYPE:
            if create.sender != self.service_user:
                return None
            name = str(state.get(("m.room.name", ""), {}).get("name", ""))
            return Governed(
                event.room_id, state, self.service_user, event.room_id, name,
                in_scope=lambda user_id: True, creators=creators, is_space=True,
            )  # fmt: skip
        parents = [key for (kind, key), c in state.items() if kind == "m.space.parent" and c]
        if event.type == "m.space.parent" and event.state_key:
            parents.append(event.state_key)  # linking a room to a category is checked too
        category_id, category_name = "", ""
        for parent in parents:
            is_category, name = await self.space(parent)
            if is_category:
                category_id, category_name = parent, name
                break
        if not category_id:
            return None
        room = Governed(
            event.room_id, state, self.service_user, category_id, category_name,
            in_scope=lambda user_id: True, creators=creators,
        )  # fmt: skip
        if not ask_scope:
            return room
        people = touched(room, event.type, event.state_key or "", dict(event.content))
        scope = {person: await self.in_scope(category_id, person) for person in people}
        holder, key = await self.holder_of(event, event.room_id), holder_key(event)
        return replace(
            room,
            in_scope=lambda user_id: scope.get(user_id, True),
            name_holder=lambda wanted: holder if wanted == key else None,
        )

    # What it reads from the homeserver.

    async def space(self, space_id: str) -> tuple[bool, str]:
        """Whether this space is one of the portal's categories, and its name."""
        known = self.spaces.get(space_id)
        if known is None:
            state = await self.api.get_room_state(
                space_id, [("m.room.create", ""), ("m.room.name", "")]
            )
            create = state.get(("m.room.create", ""))
            name = state.get(("m.room.name", ""))
            known = (
                create is not None
                and create.sender == self.service_user
                and create.content.get("type") == SPACE_TYPE,
                str(name.content.get("name", "")) if name is not None else "",
            )
            self.spaces[space_id] = known
        return known

    async def in_scope(self, category_id: str, user_id: str) -> bool:
        """In the category's scope: invited to or joined its space (and so not banned)."""
        state = await self.api.get_room_state(category_id, [("m.room.member", user_id)])
        member = state.get(("m.room.member", user_id))
        return member is not None and member.content.get("membership") in ("join", "invite")

    async def holder_of(self, event: EventBase, room_id: str) -> str | None:
        """The governed room that holds the name this event gives, checked against that
        room's current state (the table may be a minute behind)."""
        key = holder_key(event)
        if key is None:
            return None
        holder = self.names.get(key)
        if holder is None and self.api.get_current_time_msec() - self.loaded_at > FRESH_MS:
            # Renames are rare: a miss reads the table afresh (rooms made in another
            # process, or in a batch of a room's creation, are in it then).
            await self.load_names()
            holder = self.names.get(key)
        if holder is None or holder == room_id:
            return holder
        state = await self.api.get_room_state(
            holder, [("m.room.name", ""), ("m.space.parent", None)]
        )
        name = state.get(("m.room.name", ""))
        linked = any(kind == "m.space.parent" and ev.content for (kind, _), ev in state.items())
        if name is not None and linked and name_key(str(name.content.get("name", ""))) == key:
            return holder
        del self.names[key]
        return None

    async def load_names(self) -> None:
        """Every governed room's name, from the homeserver's database: rooms with an
        `m.space.parent` to a room the service account created (a link taken away since
        is found when the name is checked against the holder's current state)."""

        def query(txn: Any) -> dict[str, str]:
            # Three plain scans, joined here: the homeserver's one SQLite connection is
            # never held by a query whose plan could go quadratic.
            txn.execute("SELECT room_id FROM rooms WHERE creator = ?", (self.service_user,))
            ours = {room_id for (room_id,) in txn.fetchall()}
            txn.execute(
                "SELECT room_id, state_key FROM current_state_events WHERE type = ?",
                ("m.space.parent",),
            )
            governed = {room_id for room_id, parent in txn.fetchall() if parent in ours}
            txn.execute("SELECT room_id, name FROM room_stats_state WHERE name IS NOT NULL")
            return {
                name_key(name): room_id
                for room_id, name in txn.fetchall()
                if room_id in governed and isinstance(name, str) and name.strip()
            }

        self.names = await self.api.run_db_interaction("roomportal_names", query)
        self.loaded_at = self.api.get_current_time_msec()

    # What it keeps and tells.

    def note(self, room: Governed, event_type: str, state_key: str | None, content: dict) -> None:
        """Keep the name table current with an event that passes."""
        if room.is_space:
            return
        name = None
        if event_type == "m.room.name" and state_key == "":
            name = content.get("name")
        elif event_type == "m.space.parent":
            name = room.content("m.room.name").get("name")
        self.note_name(room.room_id, name)

    def note_name(self, room_id: str, name: Any) -> None:
        """This room holds this name now (and no other)."""
        if isinstance(name, str) and name.strip():
            for key in [k for k, holder in self.names.items() if holder == room_id]:
                del self.names[key]
            self.names[name_key(name)] = room_id

    def report(self, event: EventBase, room: Governed, breach: Breach) -> None:
        """Tell the portal of a refusal, through the stream its sync worker follows."""
        log.info("Refused %s from %s in %s: %s", event.type, event.sender, room.room_id, breach)
        content = {
            "room_id": room.room_id,
            "category_id": room.category_id,
            "sender": event.sender,
            "type": event.type,
            "state_key": event.state_key,
            "rule": str(breach.rule),
            "detail": breach.detail,
            "person": breach.person,
        }
        self.api.run_as_background_process("roomportal_refusal", self._send_report, content)

    async def _send_report(self, content: dict[str, Any]) -> None:
        event = {"type": REFUSAL_EVENT, "sender": self.service_user, "content": content}
        for attempt in range(1, REPORT_TRIES + 1):
            try:
                room_id = await self.ensure_refusals_room()
                await self.api.create_and_send_event_into_room(event | {"room_id": room_id})
                return
            except Exception:  # a lost report must not disturb the homeserver
                if attempt == REPORT_TRIES:
                    log.exception("The refusal could not be reported to the portal: %s", content)
                    return
                # The room may be being made by another report at this moment.
                await self.api.sleep(0.2 * attempt)

    async def ensure_refusals_room(self) -> str:
        """The service account's room for refusals, found by its alias or made with the
        first refusal (never at start: the service account may not exist yet); of several
        made at the same moment, the one holding the alias is used."""
        if self.refusals_room:
            return self.refusals_room
        alias = f"#{REFUSALS_ALIAS}:{self.api.server_name}"
        try:
            self.refusals_room, _ = await self.api.lookup_room_alias(alias)
        except SynapseError:
            try:
                self.refusals_room, _ = await self.api.create_room(
                    self.service_user,
                    {
                        "preset": "private_chat",
                        "room_alias_name": REFUSALS_ALIAS,
                        "name": "Room portal: refused changes",
                    },
                    ratelimit=False,
                )
            except SynapseError:  # made meanwhile by another report
                self.refusals_room, _ = await self.api.lookup_room_alias(alias)
        return self.refusals_room


def holder_key(event: EventBase) -> str | None:
    """The name key an event gives its room, if it names it."""
    if event.type == "m.room.name" and event.state_key == "":
        name = event.content.get("name")
        return name_key(name) if isinstance(name, str) else None
    return None
