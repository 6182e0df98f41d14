"""Reads of the requests area: what a person may see of room requests, and the approval
queue of the categories where they are a Creator."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from accounts.models import User
from rooms import index
from rooms.backend.records import Category, Room, person_label
from rooms.index import chat_backend
from rooms.models import IndexedRoom, JoinRequest, Mail, RoomPerson, RoomRequest
from rooms.permissions import can_create_in
from rooms.selectors import Hidden, NotFound

NO_SUCH_REQUEST = "There is no such request, or it is not yours."


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
        raise NotFound(NO_SUCH_REQUEST)
    if user.is_administrator:
        return request, True
    category = chat_backend().get_category(request.category_id)
    may_decide = can_create_in(user, category) and request.requester_id != user.pk
    if request.requester_id != user.pk and not may_decide:
        raise Hidden(NO_SUCH_REQUEST)
    return request, may_decide


@dataclass(frozen=True)
class Asking:
    """Someone waiting to be let into a room: a portal request (with its message) or a
    knock from their chat client."""

    room_id: str
    room_name: str
    person: str
    # Their display name: the portal account's for a request, the knock's member event's
    # for a knock ("" when neither names them).
    name: str = ""
    message: str = ""
    knocked: bool = False

    @property
    def label(self) -> str:
        return person_label(self.person, self.name)


def _managed_room_ids(user: User) -> QuerySet[RoomPerson, str] | None:
    """The rooms whose join requests this person decides (None: every room)."""
    if user.is_administrator:
        return None
    return RoomPerson.objects.filter(
        user_id=user.chat_id or "", role=RoomPerson.Role.MANAGER
    ).values_list("room_id", flat=True)


def join_queue(*, user: User) -> list[Asking]:
    """People asking to join rooms this person manages (every room, for administrators),
    read from the portal's tables and the index, oldest portal requests first."""
    rooms = _managed_room_ids(user)
    requests = JoinRequest.objects.filter(status=JoinRequest.Status.PENDING).select_related(
        "requester"
    )
    knocks = RoomPerson.objects.filter(role=RoomPerson.Role.KNOCKING)
    if rooms is not None:
        requests, knocks = requests.filter(room_id__in=rooms), knocks.filter(room_id__in=rooms)
    rooms_named = {
        room_id: (name, people)
        for room_id, name, people in IndexedRoom.objects.filter(
            room_id__in={r.room_id for r in requests} | {k.room_id for k in knocks}
        ).values_list("room_id", "name", "names")
    }
    queue = [
        Asking(
            r.room_id,
            rooms_named.get(r.room_id, (r.room_id, {}))[0],
            r.requester.chat_id or "",
            name=r.requester.display_name,
            message=r.message,
        )
        for r in requests.order_by("created_at")
    ]
    for k in knocks.order_by("user_id"):
        room_name, people = rooms_named.get(k.room_id, (k.room_id, {}))
        queue.append(
            Asking(k.room_id, room_name, k.user_id, name=people.get(k.user_id, ""), knocked=True)
        )
    return sorted(queue, key=lambda a: (a.room_name.casefold(), a.room_id))  # by room


def asking_to_join(*, room: Room) -> list[Asking]:
    """The people waiting to be let into this room (for its Managers): portal requests,
    oldest first, then knocks from chat clients, each with their display name."""
    requests = (
        JoinRequest.objects.filter(room_id=room.id, status=JoinRequest.Status.PENDING)
        .select_related("requester")
        .order_by("created_at")
    )
    asked = [
        Asking(
            room.id,
            room.name,
            r.requester.chat_id or "",
            name=r.requester.display_name,
            message=r.message,
        )
        for r in requests
    ]
    asked += [
        Asking(room.id, room.name, person, name=room.names.get(person, ""), knocked=True)
        for person in sorted(room.knocking)
    ]
    return asked


def _waiting(user: User) -> list[QuerySet[Any]]:
    """What the badge counts: the room requests this person decides, the portal requests
    to join their rooms and the knocks on them."""
    rooms = _managed_room_ids(user)
    requests = JoinRequest.objects.filter(status=JoinRequest.Status.PENDING)
    knocks = RoomPerson.objects.filter(role=RoomPerson.Role.KNOCKING)
    if rooms is not None:
        requests, knocks = requests.filter(room_id__in=rooms), knocks.filter(room_id__in=rooms)
    return [approval_queue(user=user).order_by(), requests, knocks]


# The badge is counted on every page. Building its three counts with the ORM took 1.4 ms
# of a 4.6 ms room page and running them 0.05 ms, so the ORM builds them once per process,
# as one statement, for a stand-in person, and each page runs it with the person's values.
_STAND_IN_ID = "@\x00stand-in"
_STAND_IN_PK = -1


@functools.cache
def _waiting_statement() -> tuple[str, tuple[Any, ...]]:
    parts: list[str] = []
    params: list[Any] = []
    for queryset in _waiting(User(pk=_STAND_IN_PK, chat_id=_STAND_IN_ID)):
        sql, values = queryset.values("pk").query.sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) waiting)")
        params += values
    return "SELECT " + " + ".join(parts), tuple(params)


def waiting_count(*, user: User) -> int:
    """How many room requests and people wait for this person's decision (the badge)."""
    if user.is_administrator or not user.chat_id:
        return sum(queryset.count() for queryset in _waiting(user))
    sql, params = _waiting_statement()
    values = [
        user.chat_id if v == _STAND_IN_ID else user.pk if v == _STAND_IN_PK else v for v in params
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        (count,) = cursor.fetchone()
    return int(count)


def mails_about(request: RoomRequest) -> QuerySet[Mail]:
    """The e-mail the request caused (to its approvers, to its requester), newest first."""
    return Mail.objects.filter(about=f"request:{request.pk}")
