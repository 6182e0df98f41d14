"""The HTTP API under /api/v1/ (django-ninja): the same services as the pages — the same
permission rules, operations and audit entries, each entry marked as made through the
API with the token's name. Errors are RFC 9457 problem details with the messages the
pages show; lists are paged by cursor; a change can be asked as a what-if
(`?dry_run=true`), which says what would change and changes nothing.

Personal access tokens authenticate: `Authorization: Bearer rp_…`. Make one on the API
tokens page, or sign in for one with `POST /api/v1/tokens` (a username and password, as
`roomctl login` does). Long changes are operations (`/api/v1/operations`), polled.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from portal.api import (
    addins,
    audit,
    categories,
    moderation,
    operations,
    requests,
    rooms,
    tokens,
)
from portal.api.common import RateLimited, TokenAuth
from portal.audit import audit_missing, audit_unrecorded
from portal.middleware import PROBLEM
from rooms.backend.errors import ChatBackendError, ChatNotFound, ChatServerUnavailable
from rooms.services import addins as addin_services
from rooms.services import categories as category_services
from rooms.services import moderation as moderation_services
from rooms.services import operations as operation_services
from rooms.services import requests as request_services
from rooms.services import rooms as room_services


class PortalAPI(NinjaAPI):
    """The schema says what errors really are: problem details (RFC 9457), and has one
    entry per status."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        for methods in schema["paths"].values():
            for operation in methods.values():
                # One key per status: an answer described in `openapi_extra` ("200") and
                # its schema (200) would otherwise be two keys, which readers refuse.
                merged: dict[str, Any] = {}
                for status, answer in operation.get("responses", {}).items():
                    merged[str(status)] = merged.get(str(status), {}) | answer
                operation["responses"] = merged
                for status, answer in merged.items():
                    content = answer.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        content[PROBLEM] = content.pop("application/json")
        return schema


# When to ask again: a request with the same Idempotency-Key still being carried out, and
# a chat server that does not answer (the client has already tried three times).
IN_PROGRESS_RETRY_SECONDS = 5
UNAVAILABLE_RETRY_SECONDS = 30

api = PortalAPI(
    title="Room portal API",
    version="1",
    description=__doc__ or "",
    urls_namespace="api",
    auth=TokenAuth(),
    docs_url="/docs",
)
api.add_router("/rooms", rooms.router)
api.add_router("/categories", categories.router)
api.add_router("/addins", addins.router)
api.add_router("/moderation", moderation.router)
api.add_router("/requests", requests.router)
api.add_router("/audit", audit.router)
api.add_router("/operations", operations.router)
api.add_router("/tokens", tokens.router)


def problem(
    request: HttpRequest, status: int, title: str, detail: str, **extra: Any
) -> HttpResponse:
    """An RFC 9457 problem details answer."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail} | extra
    response = api.create_response(request, body, status=status)
    response["Content-Type"] = PROBLEM
    return response


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = problem(
        request,
        401,
        "Not signed in",
        "The token is missing, unknown, revoked or expired: make one on your API tokens page.",
    )
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(RateLimited)
def rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    response = problem(request, 429, "Too many requests", str(exc))
    response["Retry-After"] = str(exc.rate.reset)
    return response


@api.exception_handler(PermissionDenied)
def refused(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    audit_unrecorded(request, exc)
    return problem(request, 403, "Not allowed", str(exc) or "You may not do this.")


@api.exception_handler(ObjectDoesNotExist)
def not_found(request: HttpRequest, exc: ObjectDoesNotExist) -> HttpResponse:
    detail = str(exc) or "There is no such thing, or you may not see it."
    audit_missing(request, exc)
    return problem(request, 404, "Not found", detail)


@api.exception_handler(NinjaValidationError)
def invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = [
        {"field": _field(error.get("loc", ())), "message": _message(error)} for error in exc.errors
    ]
    detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors[:10])
    return problem(request, 422, "Invalid request", detail, errors=errors)


# What a list in a body holds, for a message about its length: "at most 1000 people".
LISTED = {"rooms": "rooms", "creators": "people", "add": "people", "remove": "people"}
LISTED |= {"deny": "people", "undeny": "people"}


def _message(error: dict[str, Any]) -> str:
    """A validation error in the pages' words; a list too long or too short says of what."""
    context = error.get("ctx") or {}
    if context.get("field_type") == "List" and error.get("type") in ("too_long", "too_short"):
        what = LISTED.get(str(list(error.get("loc", ()))[-1]), "entries")
        if error["type"] == "too_long":
            return (
                f"At most {context['max_length']} {what} at once "
                f"(this has {context['actual_length']})."
            )
        least = context["min_length"]
        return "Give at least one." if least == 1 else f"Give at least {least} {what}."
    return str(error.get("msg", ""))


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """The field a validation error is about: `body.change.name` is `name`."""
    parts = list(loc)[1:]
    if list(loc)[:1] == ["body"] and len(parts) > 1:
        parts = parts[1:]  # the body's parameter name
    return ".".join(str(part) for part in parts)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return problem(request, exc.status_code, "Request refused", str(exc))


