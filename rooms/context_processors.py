"""What every page shows besides its own content: the approval-queue count in the
navigation (room requests to decide, people asking to join one's rooms; for
administrators, also the count of unfinished changes, and for them and auditors the
rooms left outside the rules), and a notice when the room index
has not heard from the chat server lately."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from rooms.models import Operation, PolicyBreach
from rooms.selectors.requests import waiting_count
from rooms.sync import STALE_AFTER, index_age, worker_state


def approvals(request: HttpRequest) -> dict[str, int]:
    """Counted from the portal's own tables and the index: no chat-server call. Portal
    administrators also see how many changes are left unfinished."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    counts = {"approval_count": waiting_count(user=user)}
    if user.is_administrator:
        counts["unfinished_count"] = Operation.objects.filter(
            status=Operation.Status.UNFINISHED
        ).count()
    if user.can_audit:
        counts["breach_count"] = PolicyBreach.objects.filter(undone_at__isnull=True).count()
    return counts


def index_status(request: HttpRequest) -> dict[str, Any]:
    """How long ago the index last heard from the chat server, once that is too long."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    age = index_age()
    if age is None or age < STALE_AFTER:
        return {}
    # What is stale: no sync worker follows the stream, or the one that does cannot
    # reach the chat server (only then do changes fail too).
    return {
        "index_minutes_old": max(1, int(age.total_seconds() // 60)),
        "index_worker_down": not worker_state()["leader"],
    }
