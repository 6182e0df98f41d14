"""What every part of the API shares: token authentication, the read-only check, and
cursors for paging."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja import Schema
from ninja.errors import HttpError
from ninja.security import HttpBearer
from pydantic import AfterValidator, Field

from accounts.models import ApiToken, IdempotentAnswer, User
from accounts.tokens import token_user
from portal.middleware import PROBLEM
from rooms.backend.records import Invitations, Privacy, RoomSettings
from rooms.services.roles import NotAChatId, chat_id_of


def _text(value: str) -> str:
    """Text as the pages take it: no NUL character, nothing that is not Unicode."""
    if "\x00" in value:
        raise ValueError("Text cannot hold a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text must be Unicode (it holds a lone surrogate).") from None
    return value


Text = Annotated[str, AfterValidator(_text)]


def _id_of(sigil: str, what: str, listing: str) -> Callable[[str], str]:
    """A check that a filter was given an ID (a room's, in room version 12, has no server
    name; a person's has one)."""

    def check(value: str) -> str:
        value = _text(value)
        if value and not (value.startswith(sigil) and (sigil == "!" or ":" in value)):
            raise ValueError(f"Give {what}'s ID ({sigil}…), not its name: {listing}.")
        return value

    return check


# Filters that take an ID refuse a name, rather than answer an empty list as if nothing
# matched.
CategoryIdFilter = Annotated[
    str, AfterValidator(_id_of("!", "the category", "GET /api/v1/categories lists them"))
]
ChatIdFilter = Annotated[
    str,
    AfterValidator(_id_of("@", "the person", "@name:server, as their page in the portal shows it")),
]


class PrincipalOut(Schema):
    """A group or an OU of the directory."""

    kind: str = Field(description="group or ou")
    dn: str
    name: str
    label: str


class Problem(Schema):
    """An RFC 9457 problem: what went wrong, in the words the pages use."""

    type: str
    title: str
    status: int
    detail: str


# The answers any operation may give besides its own (documented in the schema).
READ_ERRORS: dict[int, type[Problem]] = {
    400: Problem,
    401: Problem,
    403: Problem,
    404: Problem,
    422: Problem,
    429: Problem,  # the token's rate limit
}
WRITE_ERRORS = READ_ERRORS | {409: Problem, 502: Problem, 503: Problem}


def chat_ids(typed: list[str], field: str) -> list[str]:
    """People named in a body, read as everywhere else (`chat_id_of`: a chat ID, or a name
    alone on this server), each once; 422 naming what is not a chat ID."""
    found, bad = [], []
    for each in typed:
        try:
            found.append(chat_id_of(each))
        except NotAChatId:
            bad.append(each)
    if bad:
        raise HttpError(
            422, f"{field}: not chat IDs (they look like @name:server): {', '.join(bad[:5])}."
        )
    return list(dict.fromkeys(found))


def body_digest(request: HttpRequest) -> str:
    """The request body's SHA-256, of its JSON in canonical form (key order and spacing
    aside), or of its bytes when it is not JSON."""
    raw = request.body
    with contextlib.suppress(ValueError):
        raw = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()


REPLAYED = "Idempotent-Replayed"


def once(
    request: ApiRequest,
    response: HttpResponse,
    key: str,
    make: Callable[[], tuple[int, dict[str, Any]]],
) -> tuple[int, dict[str, Any]]:
    """Make something at most once per `Idempotency-Key`: the same key from the same person
    with the same body gets the first answer again (marked `Idempotent-Replayed: true`);
    the key with another body, or for another address, is refused (422)."""
    if not key:
        return make()
    owner = request.user
    digest = body_digest(request)
    earlier = IdempotentAnswer.objects.filter(user=owner, key=key).first()
    if earlier is None:
        status, made = make()
        body = json.loads(json.dumps(made, cls=DjangoJSONEncoder))  # as it is kept
        with transaction.atomic():
            IdempotentAnswer.objects.get_or_create(
                user=owner,
                key=key,
                defaults={
                    "path": request.path,
                    "request_digest": digest,
                    "status": status,
                    "body": body,
                },
            )
        return status, body
    if earlier.path != request.path:
        raise HttpError(422, "That Idempotency-Key was used for another request: use a new one.")
    if earlier.request_digest and earlier.request_digest != digest:
        raise HttpError(
            422,
            "That Idempotency-Key was used with another body: a key stands for one request; "
            "use a new one for a different request.",
        )
    response[REPLAYED] = "true"
    return earlier.status, earlier.body


def settings_of(new: Any) -> RoomSettings:
    """A new room's settings from a body that asks for one (a room, or a request for one)."""
    return RoomSettings(
        name=new.name,
        description=new.description,
        category_id=new.category,
        privacy=Privacy(new.privacy),
        auditorium=new.auditorium,
        invitations=Invitations(new.invitations),
    )


@dataclass(frozen=True)
class RateLimit:
    """A token's requests this minute: how many it may make, how many are left, and in how
    many seconds the count starts again. Every answer says it (`RateLimit-*` headers)."""

    limit: int
    remaining: int
    reset: int


class RateLimited(Exception):
    """More requests this minute than a token may make: 429, with when to ask again."""

    def __init__(self, rate: RateLimit) -> None:
        super().__init__(
            f"This token made more than {rate.limit} requests this minute: "
            f"ask again in {rate.reset} s."
        )
        self.rate = rate


class ApiRequest(HttpRequest):
    """A request the token authentication let in, as the API's operations see it: `user`
    is the token's owner, `auth` (and `api_token`, which audit entries name) the token,
    `rate_limit` what is left of its minute."""

    user: User
    auth: ApiToken
    api_token: ApiToken
    rate_limit: RateLimit


class TokenAuth(HttpBearer):
    """A live personal access token, within its rate limit; the request then acts as its
    owner."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = token_user(token)
        if found is None:
            return None
        request.user = found.user
        request.api_token = found  # type: ignore[attr-defined]  # it becomes an ApiRequest
        limit = settings.API_RATE_LIMIT_PER_MINUTE
        assert found.window_start is not None  # counted just now
        reset = max(1, 60 - int((timezone.now() - found.window_start).total_seconds()))
        rate = RateLimit(limit, max(0, limit - found.window_count), reset)
        request.rate_limit = rate  # type: ignore[attr-defined]
        if found.window_count > limit:
            raise RateLimited(rate)
        return found


def writes(request: ApiRequest) -> None:
    """Refuse a change asked with a read-only token."""
    if not request.auth.writes:
        raise PermissionDenied(
            "This token is read-only: make a read-and-write token to change things."
        )


def changed_since_read(what: str, current: dict[str, Any], tag: str) -> JsonResponse:
    """412 for a change sent with an `If-Match` that no longer holds: the thing as it is
    now (`current`, and its `ETag`), to decide again on."""
    body = {
        "type": "about:blank",
        "title": "Changed since read",
        "status": 412,
        "detail": f"The {what} changed since that ETag was read: here it is now; send the "
        "change again with its new ETag if it still stands.",
        "current": current,
    }
    return JsonResponse(body, status=412, content_type=PROBLEM, headers={"ETag": tag})


def version_of(if_match: str) -> str | None:
    """The version an `If-Match` header names (an ETag, weak or strong), or None."""
    return if_match.strip().removeprefix("W/").strip('"') or None


def page_of(
    request: HttpRequest, response: HttpResponse, items: list[Any], count: int, cursor: str | None
) -> dict[str, Any]:
    """A page of a list: its items, how many there are over every page (also as
    `X-Total-Count`), and the cursor of the next page (also as a `Link` header, rel=next,
    the address to ask)."""
    response["X-Total-Count"] = str(count)
    if cursor:
        query = request.GET.copy()
        query["cursor"] = cursor
        following = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        response["Link"] = f'<{following}>; rel="next"'
    return {"items": items, "count": count, "next_cursor": cursor}


def cursor_of(values: list[Any]) -> str:
    """An opaque cursor for the row after which the next page starts."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


NOT_OURS = "That cursor was not made by this API: start again without one."


def after_cursor(cursor: str, *, size: int) -> list[str]:
    """The key a cursor names; a cursor the API did not make is refused."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise HttpError(400, NOT_OURS) from None
    if not isinstance(values, list) or len(values) != size:
        raise HttpError(400, NOT_OURS)
    if not all(isinstance(value, str) for value in values):
        raise HttpError(400, NOT_OURS)
    return values
