"""What is said in a room: reading its messages (the admin messages API), removing chosen
ones (redaction, with a notice), counting them before a moment, and clearing them
(Synapse's purge history). Room state (joins, name, settings) is never touched."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, BinaryIO

from rooms.backend.errors import ChatBackendError, ChatNotFound, ChatServerUnavailable
from rooms.backend.matrix.base import ADMIN, CLIENT, MatrixBase
from rooms.backend.matrix.transport import segment

# What a person calls a message: text, files, stickers, and what an encrypted room holds.
MESSAGE_TYPES = frozenset({"m.room.message", "m.sticker", "m.room.encrypted"})
COUNT_PAGE = 1000
COUNT_AT_MOST = 100_000
READ_ROUNDS = 20
# Results asked of the homeserver's search at a time (`_search_page`).
SEARCH_WINDOW = 200
SEARCH_WINDOW_MOST = 1000
MEDIA = "/_matrix/client/v1/media"


Event = dict[str, Any]  # a Matrix event as the server gives it


@dataclass(frozen=True)
class RoomEvent:
    """A message (uploads included) or a change of someone's membership, as the server
    keeps it: what an export holds."""

    event_id: str
    sent_ms: int
    sender: str
    person: str = ""  # whose membership changed ("": a message)
    membership: str = ""  # join, leave, invite, ban, knock
    kind: str = ""  # a message's kind: m.text, m.image, … (m.sticker, m.room.encrypted)
    body: str = ""
    file: str | None = None  # the mxc:// address of its upload
    removed: bool = False

    @property
    def is_membership(self) -> bool:
        return bool(self.person)


def _room_event(event: Event) -> RoomEvent:
    content = event.get("content") if isinstance(event.get("content"), dict) else None
    content = content or {}
    event_id, sent_ms = str(event.get("event_id", "")), int(event.get("origin_server_ts", 0))
    sender = str(event.get("sender", ""))
    if event.get("type") == "m.room.member":
        return RoomEvent(
            event_id,
            sent_ms,
            sender,
            person=str(event.get("state_key", "")),
            membership=str(content.get("membership", "")),
        )
    body, url = content.get("body"), content.get("url")
    return RoomEvent(
        event_id,
        sent_ms,
        sender,
        kind=str(content.get("msgtype") or event.get("type", "")),
        body=body if isinstance(body, str) else "",
        file=url if isinstance(url, str) else None,
        removed=not content,
    )


@dataclass(frozen=True)
class MessageCount:
    """Messages sent before a moment: how many, and whether counting stopped at the cap."""

    count: int
    more: bool = False


@dataclass(frozen=True)
class Report:
    """A message a chat user reported from their client (a Matrix event report)."""

    id: int
    room_id: str
    event_id: str
    reporter: str
    sender: str
    reason: str
    received_ms: int
    body: str = ""  # the reported message's text, once read


def _report(item: dict[str, Any]) -> Report:
    return Report(
        id=int(item.get("id", 0)),
        room_id=str(item.get("room_id", "")),
        event_id=str(item.get("event_id", "")),
        reporter=str(item.get("user_id", "")),
        sender=str(item.get("sender", "")),
        reason=str(item.get("reason") or ""),
        received_ms=int(item.get("received_ts", 0)),
    )


class ModerationOperations(MatrixBase):
    def event_reports(self, room_id: str = "") -> list[Report]:
        """Open reports, newest first: of one room, or of every room."""
        found: list[Report] = []
        start = 0
        while True:
            params = {"dir": "b", "limit": "100", "from": str(start)} | (
                {"room_id": room_id} if room_id else {}
            )
            body = self._again(
                partial(self.http.request, "GET", f"{ADMIN}/v1/event_reports", params=params)
            )
            items = body.get("event_reports")
            if not isinstance(items, list):
                raise ChatBackendError("The chat server did not list the reported messages.")
            found += [_report(i) for i in items if isinstance(i, dict)]
            following = body.get("next_token")
            if not isinstance(following, int) or following <= start:
                return found
            start = following

    def event_report(self, report_id: int) -> Report:
        """One open report, with the reported message's text (ChatNotFound: closed)."""
        body = self._again(
            lambda: self.http.request("GET", f"{ADMIN}/v1/event_reports/{report_id}")
        )
        event = body.get("event_json")
        content = event.get("content") if isinstance(event, dict) else None
        text = content.get("body") if isinstance(content, dict) else None
        return replace(_report(body), body=text if isinstance(text, str) else "")

    def close_report(self, report_id: int) -> None:
        """Close a report (answered or dismissed); one already closed is fine."""
        with contextlib.suppress(ChatNotFound):
            self._again(
                lambda: self.http.request("DELETE", f"{ADMIN}/v1/event_reports/{report_id}")
            )

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

    def read_messages(
        self,
        room_id: str,
        *,
        start: str = "",
        senders: tuple[str, ...] = (),
        since_ms: int = 0,
        until_ms: int = 0,
        text: str = "",
        limit: int = 50,
        whole: bool = False,
    ) -> MessagePage:
        """A page of the room's messages, newest first, from `start` (a token of an
        earlier page) back, sent by `senders` (any when empty), between `since_ms` and
        `until_ms` (milliseconds; 0: unbounded), containing every word of `text` (whole
        words, in any order and letter case: the homeserver's full-text search, which
        reads only the messages that match, not the whole room)."""
        if text.strip():
            return self._search_page(
                room_id, text, start, senders, since_ms, until_ms, limit, whole=whole
            )
        path = f"{ADMIN}/v1/rooms/{segment(room_id)}/messages"
        wanted = {"types": sorted(MESSAGE_TYPES)} | ({"senders": list(senders)} if senders else {})
        found: list[Message] = []
        # The server is asked for no more than the page still lacks, so a page never ends
        # part-way through the server's and its `end` token is where the next one starts;
        # a selective search reads at most READ_ROUNDS of them a page.
        for _ in range(READ_ROUNDS):
            params = {
                "dir": "b",
                "limit": str(limit - len(found)),
                "filter": json.dumps(wanted),
            } | ({"from": start} if start else {})
            body = self._again(partial(self.http.request, "GET", path, params=params))
            chunk, end = body.get("chunk"), body.get("end")
            if not isinstance(chunk, list):
                raise ChatBackendError("The chat server did not list the room's messages.")
            for event in chunk:
                message = _message(event) if isinstance(event, dict) else None
                if message is None or (until_ms and message.sent_ms >= until_ms):
                    continue
                if since_ms and message.sent_ms < since_ms:
                    return MessagePage(found)  # older than the range: nothing more
                found.append(message)
            if not chunk or not isinstance(end, str) or end == start:
                return MessagePage(found)
            start = end
            if len(found) == limit:
                break
        return MessagePage(found, start)

    def _search_page(
        self,
        room_id: str,
        text: str,
        start: str,
        senders: tuple[str, ...],
        since_ms: int,
        until_ms: int,
        limit: int,
        *,
        whole: bool = False,
    ) -> MessagePage:
        """A page of `read_messages` by the homeserver's full-text search, as the service
        account (a member of every portal room), newest first.

        Synapse's search gives a `next_batch` only after a full page, and reads at most
        ten times the page's size of matches to fill it, leaving out removed messages and
        other senders' on the way: asked for 50, a room whose 500 newest matches had been
        removed looked empty. So removed messages leave its index (the portal's module
        takes them out), senders are picked here from everyone's matches, and it is asked
        for a wider window than the page (four times it, SEARCH_WINDOW at least and
        SEARCH_WINDOW_MOST at most). A page starts at a window's token and a place in it
        ("token|offset"). With `whole`, a page ends with a window (it may then hold more
        than `limit`): its next page starts at the homeserver's token, never in a window
        whose messages are removed meanwhile (which would shift it)."""
        wanted: dict[str, Any] = {"rooms": [room_id], "types": sorted(MESSAGE_TYPES)}
        window = min(max(4 * limit, SEARCH_WINDOW), SEARCH_WINDOW_MOST)
        token, _, at = start.partition("|")
        offset = int(at) if at.isdigit() else 0
        found: list[Message] = []
        for _ in range(READ_ROUNDS):
            body = {
                "search_categories": {
                    "room_events": {
                        "search_term": text,
                        "keys": ["content.body"],
                        "order_by": "recent",
                        "filter": wanted | {"limit": window},
                    }
                }
            }
            params = {"next_batch": token} if token else None
            answer = self._again(
                partial(self.http.request, "POST", f"{CLIENT}/search", json=body, params=params)
            )
            events = answer.get("search_categories", {}).get("room_events", {})
            results, following = events.get("results"), events.get("next_batch")
            if not isinstance(results, list):
                raise ChatBackendError("The chat server did not answer the search.")
            for index in range(offset, len(results)):
                item = results[index]
                event = item.get("result") if isinstance(item, dict) else None
                message = _message(event) if isinstance(event, dict) else None
                if message is None or (until_ms and message.sent_ms >= until_ms):
                    continue
                if since_ms and message.sent_ms < since_ms:
                    return MessagePage(found)  # older than the range: nothing more
                if senders and message.sender not in senders:
                    continue
                found.append(message)
                if len(found) >= limit and not whole:
                    if index + 1 < len(results):  # the rest of the window is the next page's
                        return MessagePage(found, f"{token}|{index + 1}")
                    break
            if not isinstance(following, str) or not following or following == token:
                return MessagePage(found)
            # The window read to its end: on from the homeserver's own token, which never
            # reads it again (what was removed from it meanwhile would shift it).
            token, offset = following, 0
            if len(found) >= limit:
                break
        return MessagePage(found, token)

    def remove_message(
        self,
        room_id: str,
        event_id: str,
        reason: str,
        *,
        files: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        """Redact one message, as the service account, with the reason chat clients show
        in its place, and quarantine the files it carried (nobody can download them
        again): `files` as read with it, or read now when not given. Safe to repeat: the
        transaction ID is the message's, so a try whose answer was lost is not redacted
        twice, and quarantining again changes nothing."""
        if files is None:
            event = self._again(
                lambda: self.http.request(
                    "GET", f"{CLIENT}/rooms/{segment(room_id)}/event/{segment(event_id)}"
                )
            )
            content = event.get("content")
            files = _files_of(content if isinstance(content, dict) else {})
        for server, media in files:
            quarantine = f"{ADMIN}/v1/media/quarantine/{segment(server)}/{segment(media)}"
            self._again(partial(self.http.request, "POST", quarantine, json={}))
        txn = "remove-" + hashlib.sha256(event_id.encode()).hexdigest()[:32]
        self._again(
            lambda: self.http.request(
                "PUT",
                f"{CLIENT}/rooms/{segment(room_id)}/redact/{segment(event_id)}/{txn}",
                json={"reason": reason} if reason else {},
            )
        )

    def post_notice(self, room_id: str, text: str, *, key: str) -> None:
        """A notice from the service account in the room (`key` makes a repeat one)."""
        txn = "notice-" + hashlib.sha256(key.encode()).hexdigest()[:32]
        self._again(
            lambda: self.http.request(
                "PUT",
                f"{CLIENT}/rooms/{segment(room_id)}/send/m.room.message/{txn}",
                json={"msgtype": "m.notice", "body": text},
            )
        )

    def room_events(
        self, room_id: str, since_ms: int = 0, until_ms: int = 0, senders: tuple[str, ...] = ()
    ) -> Iterator[RoomEvent]:
        """Every message (uploads included) and membership change of the room, oldest
        first, sent from `since_ms` to before `until_ms` (0: unbounded), by `senders` (any
        when empty), as the server keeps them (a removed message: its content empty).

        With `since_ms`, reading starts at the room's first event sent then or after (a
        month's export of a long-lived room does not read the years before it). The next
        page is read while this one is given out: the homeserver works while the caller
        writes. At most two pages are held at once."""
        path = f"{ADMIN}/v1/rooms/{segment(room_id)}/messages"
        types = {"types": sorted(MESSAGE_TYPES | {"m.room.member"})}
        wanted = json.dumps(types | ({"senders": list(senders)} if senders else {}))
        begin = self._position_at(room_id, since_ms) if since_ms else ""
        if begin is None:
            return

        def read(start: str) -> Any:
            params = {"dir": "f", "limit": str(COUNT_PAGE), "filter": wanted} | (
                {"from": start} if start else {}
            )
            return self._again(partial(self.http.request, "GET", path, params=params))

        start = begin
        with ThreadPoolExecutor(1) as reader:
            coming = reader.submit(read, start)
            while True:
                body = coming.result()
                chunk, end = body.get("chunk"), body.get("end")
                if not isinstance(chunk, list):
                    raise ChatBackendError("The chat server did not list the room's events.")
                if not chunk or not isinstance(end, str) or end == start:
                    end = ""  # the last page
                else:
                    coming = reader.submit(read, end)
                del body
                chunk.reverse()
                while chunk:
                    event = chunk.pop()
                    sent = int(event.get("origin_server_ts", 0)) if isinstance(event, dict) else 0
                    if not isinstance(event, dict) or (since_ms and sent < since_ms):
                        continue
                    if until_ms and sent >= until_ms:
                        return
                    yield _room_event(event)
                if not end:
                    return
                start = end

    def _position_at(self, room_id: str, moment_ms: int) -> str | None:
        """Where reading the room forwards starts with its first event sent at or after
        `moment_ms` (a pagination token), found by the homeserver's index of events by
        time and the event's context; None: nothing was sent since."""
        room = segment(room_id)
        try:
            found = self._again(
                partial(
                    self.http.request,
                    "GET",
                    f"{ADMIN}/v1/rooms/{room}/timestamp_to_event",
                    params={"ts": str(moment_ms), "dir": "f"},
                )
            )
        except ChatNotFound:
            return None
        event_id = found.get("event_id")
        if not isinstance(event_id, str):
            raise ChatBackendError("The chat server did not say which event was sent then.")
        context = self._again(
            partial(
                self.http.request,
                "GET",
                f"{ADMIN}/v1/rooms/{room}/context/{segment(event_id)}",
                # No events around it, and of the room's state no one's membership.
                params={"limit": "0", "filter": json.dumps({"lazy_load_members": True})},
            )
        )
        start = context.get("start")
        if not isinstance(start, str):
            raise ChatBackendError("The chat server did not say where that event is.")
        return start

    def download_media(self, address: str, into: BinaryIO, *, limit: int) -> int:
        """Copy an uploaded file (its `mxc://` address) into `into`, up to `limit` bytes;
        its size. ChatNotFound: not there any more (quarantined with a removed message)."""
        found = _files_of({"url": address})
        if not found:
            raise ChatNotFound("That is not the address of an uploaded file.")
        [(server, media)] = found
        path = f"{MEDIA}/download/{segment(server)}/{segment(media)}"
        return self.http.download(path, into, limit=limit)

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


@dataclass(frozen=True)
class Message:
    """One message as a reader of the room's history sees it."""

    event_id: str
    sender: str
    sent_ms: int
    kind: str  # m.text, m.image, … (a sticker: m.sticker; encrypted: m.room.encrypted)
    body: str  # "" when removed (redacted) or encrypted
    removed: bool = False
    files: tuple[tuple[str, str], ...] = ()  # (server, media ID) of its file and thumbnail


@dataclass(frozen=True)
class MessagePage:
    """Messages newest first, and where the next (older) page starts ("" at the end)."""

    messages: list[Message]
    next: str = ""


def _files_of(content: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The files a message carries (its file and its thumbnail), as (server, media ID)."""
    info = content.get("info")
    thumbnail = info.get("thumbnail_url") if isinstance(info, dict) else None
    found = []
    for url in (content.get("url"), thumbnail):
        if isinstance(url, str) and url.startswith("mxc://") and url.count("/") == 3:
            server, media = url[len("mxc://") :].split("/", 1)
            found.append((server, media))
    return tuple(found)


def _message(event: dict[str, Any]) -> Message | None:
    if event.get("type") not in MESSAGE_TYPES or "state_key" in event:
        return None
    given = event.get("content")
    content: dict[str, Any] = given if isinstance(given, dict) else {}
    removed = not content and "redacted_because" in (event.get("unsigned") or {})
    kind = str(content.get("msgtype") or event.get("type"))
    return Message(
        event_id=str(event.get("event_id", "")),
        sender=str(event.get("sender", "")),
        sent_ms=int(event.get("origin_server_ts", 0)),
        kind=kind,
        body=str(content.get("body", "")) if isinstance(content.get("body"), str) else "",
        removed=removed,
        files=_files_of(content),
    )
