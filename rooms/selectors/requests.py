"""Reads of the requests area: what a person may see of room requests, and the approval
queue of the categories where they are a Creator."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from accounts.models import User
from rooms import index
from rooms.backend.records import Category
from rooms.index import chat_backend
from rooms.models import RoomRequest
from rooms.permissions import can_create_in


def categories_for_requests(*, user: User) -> list[Category]:
    """The categories in whose scope the person is: where they may ask for a room."""
    if user.is_administrator:
        return chat_backend().list_categories()
    return index.categories(index.category_ids_in_scope(user.chat_id or ""))


def approval_queue(*, user: User) -> QuerySet[RoomRequest]:
    """Pending requests this person may decide, oldest first."""
    pending = RoomRequest.objects.filter(status=RoomRequest.Status.PENDING).select_related(
        "requester"
    )
    if user.is_administrator:
        return pending
    if not user.chat_id:
        return pending.none()
    mine = index.category_ids_with_create_rights(user.chat_id)
    return pending.filter(category_id__in=mine).exclude(requester=user)


def request_for_viewer(*, user: User, pk: int) -> tuple[RoomRequest, bool]:
    """A request the person asked for or may decide, and whether they may decide it."""
    request = RoomRequest.objects.select_related("requester", "decided_by").filter(pk=pk).first()
    if request is None:
        raise RoomRequest.DoesNotExist
    if user.is_administrator:
        return request, True
    category = chat_backend().get_category(request.category_id)
    may_decide = can_create_in(user, category) and request.requester_id != user.pk
    if request.requester_id != user.pk and not may_decide:
        raise PermissionDenied("This request is neither yours nor one you may decide.")
    return request, may_decide
