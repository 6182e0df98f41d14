"""Self-service room requests: ask for a room, and approvers grant or decline.

Approval creates the room through the same service as direct creation (room_create),
with the request's own token as the form submission: retrying after a chat server
failure returns the room made the first time instead of making a second one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict
from datetime import timedelta
from typing import Any, TypedDict

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from portal.audit import AuditScope, audit_record, audited
from portal.models import Outcome
from rooms import index, notifications
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.records import Category, Invitations, Privacy, Room, RoomSettings
from rooms.chatserver.text import clean
from rooms.index import chat_backend
from rooms.models import RoomRequest
from rooms.permissions import can_create_in, can_manage
from rooms.selectors import Hidden, NotFound
from rooms.selectors.requests import NO_SUCH_REQUEST, request_for_viewer
from rooms.services import rooms as room_services

Status = RoomRequest.Status


class RequestConflict(Exception):
    """Someone else acted on the request first; the message says what happened."""


def request_settings(request: RoomRequest) -> RoomSettings:
    return RoomSettings(
        name=request.name,
        description=request.description,
        category_id=request.category_id,
        privacy=Privacy(request.privacy),
        auditorium=request.auditorium,
        invitations=Invitations(request.invitations),
    )


def _values(request: RoomRequest) -> dict[str, Any]:
    return {k: str(v) for k, v in asdict(request_settings(request)).items()} | {
        "status": request.status,
        "justification": request.justification,
    }


def request_version(request: RoomRequest) -> str:
    """Changes whenever the request does: edited by its requester, decided."""
    values = _values(request) | {"decision_reason": request.decision_reason}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


class RequestStale(Exception):
    """The request changed since the version the decision was asked against."""

    def __init__(self, current: RoomRequest) -> None:
        super().__init__("This request changed since it was read.")
        self.current = current


def _still_at(request: RoomRequest, version: str | None) -> None:
    if version is not None and version != request_version(request):
        raise RequestStale(request)


class Target(TypedDict):
    target_kind: str
    target_id: str
    target_label: str
    category_id: str
    category_label: str


def _target(request: RoomRequest) -> Target:
    """How an audit entry names the request it is about."""
    return {
        "target_kind": "request",
        "target_id": str(request.pk or ""),
        "target_label": request.name,
        "category_id": request.category_id,
        "category_label": request.category_label,
    }


def _scope(scope: AuditScope, request: RoomRequest) -> None:
    target = _target(request)
    scope.target_id, scope.target_label = target["target_id"], target["target_label"]
    scope.category_id, scope.category_label = target["category_id"], target["category_label"]


def pending_name_taken(name: str, *, category_id: str, exclude_pk: int | None = None) -> bool:
    """Whether another pending request in this category already asks for this name, in
    any letter case. Other categories' requests are not looked at: the asker may not see
    them, and the answer must not tell. Should two categories' requests ask for one name,
    the second approval meets it taken, and its approver chooses another."""
    pending = RoomRequest.objects.filter(
        status=Status.PENDING, category_id=category_id, name__iexact=name.strip()
    )
    if exclude_pk is not None:
        pending = pending.exclude(pk=exclude_pk)
    return pending.exists()


def request_name_problem(name: str, *, category_id: str, exclude_pk: int | None = None) -> str:
    """A room name's problem, including being asked for in another pending request of
    the category."""
    problem = room_services.name_problem(name)
    if not problem and pending_name_taken(name, category_id=category_id, exclude_pk=exclude_pk):
        problem = room_services.name_unavailable(name)
    return problem


def name_check(
    *,
    actor: User,
    name: str,
    category_id: str = "",
    room_id: str = "",
    for_request: bool = False,
    request_pk: int | None = None,
) -> str:
    """The live name check, for people who may use its answer: a room's Managers
    renaming it, Creators creating in a category, people asking for a room in a
    category of their scope (their own request, when editing one). Anyone else is
    refused: the check must not tell strangers which names exist."""
    client = chat_backend()
    if room_id:
        try:
            room = client.get_room(room_id)
        except ChatNotFound:
            raise PermissionDenied("You may only check names of rooms you manage.") from None
        if not can_manage(actor, room):
            raise PermissionDenied("You may only check names of rooms you manage.")
        return room_services.name_problem(name, exclude_room_id=room.id)
    if (
        for_request
        and request_pk is not None
        and not RoomRequest.objects.filter(pk=request_pk, requester=actor).exists()
    ):
        raise PermissionDenied("You may only check names for your own requests.")
    if not _may_name_in(actor, category_id, for_request=for_request):
        raise PermissionDenied("You may not create or ask for rooms in that category.")
    if for_request:
        return request_name_problem(name, category_id=category_id, exclude_pk=request_pk)
    return room_services.name_problem(name)


def _may_name_in(actor: User, category_id: str, *, for_request: bool) -> bool:
    """Whether the person may create (or ask for) rooms in the chosen category, or, with
    none chosen yet, in any: one query of the index by person."""
    if actor.is_administrator:
        return True
    if not actor.chat_id:
        return False
    allowed = (
        index.category_ids_in_scope(actor.chat_id)
        if for_request
        else index.category_ids_with_create_rights(actor.chat_id)
    )
    if category_id:
        allowed = allowed.filter(category=category_id)
    return allowed.exists()


def _check(user: User, settings: RoomSettings, *, exclude_pk: int | None = None) -> Category:
    category = chat_backend().get_category(settings.category_id)
    if not (user.chat_id and category.in_scope(user.chat_id)) and not user.is_administrator:
        raise PermissionDenied(f"You are not in the scope of the category “{category.name}”.")
    problem = request_name_problem(
        settings.name, category_id=settings.category_id, exclude_pk=exclude_pk
    )
    if problem:
        raise room_services.RoomSettingsInvalid("name", problem)
    return category


def request_submit(
    *,
    actor: User,
    settings: RoomSettings,
    justification: str,
    submission: uuid.UUID | None = None,
) -> RoomRequest:
    """Ask for a room in a category in whose scope the person is. The same form posted
    again (the same `submission` token) returns the request made the first time."""
    if submission is not None:
        earlier = RoomRequest.objects.filter(token=submission).first()
        if earlier is not None:
            return _submitted_before(earlier, actor)
    with audited(
        "request.submitted",
        actor=actor,
        target_kind="request",
        target_label=settings.name,
        category_id=settings.category_id,
    ) as scope:
        category = _check(actor, settings)
        token = submission or uuid.uuid4()
        try:
            with transaction.atomic():
                request = RoomRequest.objects.create(
                    token=token,
                    requester=actor,
                    category_id=category.id,
                    category_label=category.name,
                    name=clean(settings.name),
                    description=settings.description,
                    privacy=settings.privacy,
                    auditorium=settings.auditorium,
                    invitations=settings.invitations,
                    justification=justification,
                )
        except IntegrityError:  # the same form, posted twice at once: the other post made it
            request = _submitted_before(RoomRequest.objects.get(token=token), actor)
            _scope(scope, request)
            scope.after = {"sent again": True}  # nothing made: the request the other made
            return request
        _scope(scope, request)
        scope.after = _values(request)
    notifications.request_submitted(request, category)
    return request


def submitted_request(*, actor: User, submission: str) -> RoomRequest | None:
    """The request an earlier post of this same form made, or None (posted twice)."""
    try:
        token = uuid.UUID(submission)
    except ValueError:
        return None
    return RoomRequest.objects.filter(token=token, requester=actor).first()


def _submitted_before(earlier: RoomRequest, actor: User) -> RoomRequest:
    """The request a form posted earlier made; another person's token is refused."""
    if earlier.requester_id != actor.pk:
        refused = "This form cannot be sent: reload the page and fill it in again."
        audit_record(
            action="request.submitted",
            outcome=Outcome.FAILED,
            actor=actor,
            target_kind="request",
            error=f"{refused} (another person's form)",
        )
        raise room_services.RoomSettingsInvalid("", refused)
    return earlier


