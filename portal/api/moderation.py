"""Moderation through the API (portal administrators): reading a room's history, a page
at a time and audited; clearing it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from ninja import Router, Schema
from ninja.errors import HttpError
from pydantic import AwareDatetime, ConfigDict, Field, StrictBool

from portal.api.common import READ_ERRORS, WRITE_ERRORS, ApiRequest, Text, writes
from rooms.backend.records import NAME_MAX_LENGTH
from rooms.permissions import can_moderate
from rooms.selectors.moderation import room_to_export, room_to_moderate, room_to_read
from rooms.services import moderation as moderation_services
from rooms.services.roles import NotAChatId, chat_id_of

router = Router(tags=["moderation"])
ExportFormat = Literal["jsonl", "rsmf"]


class ClearIn(Schema):
    model_config = ConfigDict(extra="forbid")

    before: AwareDatetime = Field(description="Messages sent before this moment go")
    confirm_name: Text = Field(
        "", max_length=4 * NAME_MAX_LENGTH, description="The room's name, to confirm"
    )


class Cleared(Schema):
    applied: bool
    messages: int = Field(description="Messages sent before then (counted before clearing)")
    more: bool = Field(description="Counting stopped at its cap: there are more")
    operation: str | None = Field(None, description="GET /api/v1/operations/{operation}")


@router.post(
    "/rooms/{room_id}/clear",
    response={200: Cleared} | WRITE_ERRORS,
    summary="Clear a room's history",
)
def clear_history(
    request: ApiRequest, room_id: str, clear: ClearIn, dry_run: bool = False
) -> dict[str, Any]:
    """Delete every message sent in the room before `before`, for everyone, for good
    (room state and the room's last message stay). `confirm_name` must be the room's
    name. With `dry_run=true` only the messages are counted. A chat-server failure leaves
    the operation unfinished, for `POST /api/v1/operations/{id}/retry`."""
    actor = request.user
    room, _ = room_to_moderate(user=actor, room_id=room_id)
    before: datetime = clear.before
    _, counted = moderation_services.clear_preview(actor=actor, room_id=room.id, before=before)
    answer = {"applied": not dry_run, "messages": counted.count, "more": counted.more}
    if dry_run:
        return answer
    writes(request)
    op = moderation_services.clear_history(
        actor=actor, room_id=room.id, before=before, confirm_name=clear.confirm_name
    )
    return answer | {"operation": str(op.pk)}


class MessageOut(Schema):
    id: str = Field(description="The message's event ID")
    sender: str
    sent_at: datetime
    kind: str = Field(description="m.text, m.image, m.file, …")
    body: str
    removed: bool


class MessagePage(Schema):
    items: list[MessageOut]
    next_cursor: str | None = Field(description="Older messages: pass as `cursor`")


@router.get(
    "/rooms/{room_id}/messages",
    response={200: MessagePage} | READ_ERRORS,
    summary="Read a room's history",
)
def history(
    request: ApiRequest,
    room_id: str,
    sender: str = "",
    text: str = "",
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    cursor: str = "",
) -> dict[str, Any]:
    """The room's messages newest first, a page at a time: by `sender` (a chat ID, or a
    name on this server), containing every word of `text` (whole words, any order and
    letter case), sent from `since` to before `until`. Every page read is recorded in the
    audit log (`moderation.read`)."""
    actor = request.user
    room, _ = room_to_read(user=actor, room_id=room_id)
    try:
        person = chat_id_of(sender) if sender.strip() else ""
    except NotAChatId as exc:
        raise HttpError(422, str(exc)) from exc
    page = moderation_services.history_read(
        actor=actor,
        room_id=room.id,
        sender=person,
        text=text,
        since=since,
        until=until,
        start=cursor,
    )
    return {
        "items": [
            {
                "id": m.event_id,
                "sender": m.sender,
                "sent_at": datetime.fromtimestamp(m.sent_ms / 1000, tz=UTC),
                "kind": m.kind,
                "body": m.body,
                "removed": m.removed,
            }
            for m in page.messages
        ],
        "next_cursor": page.next or None,
    }


class RemoveIn(Schema):
    model_config = ConfigDict(extra="forbid")

    messages: list[Text] = Field(
        min_length=1,
        max_length=moderation_services.REMOVE_AT_MOST,
        description="Event IDs of the room's messages (from its history)",
    )
    reason: Text = Field(max_length=moderation_services.REASON_MAX_LENGTH)
    notice: StrictBool = Field(False, description="Say in the room that they were removed")


class Removed(Schema):
    removed: int


@router.post(
    "/rooms/{room_id}/remove",
    response={200: Removed} | WRITE_ERRORS,
    summary="Remove messages",
)
def remove_messages(request: ApiRequest, room_id: str, remove: RemoveIn) -> dict[str, Any]:
    """Remove chosen messages (redacted: the reason is shown in their place), and say so
    in the room with `notice`. Sending it again after a failure finishes it: a message
    already removed is not removed twice, and no second notice is sent."""
    actor = request.user
    room, _ = room_to_moderate(user=actor, room_id=room_id)
    writes(request)
    removed = moderation_services.messages_remove(
        actor=actor,
        room_id=room.id,
        event_ids=list(remove.messages),
        reason=remove.reason,
        notice=remove.notice,
    )
    return {"removed": removed}


@router.get(
    "/rooms/{room_id}/export",
    response={200: None} | READ_ERRORS,
    summary="Export a room's history for compliance review",
)
def export(
    request: ApiRequest,
    room_id: str,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    format: ExportFormat = "jsonl",
) -> StreamingHttpResponse:
    """Every message (files with their address), removal and membership change of the
    room sent from `since` to before `until`, oldest first, streamed as JSON Lines: a
    header line, one line each, and a last line `{"kind": "end", "lines": N, "sha256":
    …}` whose digest covers every line before it (UTF-8, each with its newline). With
    `format=rsmf`, as Relativity Short Message Format 2.0 (`message/rfc822`; its
    `rsmf.zip` holds the files sent too, and the header `X-Roomportal-Zip-SHA256` its
    digest). The export is recorded in the audit log. An encrypted room is refused (422)."""
    actor = request.user
    room, _ = room_to_export(user=actor, room_id=room_id)
    return _streamed(format, actor=actor, room_id=room.id, since=since, until=until)


def _streamed(fmt: ExportFormat, **covering: Any) -> StreamingHttpResponse:
    if fmt == "rsmf":
        return StreamingHttpResponse(
            moderation_services.export_rsmf(**covering), content_type="message/rfc822"
        )
    return StreamingHttpResponse(
        moderation_services.export_lines(**covering),
        content_type="application/jsonl; charset=utf-8",
    )


@router.get(
    "/export",
    response={200: None} | READ_ERRORS,
    summary="Export a category's or a person's history for compliance review",
)
def export_many(
    request: ApiRequest,
    category: str = "",
    person: str = "",
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    format: ExportFormat = "jsonl",
) -> StreamingHttpResponse:
    """As a room's export (either format), for every room of a `category` (its ID), or
    for what one `person` sent (in that category's rooms, or in every room of the portal). Encrypted
    rooms are named in the header's `not_exportable`. The export is audited."""
    actor = request.user
    if not actor.can_read_history:
        raise PermissionDenied(moderation_services.ONLY_EXPORTERS)
    if not category and not person.strip():
        raise HttpError(422, "Give a category, a person, or both.")
    try:
        sender = chat_id_of(person) if person.strip() else ""
    except NotAChatId as exc:
        raise HttpError(422, str(exc)) from exc
    return _streamed(
        format, actor=actor, category_id=category, person=sender, since=since, until=until
    )


class SweepIn(Schema):
    model_config = ConfigDict(extra="forbid")

    room: Text = Field("", max_length=255, description="One room (its ID), or …")
    category: Text = Field("", max_length=255, description="… each room of a category (its ID)")
    sender: Text = Field("", max_length=255, description="Sent by (a chat ID, or a name here)")
    text: Text = Field(
        "", max_length=200, description="Containing these words (whole, any order or case)"
    )
    since: AwareDatetime | None = Field(None, description="Sent from this moment")
    until: AwareDatetime | None = Field(None, description="Sent before this moment")
    reason: Text = Field("", max_length=moderation_services.REASON_MAX_LENGTH)
    notice: StrictBool = Field(False, description="Say in each room how many were removed")


class SampleOut(Schema):
    room: str = Field(description="The room's name")
    id: str = Field(description="The message's event ID")
    sender: str
    body: str


class SweepOut(Schema):
    applied: bool
    messages: int = Field(description="Messages that match (counted before removing)")
    more: bool = Field(description="Counting stopped at its cap: there are more")
    rooms: int = Field(description="Rooms read")
    sample: list[SampleOut]
    operation: str | None = Field(None, description="GET /api/v1/operations/{operation}")


@router.post(
    "/removals",
    response={200: SweepOut} | WRITE_ERRORS,
    summary="Remove every matching message of a room or a category",
)
def sweep(request: ApiRequest, removal: SweepIn, dry_run: bool = False) -> dict[str, Any]:
    """Remove every message sent by `sender`, containing `text`, or both, from `since` to
    before `until`, in a `room` or each room of a `category` (portal administrators): each
    redacted with `reason` shown in its place, its files quarantined, and with `notice` a
    notice in each room. With `dry_run=true` only counted, with a sample. Otherwise
    started in the background: follow `operation` (`done` of `total` rooms, a result each
    with how many were removed); a room the chat server fails is left for Retry."""
    actor = request.user
    if not can_moderate(actor):
        raise PermissionDenied(moderation_services.ONLY_ADMINISTRATORS_REMOVE)
    if bool(removal.room) == bool(removal.category):
        raise HttpError(422, "Give a room or a category.")
    try:
        sender = chat_id_of(removal.sender) if removal.sender.strip() else ""
    except NotAChatId as exc:
        raise HttpError(422, str(exc)) from exc
    matching = moderation_services.Matching(
        sender=sender, text=removal.text, since=removal.since, until=removal.until
    )
    where = {"room_id": removal.room, "category_id": removal.category}
    preview = moderation_services.sweep_preview(actor=actor, matching=matching, **where)
    answer: dict[str, Any] = {
        "applied": not dry_run,
        "messages": preview.count,
        "more": preview.more,
        "rooms": len(preview.rooms),
        "sample": [
            {"room": name, "id": m.event_id, "sender": m.sender, "body": m.body}
            for name, m in preview.sample
        ],
    }
    if dry_run:
        return answer
    writes(request)
    op = moderation_services.sweep_start(
        actor=actor, matching=matching, reason=removal.reason, notice=removal.notice, **where
    )
    return answer | {"operation": str(op.pk)}
