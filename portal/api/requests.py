"""Room requests through the API: ask for a room, see your requests and the ones you may
decide, approve (with adjustments) or decline them — as the pages do."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from ninja.params.functions import Header
from pydantic import ConfigDict, Field, StrictBool

from portal.api.common import (
    READ_ERRORS,
    WRITE_ERRORS,
    ApiRequest,
    Problem,
    Text,
    changed_since_read,
    once,
    settings_of,
    version_of,
    writes,
)
from rooms.backend.records import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    Invitations,
    Privacy,
)
from rooms.models import RoomRequest
from rooms.selectors import requests as request_selectors
from rooms.services import requests as request_services

router = Router(tags=["requests"])


class RequestIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    description: Text = Field("", max_length=DESCRIPTION_MAX_LENGTH)
    category: Text = Field(max_length=255, description="The category's ID")
    privacy: Literal["open", "closed", "secret"] = "closed"
    auditorium: StrictBool = False
    invitations: Literal["inherit", "off"] = "inherit"
    justification: Text = Field(min_length=1, max_length=2000)


class Adjustments(Schema):
    """What the approver changes before the room is made; left out, as asked."""

    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(None, min_length=1, max_length=NAME_MAX_LENGTH)
    description: Text | None = Field(None, max_length=DESCRIPTION_MAX_LENGTH)
    privacy: Literal["open", "closed", "secret"] | None = None
    auditorium: StrictBool | None = None
    invitations: Literal["inherit", "off"] | None = None


class Decline(Schema):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=2000)


class RequestOut(Schema):
    id: int
    status: str
    requester: str
    name: str
    description: str
    category_id: str
    category_name: str
    privacy: str
    auditorium: bool
    invitations: str
    justification: str
    decision_reason: str
    room_id: str
    created_at: Any


def _out(asked: RoomRequest) -> dict[str, Any]:
    return {
        "id": asked.pk,
        "status": asked.status,
        "requester": asked.requester.chat_id or asked.requester.username,
        "name": asked.name,
        "description": asked.description,
        "category_id": asked.category_id,
        "category_name": asked.category_label,
        "privacy": asked.privacy,
        "auditorium": asked.auditorium,
        "invitations": asked.invitations,
        "justification": asked.justification,
        "decision_reason": asked.decision_reason,
        "room_id": asked.room_id,
        "created_at": asked.created_at,
    }


@router.get("", response={200: list[RequestOut]} | READ_ERRORS, summary="My requests")
def request_list(request: ApiRequest) -> list[dict[str, Any]]:
    owner = request.user
    mine = RoomRequest.objects.filter(requester=owner).select_related("requester")
    return [_out(asked) for asked in mine.order_by("-created_at")]


@router.get("/queue", response={200: list[RequestOut]} | READ_ERRORS, summary="To decide")
def request_queue(request: ApiRequest) -> list[dict[str, Any]]:
    """Pending requests the token's owner may decide, oldest first."""
    queue = request_selectors.approval_queue(user=request.user)
    return [_out(asked) for asked in queue.order_by("created_at")]


@router.post(
    "", response={201: RequestOut, 200: dict[str, Any]} | WRITE_ERRORS, summary="Ask for a room"
)
def request_submit(
    request: ApiRequest,
    response: HttpResponse,
    new: RequestIn,
    dry_run: bool = False,
    idempotency_key: str = Header("", alias="Idempotency-Key", max_length=255),
) -> tuple[int, dict[str, Any]]:
    """Ask for a room; the same `Idempotency-Key` sent again returns the first answer.
    With `dry_run=true` the request is checked (200) and not made."""
    actor = request.user
    settings = settings_of(new)
    if dry_run:
        category = request_services.request_submit_check(actor=actor, settings=settings)
        return 200, new.model_dump() | {"category_name": category.name}
    writes(request)
    # As for a room: the key names the request's submission too, so a request made by a
    # call whose answer was never kept is found again, not made twice.
    key = idempotency_key or uuid.uuid4().hex
    submission = uuid.uuid5(uuid.NAMESPACE_URL, f"roomportal:request:{actor.pk}:{key}")
    return once(
        request,
        response,
        idempotency_key,
        lambda: (
            201,
            _out(
                request_services.request_submit(
                    actor=actor,
                    settings=settings,
                    justification=new.justification,
                    submission=submission,
                )
            ),
        ),
    )


def etag(asked: RoomRequest) -> str:
    """A request's entity tag: it changes when the request is edited or decided."""
    return f'"{request_services.request_version(asked)}"'


def stale(request: HttpRequest, exc: request_services.RequestStale) -> HttpResponse:
    """412: the request changed since its ETag was read; here it is now."""
    return changed_since_read("request", _out(exc.current), etag(exc.current))


IF_MATCH = Header("", alias="If-Match", description="The request's `ETag` as read")


@router.get("/{pk}", response={200: RequestOut} | READ_ERRORS, summary="Get a request")
def request_get(request: ApiRequest, response: HttpResponse, pk: int) -> dict[str, Any]:
    """A request you asked for or may decide, with its `ETag`: decide with it as
    `If-Match` to decide only what you read (412 otherwise, with the request now)."""
    asked, _ = request_selectors.request_for_viewer(user=request.user, pk=pk)
    response["ETag"] = etag(asked)
    return _out(asked)


@router.post(
    "/{pk}/approve",
    response={200: RequestOut, 412: Problem} | WRITE_ERRORS,
    summary="Approve a request",
)
def request_approve(
    request: ApiRequest,
    pk: int,
    adjust: Adjustments,
    dry_run: bool = False,
    if_match: str = IF_MATCH,
) -> dict[str, Any]:
    """Approve, with any adjustments, and make the room (its requester its Manager); with
    `dry_run=true`, checked and shown as it would be approved."""
    actor = request.user
    asked, _ = request_selectors.request_for_viewer(user=actor, pk=pk)  # 404 / 403 first
    changes = adjust.model_dump(exclude_none=True)
    if "privacy" in changes:
        changes["privacy"] = Privacy(changes["privacy"])
    if "invitations" in changes:
        changes["invitations"] = Invitations(changes["invitations"])
    settings = replace(request_services.request_settings(asked), **changes)
    if dry_run:
        request_services.request_decision_check(actor=actor, pk=asked.pk, settings=settings)
        return _out(asked) | adjust.model_dump(exclude_none=True)
    writes(request)
    return _out(
        request_services.request_approve(
            actor=actor, pk=asked.pk, settings=settings, version=version_of(if_match)
        )
    )


@router.post(
    "/{pk}/decline",
    response={200: RequestOut, 412: Problem} | WRITE_ERRORS,
    summary="Decline a request",
)
def request_decline(
    request: ApiRequest,
    pk: int,
    decline: Decline,
    dry_run: bool = False,
    if_match: str = IF_MATCH,
) -> dict[str, Any]:
    """Decline, saying why; with `dry_run=true`, only checked."""
    actor = request.user
    if dry_run:
        asked = request_services.request_decision_check(actor=actor, pk=pk)
        return _out(asked) | {"decision_reason": decline.reason}
    writes(request)
    return _out(
        request_services.request_decline(
            actor=actor, pk=pk, reason=decline.reason, version=version_of(if_match)
        )
    )
