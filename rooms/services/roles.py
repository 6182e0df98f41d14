"""Room roles: who may hold Member, Manager and Presenter, and giving and taking them.

The rules (docs/architecture.md §3): everyone in the category's scope; Presenters only in
auditoriums and only from the Members; Open rooms have no member list; the last Manager
stays unless an administrator removes them. One audit entry per person per change.
"""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from portal.audit import AuditScope, audit_record, audited, current_request
from portal.models import Outcome
from rooms import index, notifications, operations, processes
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.records import Category, Privacy, Role, Room, is_chat_id
from rooms.index import chat_backend
from rooms.locks import one_writer
from rooms.models import JoinRequest, Operation
from rooms.permissions import can_manage

MAX_BULK_LINES = 1000
LAST_MANAGER = (
    "A room keeps at least one Manager: add another Manager first, or ask a portal administrator."
)
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
            raise RoleRefused(LAST_MANAGER)
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


ROLES = Operation.Kind.ROLE_BULK  # the operation of a change of a role for many people
ANSWERED_AT_MOST = 20  # people the API changes while the request waits; more: a job
# What became of a person of a change of roles.
DONE, HAD, HAD_NOT, REFUSED, FAILED = (
    "done",
    "had it already",
    "did not have it",
    "refused",
    "failed",
)


@dataclass
class RoleLine:
    """One person of a change of roles: as typed, the chat ID it reads as ("" for none),
    whether they get the role or lose it, whether the change was to be made at all
    (`fate`: add or remove, or why not, from the list's check) and what became of it."""

    line: str
    person: str
    change: str  # add, remove
    fate: str  # add, remove; has, duplicate, malformed, unknown, refused: skipped
    reason: str = ""
    result: str = ""  # "" while to be done; DONE, HAD, HAD_NOT, REFUSED, FAILED
    detail: str = ""
    # Sent (or about to be) by a try that did not finish (failed, or its process died):
    # found done when tried again, it was that try that did it, and the audit log is told.
    tried: bool = False
    # Found on the chat server by the list's check (a pasted list's preview): not asked
    # again when the change is made.
    known: bool = False

    @property
    def to_do(self) -> bool:
        return self.fate in ("add", "remove") and not self.result

    def as_result(self) -> dict[str, str]:
        """What became of the person, as `POST /rooms/{id}/roles/{role}` answers it (a
        line the list's check skipped: had it already, or refused with why)."""
        skipped = HAD if self.fate == "has" else REFUSED
        result = self.result or ("" if self.to_do else skipped)
        return {
            "person": self.person or self.line,
            "change": self.change,
            "result": result,
            "detail": self.detail or (self.reason if result == REFUSED else ""),
        }


@dataclass
class RoleChanges:
    """The recorded work of a `ROLES` operation (its `change`): one role, many people."""

    role: Role
    lines: list[RoleLine]

    @classmethod
    def of(cls, op: Operation) -> RoleChanges:
        return cls(Role(op.change["role"]), [RoleLine(**line) for line in op.change["lines"]])

    def into(self, op: Operation) -> None:
        op.change = {"role": str(self.role), "lines": [asdict(line) for line in self.lines]}

    @property
    def to_do(self) -> list[RoleLine]:
        return [line for line in self.lines if line.to_do]

    @property
    def progress(self) -> tuple[int, int]:
        """People done (whatever became of them) of those to be changed."""
        wanted = [line for line in self.lines if line.fate in ("add", "remove")]
        return sum(1 for line in wanted if line.result), len(wanted)


def role_changes_start(
    *,
    actor: User,
    room: Room,
    changes: RoleChanges,
    request_id: str = "",
    inline: bool = False,
) -> Operation:
    """Record a change of a role for many people. The job runner carries it out a chunk
    at a time (`role_changes_turn`); with `inline`, this process does (`role_changes_step`)
    and the job runner takes it up only if this process dies first."""
    op = Operation(
        kind=ROLES,
        target_id=room.id,
        target_label=room.name,
        actor=actor,
        request_id=request_id or _request_id(),
        owner=processes.identity() if inline else "",
    )
    changes.into(op)
    op.save()
    return op


def _request_id() -> str:
    request = current_request.get()
    return getattr(request, "request_id", "") if request is not None else ""


