"""The approval-queue count in the navigation."""

from __future__ import annotations

from django.http import HttpRequest

from rooms.room_requests import approval_queue


def approvals(request: HttpRequest) -> dict[str, int]:
    """Counted from the portal's own tables and the index: no chat-server call."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"approval_count": approval_queue(user=user).count()}
