"""Recording audit entries: the one function every service calls."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from portal.models import AuditEntry, Outcome


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    action: str,
    outcome: Outcome = Outcome.SUCCEEDED,
    request: HttpRequest | None = None,
    actor: Any = None,
    target_kind: str = "",
    target_id: str = "",
    target_label: str = "",
    category_id: str = "",
    category_label: str = "",
    before: Any = None,
    after: Any = None,
    error: str = "",
) -> AuditEntry:
    """Write one audit entry; the actor and request details come from the request."""
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    return AuditEntry.objects.create(
        actor=actor,
        actor_username=getattr(actor, "username", "") or "",
        actor_chat_id=getattr(actor, "chat_id", "") or "",
        action=action,
        outcome=outcome,
        target_kind=target_kind,
        target_id=target_id[:255],
        target_label=target_label[:512],
        category_id=category_id,
        category_label=category_label[:512],
        before=before,
        after=after,
        error=error,
        request_id=getattr(request, "request_id", "") if request is not None else "",
        client_ip=_client_ip(request) if request is not None else None,
        user_agent=request.headers.get("User-Agent", "")[:512] if request is not None else "",
    )