def _found(actor: User, pk: int, scope: AuditScope, *, lock: bool = True) -> RoomRequest:
    """The request, if this person asked for it or may decide it: anyone else is told
    it is not there, exactly as for an ID that is not (and the refusal is recorded)."""
    scope.target_id = str(pk)
    found = RoomRequest.objects.select_related("requester")
    request = (found.select_for_update() if lock else found).filter(pk=pk).first()
    if request is None:
        raise NotFound(NO_SUCH_REQUEST)
    _scope(scope, request)
    if request.requester_id != actor.pk and not can_create_in(
        actor, chat_backend().get_category(request.category_id)
    ):
        raise Hidden(NO_SUCH_REQUEST)
    return request


def _pending(request: RoomRequest) -> None:
    if request.status != Status.PENDING:
        who = f" by {request.decided_by.label}" if request.decided_by else ""
        raise RequestConflict(
            f"This request is no longer pending: it was {request.get_status_display().lower()}"
            f"{who}."
        )


def request_edit(
    *, actor: User, pk: int, settings: RoomSettings, justification: str
) -> RoomRequest:
    """The requester changes a pending request."""
    with audited("request.edited", actor=actor, target_kind="request") as scope:
        with transaction.atomic():
            request = _found(actor, pk, scope)
            scope.before = _values(request)
            if request.requester_id != actor.pk:
                raise PermissionDenied("Only the person who asked may change the request.")
            _pending(request)
            category = _check(actor, settings, exclude_pk=request.pk)
            request.category_id, request.category_label = category.id, category.name
            request.name, request.description = clean(settings.name), settings.description
            request.privacy, request.auditorium = settings.privacy, settings.auditorium
            request.invitations, request.justification = settings.invitations, justification
            request.save()
        scope.after = _values(request)
        return request