@api.exception_handler(room_services.RoomSettingsInvalid)
def settings_invalid(request: HttpRequest, exc: room_services.RoomSettingsInvalid) -> HttpResponse:
    return problem(request, 422, "Invalid settings", exc.message, field=exc.field)


@api.exception_handler(addin_services.AddInInvalid)
def addin_invalid(request: HttpRequest, exc: addin_services.AddInInvalid) -> HttpResponse:
    return problem(request, 422, "Invalid add-in", exc.message, field=exc.field)


@api.exception_handler(moderation_services.ModerationInvalid)
def moderation_invalid(
    request: HttpRequest, exc: moderation_services.ModerationInvalid
) -> HttpResponse:
    return problem(request, 422, "Invalid moderation", exc.message, field=exc.field)


@api.exception_handler(category_services.CategoryInvalid)
def category_invalid(request: HttpRequest, exc: category_services.CategoryInvalid) -> HttpResponse:
    return problem(request, 422, "Invalid change", exc.message, field=exc.field)


@api.exception_handler(request_services.RequestConflict)
def decided(request: HttpRequest, exc: request_services.RequestConflict) -> HttpResponse:
    return problem(request, 409, "Decided meanwhile", str(exc))


@api.exception_handler(request_services.RequestStale)
def request_stale(request: HttpRequest, exc: request_services.RequestStale) -> HttpResponse:
    return requests.stale(request, exc)


@api.exception_handler(category_services.CategoryStale)
def category_stale(request: HttpRequest, exc: category_services.CategoryStale) -> HttpResponse:
    return categories.stale(request, exc)


@api.exception_handler(operation_services.OperationConflict)
def not_unfinished(request: HttpRequest, exc: operation_services.OperationConflict) -> HttpResponse:
    return problem(request, 409, "Nothing to finish", str(exc))


@api.exception_handler(room_services.StaleEdit)
def stale(request: HttpRequest, exc: room_services.StaleEdit) -> HttpResponse:
    detail = "Someone else changed the room at the same moment: read it again and retry."
    response = problem(request, 409, "Changed meanwhile", detail)
    response["Retry-After"] = "1"
    return response


@api.exception_handler(room_services.SubmissionInProgress)
def in_progress(request: HttpRequest, exc: room_services.SubmissionInProgress) -> HttpResponse:
    response = problem(request, 409, "Already being made", str(exc))
    response["Retry-After"] = str(IN_PROGRESS_RETRY_SECONDS)
    return response


@api.exception_handler(ChatNotFound)
def chat_not_found(request: HttpRequest, exc: ChatNotFound) -> HttpResponse:
    audit_missing(request, exc)
    return problem(request, 404, "Not found", exc.detail)


@api.exception_handler(ChatBackendError)
def chat_failed(request: HttpRequest, exc: ChatBackendError) -> HttpResponse:
    audit_unrecorded(request, exc)
    if not isinstance(exc, ChatServerUnavailable):
        return problem(request, 502, "The chat server failed", exc.detail)
    response = problem(request, 503, "The chat server failed", exc.detail)
    response["Retry-After"] = str(UNAVAILABLE_RETRY_SECONDS)
    return response
