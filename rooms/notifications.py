"""E-mail about room requests and requests to join, through the outbox (rooms.outbox):
recorded, delivered with Django's mail settings, tried again, and shown on the pages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from django.conf import settings

from accounts.models import User
from rooms import outbox
from rooms.backend.errors import ChatBackendError
from rooms.backend.records import Category
from rooms.index import chat_backend
from rooms.models import JoinRequest, RoomRequest


def _addresses(chat_ids: Iterable[str], known: Iterable[str] = ()) -> list[str]:
    """E-mail addresses of these people, as the chat server knows them, and any known."""
    addresses = [address for address in known if address]
    for chat_id in chat_ids:
        with contextlib.suppress(ChatBackendError):  # one unreachable person stops no mail
            addresses += chat_backend().get_user(chat_id).emails
    return sorted(set(addresses))


def request_submitted(request: RoomRequest, category: Category) -> None:
    """Tell the category's Creators, and the portal administrators, of a new request."""
    administrators = User.objects.filter(is_portal_admin=True).values_list("email", flat=True)
    outbox.post(
        f"Room request: “{request.name}” in {request.category_label}",
        f"{request.requester.label} asks for a room “{request.name}” in the category "
        f"“{request.category_label}”.\n\nWhy: {request.justification}\n\n"
        f"Review it: {settings.PORTAL_URL}/requests/{request.pk}/\n",
        _addresses(sorted(category.creators), administrators),
        about=outbox.about("request", request.pk),
    )


def request_decided(request: RoomRequest) -> None:
    Status = RoomRequest.Status
    if request.status == Status.CREATED:
        subject = f"Your room “{request.name}” is ready"
        body = (
            f"Your request was approved and the room “{request.name}” was created. You are "
            f"its Manager.\n\nOpen it: {settings.PORTAL_URL}/rooms/{request.room_id}/\n"
        )
    elif request.status == Status.DECLINED:
        subject = f"Your room request “{request.name}” was declined"
        body = f"Your request was declined.\n\nReason: {request.decision_reason}\n"
    elif request.status == Status.EXPIRED:
        subject = f"Your room request “{request.name}” expired"
        body = "Nobody decided your request in time. You may ask again.\n"
    else:
        return
    requester = request.requester
    outbox.post(
        subject,
        body,
        _addresses([requester.chat_id] if requester.chat_id else [], [requester.email]),
        about=outbox.about("request", request.pk),
        person=requester,
    )


def join_request_decided(request: JoinRequest, *, room_name: str) -> None:
    """Tell the person whether they were let into the room they asked to join."""
    if request.status == JoinRequest.Status.ACCEPTED:
        subject = f"You were let into “{room_name}”"
        body = f"A Manager let you into the room “{room_name}”: it is in your chat client now."
    else:
        subject = f"Your request to join “{room_name}” was turned down"
        body = f"A Manager of the room “{room_name}” turned down your request to join it."
        if request.decision_reason:
            body += f"\n\nThe reason given: {request.decision_reason}"
    person = request.requester
    outbox.post(
        subject,
        body,
        _addresses([person.chat_id] if person.chat_id else [], [person.email]),
        about=outbox.about("join", request.pk),
        person=person,
    )