def bulk_start(*, actor: User, room_id: str, role: Role, text: str) -> Operation:
    """Check a pasted list again and record it for the job runner to apply."""
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
        room, _ = room_for_roles(actor, room_id)
        lines = [
            RoleLine(p.line, p.user_id, "add", p.fate, p.reason, known=p.will_add) for p in preview
        ]
        op = role_changes_start(
            actor=actor, room=room, changes=RoleChanges(role, lines), request_id=request_id
        )
        scope.after["operation"] = str(op.pk)
        return op


def role_line(typed: str, change: str) -> RoleLine:
    """A person typed for a change (through the API), read as a chat ID."""
    try:
        return RoleLine(typed, chat_id_of(typed), change, change)
    except NotAChatId as exc:
        return RoleLine(typed, "", change, "malformed", str(exc), REFUSED, str(exc))


def role_changes_check(*, actor: User, room_id: str, changes: RoleChanges) -> list[RoleLine]:
    """What would become of each person, changing nothing (a what-if)."""
    room, category = room_for_roles(actor, room_id)
    checked = []
    for line in changes.lines:
        if line.to_do:
            result, detail = _decide(actor, room, category, changes.role, line)
            line = replace(line, result=result or "would do", detail=detail)
        checked.append(line)
    return checked


def _decide(
    actor: User, room: Room, category: Category, role: Role, line: RoleLine
) -> tuple[str, str]:
    """What becomes of a person without asking the chat server: had the role, did not,
    refused by the rules; ("", "") when the change is to be made."""
    held = line.person in room.principals(role)
    if line.change == "add":
        if held:
            return HAD, ""
        if problem := role_problem(room, category, role, line.person):
            return REFUSED, problem
        return "", ""
    if not held:
        return HAD_NOT, ""
    if role is Role.MANAGER and room.managers == {line.person} and not actor.is_administrator:
        return REFUSED, LAST_MANAGER
    return "", ""


def role_changes_turn(*, chunk: int = BULK_CHUNK) -> int:
    """The job runner's round: the next people of every change of roles left to it (or
    left by a process that died mid-way); how many were done."""
    cutoff = timezone.now() - operations.ABANDONED_AFTER
    done = 0
    running = Operation.objects.filter(kind=ROLES, status=Operation.Status.RUNNING)
    for op in running.select_related("actor"):
        if op.owner and not processes.gone(op.owner) and op.updated_at > cutoff:
            continue  # its own process is at it
        done += role_changes_step(op, chunk=chunk)
    return done


def role_changes_step(op: Operation, *, chunk: int = BULK_CHUNK) -> int:
    """Change the next `chunk` people of a change of roles; how many were done.

    Each person is checked against the room as it is now, so a change run again (after a
    failure, or by the job runner after its process died) gives nobody a role twice. Each
    person is one audit entry (`role.add.*` or `role.remove.*`, refusals included) with
    the operation's request ID. A chat-server failure stops the operation unfinished, its
    owner or an administrator resumes it."""
    changes = RoleChanges.of(op)
    role = changes.role
    todo = changes.to_do[:chunk]
    actor = op.actor
    try:
        if actor is None:  # its owner's account was removed meanwhile
            raise PermissionDenied("Its owner's account is gone.")
        room, category = room_for_roles(actor, op.target_id)
    except (PermissionDenied, ChatNotFound) as exc:
        for line in changes.to_do:
            line.result, line.detail = REFUSED, str(exc)
        return _save_step(op, changes, len(changes.lines))
    adds: dict[str, RoleLine] = {}
    for line in todo:
        if line.change == "add" and _decided(actor, op, room, category, role, line):
            adds[line.person] = line
    try:
        known = _known(sorted(p for p, line in adds.items() if not line.known))
        for person in [p for p, line in adds.items() if not (line.known or p in known)]:
            line = adds.pop(person)
            line.result = REFUSED
            line.detail = f"There is no person {person} on the chat server."
            _role_audit(op, room, category, role, line, Outcome.DENIED)
        _add(actor, op, changes, room, category, adds)
        room = chat_backend().get_room(room.id)  # with those added: removals are checked
        for line in todo:  # against the room as the additions left it (its last Manager)
            if line.change == "remove" and _decided(actor, op, room, category, role, line):
                _remove(actor, op, role, line)
    except ChatBackendError as exc:
        # Members are added one after the other: the first not added is the one the chat
        # server failed on, those after it were not tried. Managers and Presenters are
        # given the role in one request: all of them failed.
        pending = [line for line in adds.values() if not line.result]
        for stuck in pending[:1] if role is Role.MEMBER else pending:
            stuck.result, stuck.detail, stuck.tried = FAILED, exc.detail, True
            _role_audit(op, room, category, role, stuck, Outcome.FAILED)
        for line in todo:
            if not line.result:
                line.result, line.detail = FAILED, f"Not tried: {exc.detail}"
        op.status, op.error = Operation.Status.UNFINISHED, exc.detail
    return _save_step(op, changes, len(todo))


def _decided(
    actor: User, op: Operation, room: Room, category: Category, role: Role, line: RoleLine
) -> bool:
    """Decide what the room as it is makes of a person (audited when refused, or when an
    earlier try that failed turns out to have done it); whether the change is to be made."""
    line.result, line.detail = _decide(actor, room, category, role, line)
    if line.tried and line.result in (HAD, HAD_NOT):
        line.result = DONE
        _role_audit(op, room, category, role, line, Outcome.SUCCEEDED)
    elif line.result == REFUSED:
        _role_audit(op, room, category, role, line, Outcome.DENIED)
    return not line.result


def _add(
    actor: User,
    op: Operation,
    changes: RoleChanges,
    room: Room,
    category: Category,
    adds: dict[str, RoleLine],
) -> None:
    """Give the role to `adds`, each person recorded as done as the server confirms them:
    a process that dies part-way leaves those done and those tried, and whoever carries
    on finds the tried ones done (audited then) or adds them."""
    if not adds:
        return

    def saved() -> None:
        changes.into(op)
        op.save(update_fields=["change", "updated_at"])

    def added(person: str) -> None:
        adds[person].result = DONE
        _role_audit(op, room, category, changes.role, adds[person], Outcome.SUCCEEDED)
        saved()
        if changes.role is Role.MEMBER:
            _decide_join_requests(actor, room, person, accepted=True)

    for line in adds.values():
        line.tried = True
    saved()
    with one_writer(room.id):
        chat_backend().add_to_role(room.id, changes.role, list(adds), on_added=added)


def _remove(actor: User, op: Operation, role: Role, line: RoleLine) -> None:
    try:
        role_remove(
            actor=actor,
            room_id=op.target_id,
            role=role,
            user_id=line.person,
            request_id=op.request_id,
        )
    except PermissionDenied as exc:  # audited as refused by role_remove
        line.result, line.detail = REFUSED, str(exc)
    except ChatBackendError as exc:  # audited as failed by role_remove
        line.result, line.detail, line.tried = FAILED, exc.detail, True
        raise
    else:
        line.result = DONE


def _save_step(op: Operation, changes: RoleChanges, done: int) -> int:
    changes.into(op)
    if op.status == Operation.Status.RUNNING and not changes.to_do:
        failed = sum(1 for line in changes.lines if line.result == FAILED)
        op.status = Operation.Status.UNFINISHED if failed else Operation.Status.SUCCEEDED
        op.error = f"{failed} of {len(changes.lines)} people were not changed." if failed else ""
    op.save()
    return done


def role_changes_resume(op: Operation, *, actor: User) -> Operation:
    """Hand an unfinished change of roles back to the job runner for the people it did
    not reach (its owner, or an administrator)."""
    if op.actor_id != actor.pk and not actor.is_administrator:
        raise PermissionDenied("This change of roles belongs to someone else.")
    changes = RoleChanges.of(op)
    for line in changes.lines:
        if line.result == FAILED:
            line.result = line.detail = ""
    changes.into(op)
    op.status, op.error, op.owner = Operation.Status.RUNNING, "", ""
    op.save()
    operations.audit_retry(op, actor=actor, left={"people": len(changes.to_do)})
    return op


def _role_audit(
    op: Operation,
    room: Room,
    category: Category,
    role: Role,
    line: RoleLine,
    outcome: Outcome,
) -> None:
    what = {"person": line.person, "role": str(role)}
    audit_record(
        action=f"role.{line.change}.{role}",
        outcome=outcome,
        actor=op.actor,
        target_kind="room",
        target_id=room.id,
        target_label=room.name,
        category_id=category.id,
        category_label=category.name,
        before=what if line.change == "remove" else {},
        after=what if line.change == "add" else {},
        error=line.detail if outcome != Outcome.SUCCEEDED else "",
        request_id=op.request_id,
    )
