"""The approval-queue count in the navigation."""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpRequest

from rooms.backend.errors import ChatBackendError
from rooms.room_requests import QUEUE_VERSION_KEY, approval_queue

QUEUE_COUNT_SECONDS = 30


def approvals(request: HttpRequest) -> dict[str, int]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    key = f"approval-queue-count:{user.pk}:{cache.get(QUEUE_VERSION_KEY, 0)}"
    count = cache.get(key)
    if count is None:
        try:
            count = approval_queue(user=user).count()
        except ChatBackendError:
            return {"approval_count": 0}  # the page itself says when the server is down
        # Cached briefly: finding a person's categories asks the chat server.
        cache.set(key, count, QUEUE_COUNT_SECONDS)
    return {"approval_count": count}