def request_cancel(*, actor: User, pk: int) -> RoomRequest:
    """The requester withdraws a pending request."""
    with audited("request.cancelled", actor=actor, target_kind="request") as scope:
        with transaction.atomic():
            request = _found(actor, pk, scope)
            if request.requester_id != actor.pk:
                raise PermissionDenied("Only the person who asked may cancel the request.")
            _pending(request)
            request.status = Status.CANCELLED
            request.save(update_fields=["status", "updated_at"])
        return request


def _approver_check(actor: User, request: RoomRequest) -> Category:
    category = chat_backend().get_category(request.category_id)
    if not can_create_in(actor, category):
        raise PermissionDenied(
            f"Only Creators of “{category.name}” and portal administrators decide this request."
        )
    if request.requester_id == actor.pk and not actor.is_administrator:
        raise PermissionDenied("You cannot approve your own request.")
    return category


def request_approve(
    *, actor: User, pk: int, settings: RoomSettings, version: str | None = None
) -> RoomRequest:
    """Approve a pending request, with the approver's adjustments, and create its room
    (with `version`, only if the request is still at it: `RequestStale` otherwise)."""
    with (
        audited("request.approved", actor=actor, target_kind="request") as scope,
        transaction.atomic(),
    ):
        request = _found(actor, pk, scope)
        scope.before = _values(request)
        _approver_check(actor, request)
        _still_at(request, version)
        _pending(request)
        if settings.category_id != request.category_id:
            raise room_services.RoomSettingsInvalid(
                "category", "An approver keeps the category the request was made in."
            )
        problem = room_services.name_problem(settings.name)
        if problem:
            raise room_services.RoomSettingsInvalid("name", problem)
        asked = request.settings_now()
        request.name, request.description = clean(settings.name), settings.description
        request.privacy, request.auditorium = settings.privacy, settings.auditorium
        request.invitations = settings.invitations
        if request.settings_now() != asked:
            request.asked = asked  # the page goes on showing what was asked for
        request.status, request.decided_by = Status.APPROVED, actor
        request.decided_at = timezone.now()
        request.save()
        scope.after = _values(request)
    return _create_room(actor, request)


