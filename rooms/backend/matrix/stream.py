"""The service account's event stream (client-server `/sync`), read as typed batches.

The stream is filtered to state: message-like events are left out (the sync worker reads
state, and every piece of state counts, a chat user's change the index does not map
included). Redactions stay in: redacting a piece of state empties it without a new state
event, so a batch counts each redacted piece of current state as changed by whoever
redacted it. The refusals the portal's homeserver module reports arrive in the stream too
(its events in the service account's refusals room)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from rooms.backend.errors import ChatNotFound
from rooms.backend.matrix.base import CLIENT, MatrixBase
from rooms.chatserver.policy import REFUSAL_EVENT

MESSAGES = [
    "m.room.message",
    "m.room.encrypted",
    "m.reaction",
    "m.sticker",
    "m.call.*",
    "m.poll.*",
    "org.matrix.msc3381.poll.*",
]
NOTHING = {"not_types": ["*"]}
FILTER = json.dumps(
    {
        "presence": NOTHING,
        "account_data": NOTHING,
        "room": {
            "timeline": {"not_types": MESSAGES, "limit": 100},
            "state": {"not_types": MESSAGES, "lazy_load_members": False},
            "ephemeral": NOTHING,
            "account_data": NOTHING,
            "include_leave": True,
        },
    },
    separators=(",", ":"),
)
# Only the position: no room at all.
POSITION_ONLY = json.dumps(
    {"presence": NOTHING, "account_data": NOTHING, "room": {"rooms": []}}, separators=(",", ":")
)

StateKey = tuple[str, str]  # a piece of a room's state: its kind and its key


@dataclass
class StreamBatch:
    """One answer of the stream: each room that changed, with each piece of state a chat
    user (anyone but the service account) changed in it and who did, last (a piece they
    redacted counted as changed by them); the refusals the homeserver's module reported;
    and where the stream goes on from."""

    next_batch: str
    rooms: dict[str, dict[StateKey, str]] = field(default_factory=dict)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    redactions: dict[str, dict[str, str]] = field(default_factory=dict)


class StreamOperations(MatrixBase):
    """The event stream, as the service account."""

    def stream_position(self) -> str:
        """The stream's current position, without any room in it. The filter carries a
        fresh nonce: Synapse answers the same initial sync from a cache for minutes,
        which would hand out a position from before events the index already has."""
        nonce = json.dumps({"org.roomportal.nonce": uuid.uuid4().hex})[1:-1]
        body = self._sync("", 0, POSITION_ONLY[:-1] + "," + nonce + "}")
        return str(body.get("next_batch", ""))

    def read_stream(self, *, since: str, timeout_ms: int) -> StreamBatch:
        """One long-poll from `since`: what changed, with redacted state resolved (one
        request per room with redactions, however many). ChatInvalid or ChatNotFound:
        the server does not know the position any more."""
        body = self._sync(since, timeout_ms, FILTER)
        batch = read_batch(body, service_user=self.service_user, since=since)
        for room_id, redacted in batch.redactions.items():
            try:
                current = self.current_state_ids(room_id)
            except ChatNotFound:
                continue
            for event_id, sender in redacted.items():
                if event_id in current:
                    batch.rooms.setdefault(room_id, {})[current[event_id]] = sender
        return batch

    def _sync(self, since: str, timeout_ms: int, filter_json: str) -> dict[str, Any]:
        params: dict[str, str | int] = {"timeout": timeout_ms, "filter": filter_json}
        if since:
            params["since"] = since
        return self.http.request(
            "GET", f"{CLIENT}/sync", params=params, timeout=timeout_ms / 1000 + 30
        )


def read_batch(body: dict[str, Any], *, service_user: str, since: str) -> StreamBatch:
    """A `/sync` answer as a batch (the redactions named, not yet resolved)."""
    batch = StreamBatch(next_batch=str(body.get("next_batch") or since))
    rooms = _mapping(body.get("rooms"))
    for section in ("join", "leave"):
        for room_id, room in _mapping(rooms.get(section)).items():
            if not isinstance(room, dict):
                continue
            events = [*_events(room.get("state")), *_events(room.get("timeline"))]
            batch.refusals += [
                e["content"]
                for e in events
                if e.get("type") == REFUSAL_EVENT
                and e.get("sender") == service_user
                and isinstance(e.get("content"), dict)
            ]
            redacted = {
                target: sender
                for e in events
                if e.get("type") == "m.room.redaction"
                and isinstance(sender := e.get("sender"), str)
                and sender != service_user
                and isinstance(target := _redacts(e), str)
            }
            if redacted:
                batch.redactions.setdefault(room_id, {}).update(redacted)
            state = [e for e in events if isinstance(e.get("state_key"), str)]
            if not state and section == "join":
                continue
            changed = batch.rooms.setdefault(room_id, {})
            for e in state:
                sender, key = e.get("sender"), (str(e.get("type", "")), e["state_key"])
                if not isinstance(sender, str) or not sender or sender == service_user:
                    continue
                # Who let someone in answers for it, not the person who then joined.
                if not (key[1] == sender and changed.get(key, sender) != sender):
                    changed[key] = sender
    return batch


def _redacts(event: dict[str, Any]) -> Any:
    """The event a redaction redacts: in its content from room version 11, at its top
    level before (Synapse sends both)."""
    content = _mapping(event.get("content"))
    return content.get("redacts", event.get("redacts"))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _events(part: Any) -> list[dict[str, Any]]:
    events = part.get("events") if isinstance(part, dict) else None
    return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []
