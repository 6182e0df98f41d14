"""Room roles: who may hold Member, Manager and Presenter, and giving and taking them.

The rules (docs/architecture.md §3): everyone in the category's scope; Presenters only in
auditoriums and only from the Members; Open rooms have no member list; the last Manager
stays unless an administrator removes them. One audit entry per person per change.
"""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from portal.audit import AuditScope, audit_record, audited
from portal.models import Outcome
from rooms import index, notifications
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.records import Category, Privacy, Role, Room, is_chat_id
from rooms.index import chat_backend
from rooms.locks import one_writer
from rooms.models import BulkRun, JoinRequest
from rooms.permissions import can_manage

MAX_BULK_LINES = 1000
BULK_CHUNK = 50


class RoleRefused(PermissionDenied):
    """A role change breaks one of the rules; the message says which and why.

    A kind of PermissionDenied, so its audit entry is recorded as denied.
    """


def role_problem(room: Room, category: Category, role: Role, user_id: str) -> str:
    """Why this person cannot get this role in this room, or "" if they can."""
    if not category.in_scope(user_id):
        return f"{user_id} is not in the scope of the category “{category.name}”."
    if role is Role.MEMBER and room.settings.privacy is Privacy.OPEN:
        return (
            "Open rooms have no member list: everyone in the category can join. "
            "Make the room Closed or Secret to choose its members."
        )
    if role is Role.PRESENTER:
        if not room.settings.auditorium:
            return "Presenters exist only in auditorium rooms."
        if room.settings.privacy is not Privacy.OPEN and user_id not in room.members:
            return f"{user_id} must be a Member before becoming a Presenter."
    return ""


def room_for_roles(
    actor: User, room_id: str, scope: AuditScope | None = None
) -> tuple[Room, Category]:
    client = chat_backend()
    room = client.get_room(room_id)
    category = client.get_category(room.settings.category_id)
    if scope is not None:
        scope.target_label, scope.category_id = room.name, category.id
        scope.category_label = category.name
    if not can_manage(actor, room):
        raise PermissionDenied("Only the room's Managers and portal administrators change roles.")
    return room, category


def role_add(*, actor: User, room_id: str, role: Role, user_id: str, request_id: str = "") -> Room:
    """Give one person a role in a room (`request_id` as for `role_remove`)."""
    with (
        audited(
            f"role.add.{role}",
            actor=actor,
            target_kind="room",
            target_id=room_id,
            after={"person": user_id, "role": str(role)},
            request_id=request_id,
        ) as scope,
        one_writer(room_id),
    ):
        room, category = room_for_roles(actor, room_id, scope)
        if user_id in room.principals(role):
            return room
        person = chat_backend().get_user(user_id)  # unknown people are refused, not invited
        problem = role_problem(room, category, role, user_id)
        if problem:
            raise RoleRefused(problem)
        chat_backend().add_to_role(room.id, role, [user_id])
        index.remember_names(room.id, {user_id: person.display_name})
        if role is Role.MEMBER:
            _decide_join_requests(actor, room, user_id, accepted=True)
        return chat_backend().get_room(room.id)


def role_remove(
    *, actor: User, room_id: str, role: Role, user_id: str, request_id: str = ""
) -> Room:
    """Take a role away from one person in a room (`request_id` links the entry to the
    larger change it is part of)."""
    with (
        audited(
            f"role.remove.{role}",
            actor=actor,
            target_kind="room",
            target_id=room_id,
            before={"person": user_id, "role": str(role)},
            request_id=request_id,
        ) as scope,
        one_writer(room_id),
    ):
        room, _ = room_for_roles(actor, room_id, scope)
        if user_id not in room.principals(role):
            raise RoleRefused(f"{user_id} is not a {role.label} of this room.")
        if role is Role.MANAGER and room.managers == {user_id} and not actor.is_administrator:
            raise RoleRefused(
                "A room keeps at least one Manager: add another Manager first, or ask a "
                "portal administrator."
            )
        client = chat_backend()
        if role is Role.MEMBER and user_id in room.presenters:
            client.remove_from_role(room.id, Role.PRESENTER, [user_id])  # Presenters are Members
        client.remove_from_role(room.id, role, [user_id])
        return client.get_room(room.id)


def _still_asking(room: Room, user_id: str) -> bool:
    """Whether the person waits to be let in: a knock, or a request through the portal."""
    return user_id in room.knocking or _waiting(room.id, user_id).exists()


def _waiting(room_id: str, user_id: str) -> QuerySet[JoinRequest]:
    return JoinRequest.objects.filter(
        room_id=room_id, requester__chat_id=user_id, status=JoinRequest.Status.PENDING
    )


def _no_longer_asking(room: Room, user_id: str) -> RoleRefused:
    """What someone deciding a request that was already decided is told."""
    last = (
        JoinRequest.objects.filter(room_id=room.id, requester__chat_id=user_id)
        .exclude(status=JoinRequest.Status.PENDING)
        .select_related("decided_by")
        .order_by("-decided_at")
        .first()
    )
    if last is not None and last.decided_by is not None:
        return RoleRefused(
            f"{user_id} is no longer asking to join: {last.decided_by.label} "
            f"{last.get_status_display().lower()} {_them(last)} already."
        )
    if user_id in room.members:
        return RoleRefused(f"{user_id} is no longer asking to join: they are a Member already.")
    return RoleRefused(f"{user_id} is not asking to join this room.")


def _them(request: JoinRequest) -> str:
    return "them in" if request.status == JoinRequest.Status.ACCEPTED else "them down"


def join_accept(*, actor: User, room_id: str, user_id: str) -> Room:
    """Let in someone asking to join (a knock or a portal request): the Member role, by
    invitation or directly as the room says. Refused, and told, when another Manager has
    decided meanwhile; someone who left the category's scope is turned down automatically."""
    with audited(
        "room.join_request.accepted",
        actor=actor,
        target_kind="room",
        target_id=room_id,
        after={"person": user_id, "role": str(Role.MEMBER)},
    ) as scope:
        with one_writer(room_id):
            room, category = room_for_roles(actor, room_id, scope)
            if not _still_asking(room, user_id):
                raise _no_longer_asking(room, user_id)
            if category.in_scope(user_id):
                chat_backend().add_to_role(room.id, Role.MEMBER, [user_id])
                _decide_join_requests(actor, room, user_id, accepted=True)
                return chat_backend().get_room(room.id)
        _turn_away(actor, room, category, user_id)  # its own entry, kept when this is refused
        raise RoleRefused(
            f"{user_id} is no longer in the scope of the category “{category.name}”, so "
            "they cannot be let in: their request was turned down automatically."
        )


def _turn_away(actor: User, room: Room, category: Category, user_id: str) -> None:
    """Decline the request of someone outside the scope, audited on its own."""
    reason = "outside the category's scope"
    with (
        audited(
            "room.join_request.declined",
            actor=actor,
            target_kind="room",
            target_id=room.id,
            target_label=room.name,
            category_id=category.id,
            category_label=category.name,
            after={"person": user_id, "reason": reason},
        ),
        one_writer(room.id),
    ):
        if user_id in room.knocking:
            chat_backend().remove_from_role(room.id, Role.MEMBER, [user_id])
        _decide_join_requests(actor, room, user_id, accepted=False, reason=reason)


def join_decline(*, actor: User, room_id: str, user_id: str, reason: str = "") -> Room:
    """Turn down someone asking to join, by a knock from their chat client (the chat
    server rejects it) or a request through the portal; they are told by e-mail, with
    the reason when one is given."""
    with (
        audited(
            "room.join_request.declined",
            actor=actor,
            target_kind="room",
            target_id=room_id,
            after={"person": user_id} | ({"reason": reason} if reason else {}),
        ) as scope,
        one_writer(room_id),
    ):
        room, _ = room_for_roles(actor, room_id, scope)
        if not _still_asking(room, user_id):
            raise _no_longer_asking(room, user_id)
        if user_id in room.knocking:
            chat_backend().remove_from_role(room.id, Role.MEMBER, [user_id])
        _decide_join_requests(actor, room, user_id, accepted=False, reason=reason)
        return chat_backend().get_room(room.id)


def _decide_join_requests(
    actor: User | None, room: Room, user_id: str, *, accepted: bool, reason: str = ""
) -> None:
    """Close the person's waiting request to join this room, and tell them by e-mail."""
    for request in _waiting(room.id, user_id).select_related("requester"):
        request.status = JoinRequest.Status.ACCEPTED if accepted else JoinRequest.Status.DECLINED
        request.decided_by, request.decided_at = actor, timezone.now()
        request.decision_reason = reason
        request.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        notifications.join_request_decided(request, room_name=room.name)


# --- bulk add ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkLine:
    line: str
    user_id: str
    fate: str  # add, has, duplicate, malformed, unknown, refused
    reason: str

    @property
    def will_add(self) -> bool:
        return self.fate == "add"


FATE_LABELS = {
    "add": "Will be added",
    "has": "Already has the role",
    "duplicate": "Duplicate line",
    "malformed": "Not a chat ID",
    "unknown": "Unknown person",
    "refused": "Not allowed",
}


class NotAChatId(ValueError):
    """What was typed for a person is not a chat ID (nor a name alone on this server)."""


def chat_id_of(typed: str) -> str:
    """The one reading of a person typed anywhere (pages, API, roomctl): a chat ID as
    given (@alice:example.org), or a name alone (alice) on this chat server; `NotAChatId`,
    saying so, for anything else."""
    user_id = chat_backend().user_id_for(typed)
    if not is_chat_id(user_id):
        raise NotAChatId(
            f"“{typed.strip()}” is not a chat ID: chat IDs look like @name:server "
            "(or name alone, on this chat server)."
        )
    return user_id


def parse_people(text: str) -> list[str]:
    """Chat IDs pasted one per line or separated by commas or semicolons."""
    return [item.strip() for item in re.split(r"[\n,;]+", text) if item.strip()]


def _known(user_ids: list[str]) -> set[str]:
    def exists(user_id: str) -> str:
        try:
            chat_backend().get_user(user_id)  # this thread's own client
        except ChatNotFound:
            return ""
        return user_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        return {found for found in pool.map(exists, user_ids) if found}


def bulk_preview(*, actor: User, room_id: str, role: Role, text: str) -> list[BulkLine]:
    """Each pasted line's fate, before anything changes."""
    room, category = room_for_roles(actor, room_id)
    items = parse_people(text)
    if len(items) > MAX_BULK_LINES:
        raise RoleRefused(
            f"At most {MAX_BULK_LINES} people at once (this list has {len(items)}). "
            "Split the list and add it in parts; nothing was changed."
        )
    client = chat_backend()
    normalised = [client.user_id_for(item) for item in items]
    known = _known(sorted({u for u in normalised if is_chat_id(u)}))
    seen: set[str] = set()
    preview = []
    for item, user_id in zip(items, normalised, strict=True):
        if not is_chat_id(user_id):
            preview.append(BulkLine(item, "", "malformed", "Chat IDs look like @name:server."))
        elif user_id.casefold() in seen:
            preview.append(BulkLine(item, user_id, "duplicate", "Listed earlier."))
        elif user_id not in known:
            preview.append(BulkLine(item, user_id, "unknown", "No such person on the chat server."))
        elif user_id in room.principals(role):
            preview.append(BulkLine(item, user_id, "has", f"Already a {role.label}."))
        elif problem := role_problem(room, category, role, user_id):
            preview.append(BulkLine(item, user_id, "refused", problem))
        else:
            preview.append(BulkLine(item, user_id, "add", ""))
        seen.add(user_id.casefold())
    return preview


def bulk_start(*, actor: User, room_id: str, role: Role, text: str) -> BulkRun:
    """Check the list again and record the run; `bulk_step` then applies it."""
    request_id = uuid.uuid4().hex
    with audited(
        f"role.bulk.{role}",
        actor=actor,
        target_kind="room",
        target_id=room_id,
        request_id=request_id,
    ) as scope:
        preview = bulk_preview(actor=actor, room_id=room_id, role=role, text=text)
        scope.after = {
            "role": str(role),
            "lines": len(preview),
            "to_add": sum(1 for p in preview if p.will_add),
        }
        return BulkRun.objects.create(
            room_id=room_id,
            role=role,
            actor=actor,
            request_id=request_id,
            lines=[
                {
                    "line": p.line,
                    "user_id": p.user_id,
                    "fate": p.fate,
                    "reason": p.reason,
                    "result": "",
                }
                for p in preview
            ],
        )


def bulk_step(run: BulkRun, *, chunk: int = BULK_CHUNK) -> BulkRun:
    """Apply the next chunk of a run; stop at the first chat server failure.

    Each person is checked against the room as it is now, so running an interrupted run
    again completes it without giving anyone a role twice. Every person added, or failed,
    is one audit entry carrying the run's request ID.
    """
    role = Role(run.role)
    run.status, run.error = BulkRun.Status.RUNNING, ""
    todo: dict[str, dict[str, Any]] = {}
    try:
        room, category = room_for_roles(run.actor, run.room_id)
        for line in run.to_apply[:chunk]:
            if line["user_id"] in room.principals(role):
                line["result"] = "had the role already"
            elif problem := role_problem(room, category, role, line["user_id"]):
                line["result"] = f"refused: {problem}"
            else:
                todo[line["user_id"]] = line

        def added(user_id: str) -> None:
            todo[user_id]["result"] = "added"
            _bulk_audit(run, room, category, role, user_id, Outcome.SUCCEEDED)

        chat_backend().add_to_role(room.id, role, list(todo), on_added=added)
    except ChatBackendError as exc:
        run.status, run.error = BulkRun.Status.INTERRUPTED, exc.detail
        stuck = next((user for user, line in todo.items() if not line["result"]), "")
        if stuck:
            _bulk_audit(run, room, category, role, stuck, Outcome.FAILED, exc.detail)
    else:
        if not run.to_apply:
            run.status = BulkRun.Status.DONE
    run.save(update_fields=["lines", "status", "error"])
    return run


def _bulk_audit(
    run: BulkRun,
    room: Room,
    category: Category,
    role: Role,
    user_id: str,
    outcome: Outcome,
    error: str = "",
) -> None:
    audit_record(
        action=f"role.add.{role}",
        outcome=outcome,
        actor=run.actor,
        target_kind="room",
        target_id=room.id,
        target_label=room.name,
        category_id=category.id,
        category_label=category.name,
        after={"person": user_id, "role": str(role)},
        error=error,
        request_id=run.request_id,
    )
