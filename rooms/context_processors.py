"""What every page shows besides its own content: the approval-queue count in the
navigation, and a notice when the room index has not heard from the chat server lately."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from rooms.room_requests import approval_queue
from rooms.sync import STALE_AFTER, index_age


def approvals(request: HttpRequest) -> dict[str, int]:
    """Counted from the portal's own tables and the index: no chat-server call."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"approval_count": approval_queue(user=user).count()}


def index_status(request: HttpRequest) -> dict[str, Any]:
    """How long ago the index last heard from the chat server, once that is too long."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    age = index_age()
    if age is None or age < STALE_AFTER:
        return {}
    return {"index_minutes_old": max(1, int(age.total_seconds() // 60))}
