"""Recording audit entries: the one function every service calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import HttpRequest
from django.utils import timezone

from portal.audit.chain import anchor_on_commit, chain_writer, seal
from portal.models import AuditEntry, Outcome
from rooms.backend.errors import ChatBackendError
from rooms.selectors import Hidden

# The request being served, so services record its ID, address and browser without
# taking the request as an argument. Set by RequestIdMiddleware.
current_request: ContextVar[HttpRequest | None] = ContextVar("current_request", default=None)


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _storable(value: Any, limit: int | None = None) -> Any:
    """A value as the database can keep it: no NUL character (PostgreSQL refuses them in
    text and JSON), text cut to its column's length. What people typed stays readable."""
    if isinstance(value, str):
        value = value.replace("\x00", "\ufffd")
        return value[:limit] if limit else value
    if isinstance(value, dict):
        return {_storable(str(k)): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def _via(request: HttpRequest | None) -> str:
    """ "api: <token's name>" for a request made with an API token; "" for the pages."""
    token = getattr(request, "api_token", None)
    return _storable(f"api: {token.name}", 128) if token is not None else ""


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
    request_id: str = "",
    chat_actor: str = "",
) -> AuditEntry:
    """Write one audit entry; the actor and request details come from the request.

    `request_id` links entries of one action spread over several requests (a bulk add).
    `chat_actor` names who did it on the chat server, for changes made outside the portal.
    """
    if request is None:
        request = current_request.get()
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    entry = AuditEntry(
        created_at=timezone.now(),
        actor=actor,
        actor_username=_storable(getattr(actor, "username", "") or chat_actor, 255),
        actor_chat_id=_storable(getattr(actor, "chat_id", "") or chat_actor, 255),
        action=action,
        outcome=outcome,
        target_kind=_storable(target_kind, 32),
        target_id=_storable(target_id, 255),
        target_label=_storable(target_label, 512),
        category_id=_storable(category_id, 255),
        category_label=_storable(category_label, 512),
        # Hashed as the database will store them: JSON round-tripped.
        before=_storable(json.loads(json.dumps(before, default=str))),
        after=_storable(json.loads(json.dumps(after, default=str))),
        error=_storable(error),
        request_id=request_id or getattr(request, "request_id", ""),
        client_ip=_client_ip(request) if request is not None else None,
        user_agent=(
            _storable(request.headers.get("User-Agent", ""), 512) if request is not None else ""
        ),
        via=_via(request),
    )
    entry.client_ip = AuditEntry._meta.get_field("client_ip").get_prep_value(entry.client_ip)
    with chain_writer() as prev_hash:
        seal(entry, prev_hash)
        entry.save()
        anchor_on_commit(entry)
    return entry


@dataclass
class AuditScope:
    """What an audited action fills in while it runs."""

    target_id: str = ""
    target_label: str = ""
    category_id: str = ""
    category_label: str = ""
    before: Any = None
    after: Any = None


@contextmanager
def audited(
    action: str, *, actor: Any, target_kind: str, request_id: str = "", **known: Any
) -> Iterator[AuditScope]:
    """Record one audit entry for the action in the block, whatever its outcome.

    A PermissionDenied, or a thing asked for that is not there or not the person's to
    see, is recorded as denied, a chat server error as failed (with the server's
    message), anything else raised as failed; all are re-raised.
    """
    scope = AuditScope(**known)

    def write(outcome: Outcome, error: str = "") -> None:
        audit_record(
            action=action,
            outcome=outcome,
            actor=actor,
            target_kind=target_kind,
            target_id=scope.target_id,
            target_label=scope.target_label,
            category_id=scope.category_id,
            category_label=scope.category_label,
            before=scope.before,
            after=scope.after,
            error=error,
            request_id=request_id,
        )

    try:
        yield scope
    except (PermissionDenied, ObjectDoesNotExist) as exc:
        write(Outcome.DENIED, str(exc))
        exc.audited = True  # type: ignore[union-attr]  # the middleware writes no second one
        raise
    except ChatBackendError as exc:
        # An operation says how it ended: undone, or partly applied.
        write(getattr(exc, "outcome", Outcome.FAILED), exc.detail)
        exc.audited = True  # type: ignore[attr-defined]
        raise
    except Exception as exc:
        write(Outcome.FAILED, f"{type(exc).__name__}: {exc}")
        exc.audited = True  # type: ignore[attr-defined]
        raise
    write(Outcome.SUCCEEDED)


def audit_unrecorded(request: HttpRequest, exc: Exception) -> None:
    """What a view met that no service recorded: a refusal (its own permission check), or
    a change that failed before its service ran (its own read of the chat server)."""
    if getattr(exc, "audited", False):
        return
    refused = isinstance(exc, PermissionDenied)
    if not refused and request.method in ("GET", "HEAD", "OPTIONS"):
        return  # a page that could not be read is no action taken
    detail = exc.detail if isinstance(exc, ChatBackendError) else str(exc)
    audit_record(
        action="access.denied" if refused else "page.failed",
        outcome=Outcome.DENIED if refused else Outcome.FAILED,
        request=request,
        target_kind="page",
        target_id=request.path,
        target_label=f"{request.method} {request.path}",
        error=detail or ("Refused." if refused else type(exc).__name__),
    )
    exc.audited = True  # type: ignore[attr-defined]


def audit_missing(request: HttpRequest, exc: Exception) -> None:
    """A change asked of something that is not there or that the person may not see (both
    answered 404 alike): recorded as refused, so probing IDs leaves a trace. A read is
    recorded when the thing is there and not the person's to see (`Hidden`); a read of
    nothing is not."""
    reading = request.method in ("GET", "HEAD", "OPTIONS")
    if (reading and not isinstance(exc, Hidden)) or getattr(exc, "audited", False):
        return
    audit_unrecorded(request, PermissionDenied(str(exc) or "Not there, or not visible."))
    exc.audited = True  # type: ignore[attr-defined]
