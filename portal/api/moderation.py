"""Moderation through the API: clearing a room's history (portal administrators)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Router, Schema
from pydantic import AwareDatetime, ConfigDict, Field

from portal.api.common import WRITE_ERRORS, ApiRequest, Text, writes
from rooms.backend.records import NAME_MAX_LENGTH
from rooms.selectors.moderation import room_to_moderate
from rooms.services import moderation as moderation_services

router = Router(tags=["moderation"])


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
