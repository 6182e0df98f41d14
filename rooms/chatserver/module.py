"""The portal's Synapse module: the homeserver itself refuses what the rules forbid.

Loaded by the homeserver from its configuration (docs/deploy.md):

    modules:
      - module: rooms.chatserver.module.PortalRules
        config:
          service_user: "@roomportal:example.org"

It registers Synapse's spam-checker callbacks, which Synapse calls before a local user's
change is made, and refuses with an error (403, M_FORBIDDEN) whose text names the rule and
where to go instead; the chat client shows that text:

- `check_event_for_spam`: every event but memberships. Messages pass at once, but for
  a file, an image, audio, video or a sticker, refused where the room's category turned
  file upload off (the room's settings event says so, read by key); a state event in a
  governed room or category is checked with `rooms.chatserver.policy.refusal`, and so is
  a redaction of state the rules read, as the change it would make (a redacted link to
  the category is an emptied one);
- `user_may_invite`, `user_may_join_room`: an invitation or a join, checked the same way;
- `user_may_create_room`: a chat user's new room linked to a category from its first
  moment, and the upgrade of a governed room (its successor names it as predecessor).

Why these and not the third-party-rules `check_event_allowed`: Synapse loads the whole
state of the room for every event, messages included, once any module registers that
callback, which made every message in a room of thousands slower. Two things pass these
callbacks, and the sync worker is the line that holds there: a knock (Synapse has no
spam check for knocks) from outside the scope is turned away, and the homeserver's own
administrators, whom Synapse lets past joins and invitations, are put back like anyone.

What it decides from, never asking the portal:
- the room's current state, just the pieces the rules read (`policy.CHECKED_STATE`) and
  the memberships of the people an event touches or the power levels name;
- whether a space is a category (its creator is the service account): read once per
  space from the homeserver's state, kept in memory (a room's creator never changes);
- whether a person is in a category's scope: invited to or joined the category's space.
  A table in memory of each category's people (the homeserver's own, from its database)
  is loaded at start and every minute, and kept current every second from the stream of
  state changes, so a removal from a scope counts within a second; someone the table does
  not hold (put in the scope since, a category made since, a person of another homeserver)
  is read from the homeserver's current state for just that person, so an addition counts
  at once and a refusal is never decided from the table;
- which room holds a name: a table in memory of every governed room's name, loaded from
  the homeserver's database at start and every minute after, kept current by the events
  this process sees, and read afresh when a new name is not in it (at most once a
  second); a hit is checked against the holder's current state before it refuses.

What it does beside deciding: a removed message (redacted, by the portal or by anyone)
is taken out of the homeserver's full-text search index within seconds. Synapse keeps it
there, text and all, and its search reads at most ten times a page of matches, dropping
the removed ones after: a room whose newest matches were removed looked empty to the next
search, and a removed message's words stayed on the homeserver's disk.

Each refusal is also sent, as an `org.roomportal.refusal` event, into a private room of
the service account's (alias `#roomportal-refusals`), so the portal's sync worker audits
it with the chat user and the rule. `GET /_synapse/client/roomportal/rules` says that the
module runs (the portal's `manage.py check` asks it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from synapse.api.errors import Codes, SynapseError
from synapse.events import EventBase
from synapse.events.utils import prune_event
from synapse.module_api import ModuleApi
from synapse.types import StateMap
from twisted.web.resource import Resource
from twisted.web.server import Request

from rooms.chatserver.policy import (
    CHECKED_STATE,
    REFUSAL_EVENT,
    REFUSALS_ALIAS,
    ROOM_SETTINGS_EVENT,
    SPACE_TYPE,
    UPGRADE,
    Breach,
    Governed,
    Rule,
    carries_file,
    file_uploads,
    name_key,
    refusal,
    touched,
    upload_refusal,
)

log = logging.getLogger(__name__)

VERSION = 1
STATUS_PATH = "/_synapse/client/roomportal/rules"  # rooms.backend.matrix.base asks it
RELOAD_MS = 60_000
FRESH_MS = 1_000
SCOPE_FOLLOW_MS = 1_000
UNINDEX_MS = 2_000
UNINDEX_BATCH = 500
UNINDEX_SETTLED_MS = 2_000  # a removal this recent may still be being written
REPORT_TRIES = 5
NOT_SPAM: Literal["NOT_SPAM"] = "NOT_SPAM"
INVITE = {"membership": "invite"}
JOIN = {"membership": "join"}


class Status(Resource):
    """Says that the module runs, for which service account, and what its tables hold
    (how many names, how many people in each category's scope)."""

    isLeaf = True

    def __init__(self, rules: PortalRules) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted's Resource is untyped
        self.rules = rules

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps(
            {
                "module": "roomportal",
                "version": VERSION,
                "service_user": self.rules.service_user,
                "names": len(self.rules.names),
                "scopes": {space: len(people) for space, people in self.rules.scopes.items()},
            }
        ).encode()


Decision = Literal["NOT_SPAM"] | tuple[Codes, dict[str, str]]


class PortalRules:
    def __init__(self, config: Mapping[str, Any], api: ModuleApi) -> None:
        self.api = api
        self.service_user = str(config["service_user"])
        self.spaces: dict[str, tuple[bool, str]] = {}  # space ID: (a category?, its name)
        # Room ID: the spaces it links to, and when that was read (`links_of`).
        self.links: dict[str, tuple[frozenset[str], int]] = {}
        self.names: dict[str, str] = {}  # name key: the room holding it
        # Category space ID: the homeserver's own people invited to or joined it, and the
        # position in the stream of state changes they are read at (`load_scopes`).
        self.scopes: dict[str, set[str]] = {}
        self.scopes_at = 0
        self.unindexed_to = 0  # removals received up to this time are out of the index
        self.refusals_room = ""
        self.loaded_at = 0
        api.register_spam_checker_callbacks(
            check_event_for_spam=self.check_event_for_spam,
            user_may_invite=self.user_may_invite,
            user_may_join_room=self.user_may_join_room,
            user_may_create_room=self.user_may_create_room,
        )
        api.register_web_resource(STATUS_PATH, Status(self))
        api.looping_background_call(
            self.load_names, RELOAD_MS, desc="roomportal_names", run_on_all_instances=True
        )
        api.delayed_background_call(0, self.load_names, desc="roomportal_names_first")
        api.looping_background_call(
            self.load_scopes, RELOAD_MS, desc="roomportal_scopes", run_on_all_instances=True
        )
        api.looping_background_call(
            self.follow_scopes,
            SCOPE_FOLLOW_MS,
            desc="roomportal_scopes_followed",
            run_on_all_instances=True,
        )
        api.delayed_background_call(0, self.load_scopes, desc="roomportal_scopes_first")
        api.looping_background_call(self.unindex_removed, UNINDEX_MS, desc="roomportal_unindex")

    @staticmethod
    def parse_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
        if not isinstance(config.get("service_user"), str):
            raise ValueError("The room portal's module needs `service_user`.")
        return config

    # The callbacks.

    async def check_event_for_spam(self, event: EventBase) -> Decision:
        """Every event but memberships, before it is sent: a state event is checked, and
        a redaction as the change to the state it would make."""
        if event.type == "m.room.redaction" and event.sender != self.service_user:
            return await self.redaction(event)
        if not event.is_state():
            if carries_file(event.type, event.content) and event.sender != self.service_user:
                return await self.upload(event)
            return NOT_SPAM
        if event.sender == self.service_user:
            await self.noted(event)
            return NOT_SPAM
        return await self.decide(
            event.room_id, event.sender, event.type, event.state_key, dict(event.content)
        )

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> Decision:
        return await self.decide(room_id, inviter, "m.room.member", invitee, INVITE)

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> Decision:
        return await self.decide(room_id, user_id, "m.room.member", user_id, JOIN)

    async def user_may_create_room(self, user_id: str, config: Mapping[str, Any]) -> Decision:
        """A new room linked to a category from its first moment, or a governed room's
        upgrade (its successor's creation names it as predecessor)."""
        if user_id == self.service_user:
            return NOT_SPAM
        creation = config.get("creation_content")
        predecessor = creation.get("predecessor") if isinstance(creation, Mapping) else None
        old_room = predecessor.get("room_id") if isinstance(predecessor, Mapping) else None
        if isinstance(old_room, str):
            room = await self.governed(old_room, user_id, "m.room.tombstone", "", {})
            if room is not None:
                return self.refuse(room, user_id, "m.room.tombstone", "", UPGRADE)
        initial = config.get("initial_state")
        for item in initial if isinstance(initial, list) else []:
            key = item.get("state_key") if isinstance(item, Mapping) else None
            if not isinstance(key, str) or item.get("type") != "m.space.parent":
                continue
            is_category, name = await self.space(key)
            if is_category and item.get("content"):
                category = Governed(key, {}, self.service_user, key, name, in_scope=lambda u: True)
                breach = Breach(
                    Rule.CATEGORY,
                    ("m.space.parent", key),
                    f"only the room portal links rooms to the category “{name}”; ask for a "
                    "room there in the portal.",
                )
                return self.refuse(category, user_id, "m.space.parent", key, breach)
        return NOT_SPAM

    async def upload(self, event: EventBase) -> Decision:
        """A file sent to a room whose category turned file upload off is refused (only
        the portal writes the room's settings event, so one that says so is governed)."""
        room_id = event.room_id
        state = await self.read_state(room_id, [(ROOM_SETTINGS_EVENT, "")])
        settings = state.get((ROOM_SETTINGS_EVENT, ""))
        if settings is None or file_uploads(settings.content):
            return NOT_SPAM
        category_id, category_name = "", ""
        for _, parent in await self.links_of(room_id):
            is_category, name = await self.space(parent)
            if is_category:
                category_id, category_name = parent, name
                break
        room = Governed(
            room_id, {}, self.service_user, category_id, category_name, in_scope=lambda u: True
        )
        return self.refuse(room, event.sender, event.type, "", upload_refusal(category_name))

    async def redaction(self, event: EventBase) -> Decision:
        """Redacting a piece of state the rules read empties what redaction does not keep
        (a link to the category, a name, the portal's settings): checked as that change."""
        target = event.redacts
        state = await self.read_state(event.room_id, [(kind, None) for kind in CHECKED_STATE])
        hit = next((ev for ev in state.values() if ev.event_id == target), None)
        if hit is None or hit.state_key is None:
            return NOT_SPAM  # a message, or state the rules do not read
        kept = dict(prune_event(hit).content)
        return await self.decide(event.room_id, event.sender, hit.type, hit.state_key, kept)

    async def decide(
        self, room_id: str, sender: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> Decision:
        if sender == self.service_user:
            return NOT_SPAM
        room = await self.governed(room_id, sender, event_type, state_key, content)
        if room is None:
            return NOT_SPAM
        breach = refusal(
            room, event_type=event_type, state_key=state_key, content=content, sender=sender
        )
        if breach is None:
            self.note(room, event_type, state_key, content)
            if event_type == "m.space.parent":
                self.links.pop(room_id, None)  # read afresh at the next check
            return NOT_SPAM
        return self.refuse(room, sender, event_type, state_key, breach)

    def refuse(
        self, room: Governed, sender: str, event_type: str, state_key: str, breach: Breach
    ) -> Decision:
        """Refused with the rule's words: Synapse answers 403 M_FORBIDDEN with them."""
        self.report(room, sender, event_type, state_key, breach)
        return Codes.FORBIDDEN, {"error": breach.message}

    async def governed(
        self, room_id: str, sender: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> Governed | None:
        """The room or category the portal governs, with what a check of this event needs:
        the settings the rules read, the memberships of the people it touches and of
        those holding levels, their scope, and the holder of the name it gives."""
        # The settings and the links known to be there, in one read.
        known_links = self.known_links(room_id)
        settings = [(kind, "") for kind in CHECKED_STATE if kind != "m.space.parent"]
        settings += [("m.space.parent", parent) for parent in sorted(known_links or ())]
        state = dict(await self.read_state(room_id, settings))
        create = state.get(("m.room.create", ""))
        if create is None:
            return None
        creators = frozenset([create.sender, *create.content.get("additional_creators", [])])
        contents = {
            key: dict(ev.content) for key, ev in state.items() if key[0] != "m.space.parent"
        }
        if create.content.get("type") == SPACE_TYPE:
            if create.sender != self.service_user:
                return None
            name = str(contents.get(("m.room.name", ""), {}).get("name", ""))
            return Governed(
                room_id, contents, self.service_user, room_id, name,
                in_scope=lambda user_id: True, creators=creators, is_space=True,
            )  # fmt: skip
        links = await self.links_of(room_id, state if known_links is not None else None)
        contents |= {key: dict(ev.content) for key, ev in links.items()}
        parents = [key for (kind, key), c in contents.items() if kind == "m.space.parent" and c]
        if event_type == "m.space.parent" and state_key:
            parents.append(state_key)  # linking a room to a category is checked too
        category_id, category_name = "", ""
        for parent in parents:
            is_category, name = await self.space(parent)
            if is_category:
                category_id, category_name = parent, name
                break
        if not category_id:
            return None
        room = Governed(
            room_id, contents, self.service_user, category_id, category_name,
            in_scope=lambda user_id: True, creators=creators,
        )  # fmt: skip
        people = touched(room, event_type, state_key, content)
        named = content.get("users") if event_type == "m.room.power_levels" else None
        held = {*room.user_levels(), *(named if isinstance(named, Mapping) else {})}
        # An invitation is decided by the invitee's scope alone (Synapse itself refuses
        # inviting someone already in): their membership here is not read.
        invited = content.get("membership") == "invite" and event_type == "m.room.member"
        read = (people - {state_key} if invited else people) | held
        members = await self.read_state(
            room_id, [("m.room.member", user_id) for user_id in sorted(read)]
        )
        scope = {person: await self.in_scope(category_id, person) for person in people}
        key = holder_key(event_type, state_key, content)
        holder = await self.holder_of(key, room_id)
        return replace(
            room,
            state=contents | {key: dict(ev.content) for key, ev in members.items()},
            in_scope=lambda user_id: scope.get(user_id, True),
            name_holder=lambda wanted: holder if wanted == key else None,
        )

    # What it reads from the homeserver.

    async def read_state(
        self, room_id: str, wanted: Sequence[tuple[str, str | None]]
    ) -> StateMap[EventBase]:
        """Just these pieces of a room's current state (never every membership). Asked by
        type and state key, the homeserver answers from its caches; a type with any state
        key (None) is a database query."""
        return await self.api.get_room_state(room_id, wanted) if wanted else {}

    def known_links(self, room_id: str) -> frozenset[str] | None:
        """The spaces the room linked to when last read, if that was in the last minute
        (None: they are to be read whole)."""
        known, read_at = self.links.get(room_id, (frozenset(), 0))
        return known if self.api.get_current_time_msec() - read_at < RELOAD_MS else None

    async def links_of(
        self, room_id: str, read: StateMap[EventBase] | None = None
    ) -> StateMap[EventBase]:
        """The room's links to spaces (`m.space.parent`, with content) as they are now.
        The links last found are read by their keys, from the homeserver's caches (or
        taken from `read`, the room's state read with those keys, `known_links`); a room
        not seen in the last minute, or whose links are no longer those, is read whole
        (one query). The portal's own links pass through `noted` in this process; one
        made in another homeserver process counts here within a minute (the sync worker
        answers a breach in that minute)."""
        known = self.known_links(room_id)
        if known is not None:
            if not known:
                return {}
            if read is None:
                read = await self.read_state(room_id, [("m.space.parent", p) for p in known])
            found = {k: ev for k, ev in read.items() if k[0] == "m.space.parent" and ev.content}
            if {key for _, key in found} == known:
                return found
        now = self.api.get_current_time_msec()
        state = await self.read_state(room_id, [("m.space.parent", None)])
        live = {key: ev for key, ev in state.items() if ev.content}
        self.links[room_id] = (frozenset(key for _, key in live), now)
        return live

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
        """In the category's scope: invited to or joined its space (and so not banned).
        Found in the table, or read for just this person when the table does not hold
        them (a table a second behind never refuses someone just put in the scope)."""
        if user_id in self.scopes.get(category_id, ()):
            return True
        state = await self.api.get_room_state(category_id, [("m.room.member", user_id)])
        member = state.get(("m.room.member", user_id))
        return member is not None and member.content.get("membership") in ("join", "invite")

    async def holder_of(self, key: str | None, room_id: str) -> str | None:
        """The governed room that holds this name key, checked against that room's
        current state (the table may be a minute behind)."""
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

    async def load_scopes(self) -> None:
        """Every category's people (the homeserver's own, invited or joined), from the
        homeserver's database, and the position in its stream of state changes they were
        read at (taken first: a change made meanwhile is read again by `follow_scopes`)."""

        def query(txn: Any) -> tuple[int, dict[str, set[str]]]:
            txn.execute("SELECT COALESCE(MAX(stream_id), 0) FROM current_state_delta_stream")
            (position,) = txn.fetchone()
            txn.execute("SELECT room_id FROM rooms WHERE creator = ?", (self.service_user,))
            ours = {room_id for (room_id,) in txn.fetchall()}
            txn.execute("SELECT room_id FROM room_stats_state WHERE room_type = ?", (SPACE_TYPE,))
            scopes: dict[str, set[str]] = {}
            for space_id in sorted(ours & {room_id for (room_id,) in txn.fetchall()}):
                scopes[space_id] = people_of(txn, space_id)
            return int(position), scopes

        self.scopes_at, self.scopes = await self.api.run_db_interaction("roomportal_scopes", query)

    async def follow_scopes(self) -> None:
        """The categories' memberships changed since the table was read, read again (one
        query when nothing changed), and the people of a category met since (a decision
        asked `space` about it) read whole."""
        spaces, since = self.scopes, self.scopes_at
        met = sorted(s for s, (category, _) in self.spaces.items() if category and s not in spaces)

        def query(txn: Any) -> tuple[int, dict[str, set[str]], dict[tuple[str, str], bool]]:
            txn.execute(
                "SELECT stream_id, room_id, state_key FROM current_state_delta_stream"
                " WHERE stream_id > ? AND type = ?",
                (since, "m.room.member"),
            )
            rows = txn.fetchall()
            position = max((int(stream_id) for stream_id, _, _ in rows), default=since)
            whole = {space_id: people_of(txn, space_id) for space_id in met}
            changed = {(room_id, user_id) for _, room_id, user_id in rows if room_id in spaces}
            now: dict[tuple[str, str], bool] = {}
            for room_id, user_id in sorted(changed):
                txn.execute(
                    "SELECT membership FROM local_current_membership"
                    " WHERE room_id = ? AND user_id = ?",
                    (room_id, user_id),
                )
                row = txn.fetchone()
                now[(room_id, user_id)] = row is not None and row[0] in ("join", "invite")
            return position, whole, now

        position, whole, now = await self.api.run_db_interaction(
            "roomportal_scopes_followed", query
        )
        if self.scopes is not spaces:
            return  # loaded whole meanwhile, at a later position
        for (space_id, user_id), present in now.items():
            if present:
                spaces[space_id].add(user_id)
            else:
                spaces[space_id].discard(user_id)
        spaces.update(whole)
        self.scopes_at = position

    async def unindex_removed(self) -> None:
        """Take the messages removed since the last round out of the full-text index
        (at most UNINDEX_BATCH a round; at start, every removal on record, in rounds)."""
        since, until = self.unindexed_to, self.api.get_current_time_msec() - UNINDEX_SETTLED_MS

        def query(txn: Any) -> int:
            txn.execute(
                "SELECT redacts, received_ts FROM redactions"
                " WHERE received_ts > ? AND received_ts <= ? ORDER BY received_ts LIMIT ?",
                (since, until, UNINDEX_BATCH),
            )
            rows = txn.fetchall()
            if not rows:
                return until
            removed = [event_id for event_id, _ in rows]
            marks = ", ".join("?" for _ in removed)
            txn.execute(f"DELETE FROM event_search WHERE event_id IN ({marks})", removed)
            # A full batch may stop part-way through one millisecond: on from before it.
            last = int(rows[-1][1])
            return last - 1 if len(rows) == UNINDEX_BATCH and last - 1 > since else last

        self.unindexed_to = await self.api.run_db_interaction("roomportal_unindex", query)

    # What it keeps and tells.

    async def noted(self, event: EventBase) -> None:
        """Keep the name table current with the portal's own changes: a rename, and a
        room linked to its category (a room the portal makes is named in its creation,
        which no callback sees, and linked right after)."""
        if event.type == "m.room.name" and event.state_key == "":
            self.note_name(event.room_id, event.content.get("name"))
        elif event.type in ("m.space.parent", "m.space.child") and event.content:
            room_id = event.room_id if event.type == "m.space.parent" else event.state_key
            self.links.pop(room_id, None)  # read afresh at the next check
            state = await self.read_state(room_id, [("m.room.name", "")])
            name = state.get(("m.room.name", ""))
            self.note_name(room_id, name.content.get("name") if name is not None else None)

    def note(
        self, room: Governed, event_type: str, state_key: str | None, content: dict[str, Any]
    ) -> None:
        """Keep the name table current with a chat user's change that passes."""
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

    def report(
        self, room: Governed, sender: str, event_type: str, state_key: str, breach: Breach
    ) -> None:
        """Tell the portal of a refusal, through the stream its sync worker follows."""
        log.info("Refused %s from %s in %s: %s", event_type, sender, room.room_id, breach)
        content = {
            "room_id": room.room_id,
            "category_id": room.category_id,
            "sender": sender,
            "type": event_type,
            "state_key": state_key,
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


def people_of(txn: Any, space_id: str) -> set[str]:
    """The homeserver's own people invited to or joined a space, from its database."""
    txn.execute(
        "SELECT user_id FROM local_current_membership"
        " WHERE room_id = ? AND membership IN ('join', 'invite')",
        (space_id,),
    )
    return {user_id for (user_id,) in txn.fetchall()}


def holder_key(event_type: str, state_key: str, content: Mapping[str, Any]) -> str | None:
    """The name key an event gives its room, if it names it."""
    if event_type == "m.room.name" and state_key == "":
        name = content.get("name")
        return name_key(name) if isinstance(name, str) else None
    return None