def request_submit_check(*, actor: User, settings: RoomSettings) -> Category:
    """What `request_submit` checks, for a what-if: nothing is asked or audited."""
    return _check(actor, settings)


def request_decision_check(
    *, actor: User, pk: int, settings: RoomSettings | None = None
) -> RoomRequest:
    """What deciding a request checks (approving, with `settings`), for a what-if."""
    request, _ = request_for_viewer(user=actor, pk=pk)
    _approver_check(actor, request)
    _pending(request)
    if settings is not None:
        if settings.category_id != request.category_id:
            raise room_services.RoomSettingsInvalid(
                "category", "An approver keeps the category the request was made in."
            )
        problem = room_services.name_problem(settings.name)
        if problem:
            raise room_services.RoomSettingsInvalid("name", problem)
    return request


def request_retry(*, actor: User, pk: int) -> RoomRequest:
    """Try again to create the room of an approved request whose creation failed."""
    with audited("request.retried", actor=actor, target_kind="request") as scope:
        request = _found(actor, pk, scope, lock=False)
        _approver_check(actor, request)
        if request.status != Status.APPROVED:
            raise RequestConflict(
                f"Only an approved request waiting for its room can be retried; this one is "
                f"{request.get_status_display().lower()}."
            )
    return _create_room(actor, request)


def _create_room(actor: User, request: RoomRequest) -> RoomRequest:
    """Create the requested room for its requester; a failure keeps it approved, with the error."""
    try:
        room: Room = room_services.room_create(
            actor=actor,
            settings=request_settings(request),
            submission=request.token,
            owner=request.requester,
        )
    except (
        ChatBackendError,
        room_services.RoomSettingsInvalid,
        room_services.SubmissionInProgress,
        PermissionDenied,
    ) as exc:
        request.error = str(exc)
        request.save(update_fields=["error", "updated_at"])
        audit_record(
            action="request.creation_failed",
            outcome=Outcome.FAILED,
            actor=actor,
            error=request.error,
            **_target(request),
        )
        return request
    request.status, request.room_id, request.error = Status.CREATED, room.id, ""
    request.save(update_fields=["status", "room_id", "error", "updated_at"])
    audit_record(
        action="request.created", actor=actor, after={"room_id": room.id}, **_target(request)
    )
    notifications.request_decided(request)
    return request


def request_decline(
    *, actor: User, pk: int, reason: str, version: str | None = None
) -> RoomRequest:
    """Decline a pending request, saying why (with `version`, only if it is still at it)."""
    with (
        audited("request.declined", actor=actor, target_kind="request") as scope,
        transaction.atomic(),
    ):
        request = _found(actor, pk, scope)
        _approver_check(actor, request)
        _still_at(request, version)
        _pending(request)
        request.status, request.decided_by = Status.DECLINED, actor
        request.decided_at, request.decision_reason = timezone.now(), reason
        request.save()
        scope.after = {"status": request.status, "reason": reason}
    notifications.request_decided(request)
    return request


def requests_expire(*, older_than_days: int) -> list[RoomRequest]:
    """Expire pending requests nobody decided within the given number of days."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    expired = []
    stale = RoomRequest.objects.filter(status=Status.PENDING, created_at__lt=cutoff)
    for pk in stale.values_list("pk", flat=True):
        with transaction.atomic():
            request = RoomRequest.objects.select_for_update().get(pk=pk)
            if request.status != Status.PENDING:
                continue  # decided meanwhile
            request.status = Status.EXPIRED
            request.save(update_fields=["status", "updated_at"])
        with audited("request.expired", actor=None, target_kind="request") as scope:
            _scope(scope, request)
            scope.after = {"status": request.status, "older_than_days": older_than_days}
        notifications.request_decided(request)
        expired.append(request)
    return expired
