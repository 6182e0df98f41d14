"""What is said in a room: counting its messages before a moment, and clearing them
(Synapse's purge history). Room state (joins, name, settings) is never touched."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

from rooms.backend.errors import ChatBackendError, ChatServerUnavailable
from rooms.backend.matrix.base import ADMIN, MatrixBase
from rooms.backend.matrix.transport import segment

# What a person calls a message: text, files, stickers, and what an encrypted room holds.
MESSAGE_TYPES = frozenset({"m.room.message", "m.sticker", "m.room.encrypted"})
COUNT_PAGE = 1000
COUNT_AT_MOST = 100_000


@dataclass(frozen=True)
class MessageCount:
    """Messages sent before a moment: how many, and whether counting stopped at the cap."""

    count: int
    more: bool = False


class ModerationOperations(MatrixBase):
    def count_messages_before(self, room_id: str, before_ms: int) -> MessageCount:
        """Count the room's messages sent before `before_ms` (milliseconds since the
        epoch), newest first through the admin messages API, up to COUNT_AT_MOST."""
        count, start = 0, ""
        path = f"{ADMIN}/v1/rooms/{segment(room_id)}/messages"
        while True:
            params = {"dir": "b", "limit": str(COUNT_PAGE)} | ({"from": start} if start else {})
            body = self._again(partial(self.http.request, "GET", path, params=params))
            chunk = body.get("chunk")
            if not isinstance(chunk, list):
                raise ChatBackendError("The chat server did not list the room's messages.")
            for event in chunk:
                if (
                    isinstance(event, dict)
                    and event.get("type") in MESSAGE_TYPES
                    and "state_key" not in event
                    and int(event.get("origin_server_ts", before_ms)) < before_ms
                ):
                    count += 1
                    if count >= COUNT_AT_MOST:
                        return MessageCount(count, more=True)
            end = body.get("end")
            if not chunk or not isinstance(end, str) or end == start:
                return MessageCount(count)
            start = end

    def clear_history(self, room_id: str, before_ms: int, *, timeout: float = 120.0) -> None:
        """Delete every message sent in the room before `before_ms` (the server keeps the
        room's last event whatever its age), and wait until the server is done. Safe to
        repeat: clearing what is already cleared removes nothing more."""
        body = self.http.request(
            "POST",
            f"{ADMIN}/v1/purge_history/{segment(room_id)}",
            json={"delete_local_events": True, "purge_up_to_ts": before_ms},
        )
        purge_id = body.get("purge_id")
        if not isinstance(purge_id, str):
            raise ChatBackendError("The chat server did not start clearing the history.")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self._again(
                lambda: self.http.request(
                    "GET", f"{ADMIN}/v1/purge_history_status/{segment(purge_id)}"
                )
            ).get("status")
            if status == "complete":
                return
            if status == "failed":
                raise ChatBackendError("The chat server could not clear the history.")
            time.sleep(0.2)
        raise ChatServerUnavailable(
            "The chat server is still clearing the history; check again soon."
        )
