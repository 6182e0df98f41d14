"""Removing a person from everything (or a chosen part of it) when they change team or
leave: their room roles, Creator rights and places in categories' scopes.

It is previewed first: each role and scope entry that will go, the room roles that go
with a scope (people outside a category's scope hold no role in its rooms), and the rooms
that would be left without a Manager, for which a successor is named. It then runs as
one durable operation (rooms.operations): recorded before its first request, each item
applied in turn and its result kept, every item its own audit entry under one request
ID. A chat-server failure stops it with per-item results; it is listed as unfinished,
and Retry applies the items not yet done. Denials stay: lifting one would let the
person back in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from django.core.exceptions import PermissionDenied

from accounts.models import User
from accounts.sessions import end_all
from portal.audit import audit_record, audited, current_request
from portal.models import Outcome
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.records import Role, is_chat_id
from rooms.index import chat_backend
from rooms.locks import one_writer
from rooms.models import Operation
from rooms.selectors.people import RoomStanding, Standing, person_standing
from rooms.services.roles import role_add, role_remove

KIND = Operation.Kind.PERSON_REMOVE
DONE = ("removed", "already gone")


class RemovalInvalid(Exception):
    """The removal cannot go ahead as asked; `errors` by field (a room's successor)."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message, self.errors = message, errors or {}


@dataclass(frozen=True)
class Item:
    """One thing the person holds that a removal takes away."""

    key: str  # room:<room>:<role>, creator:<category>, scope:<category>
    kind: str  # role, creator, scope
    target_id: str
    label: str
    category_id: str
    role: str = ""
    forced: bool = False  # goes because the person leaves the category's scope

    @property
    def described(self) -> str:
        if self.kind == "role":
            return f"{Role(self.role).label} of “{self.label}”"
        if self.kind == "creator":
            return f"Creator in “{self.label}”"
        return f"In the scope of “{self.label}”"


def require_admin(actor: User) -> None:
    if not actor.is_administrator:
        raise PermissionDenied("Only portal administrators remove people from rooms and scopes.")


def items_of(standing: Standing) -> list[Item]:
    """Everything removable, in the order it is taken away: room roles (Presenter before
    Member, a successor's Manager role before the person's), then Creator, then scope."""
    items = [
        Item(f"room:{room.room_id}:{role}", "role", room.room_id, room.name, room.category_id, role)
        for room in standing.rooms
        for role in room.roles
    ]
    for category in standing.categories:
        if "creator" in category.standings:
            items.append(
                Item(f"creator:{category.category_id}", "creator", category.category_id,
                     category.name, category.category_id)
            )  # fmt: skip
    for category in standing.categories:
        if "allowed" in category.standings:
            items.append(
                Item(f"scope:{category.category_id}", "scope", category.category_id,
                     category.name, category.category_id)
            )  # fmt: skip
    return items


@dataclass(frozen=True)
class Removal:
    """A previewed removal: what goes, and the rooms that need a successor."""

    user_id: str
    items: list[Item]
    orphaned: list[RoomStanding]
    kept: list[str]  # denials, which stay


@dataclass
class Step:
    """One item of a recorded removal, and what became of it ("" while not reached)."""

    item: Item
    result: str = ""

    @property
    def done(self) -> bool:
        return self.result in DONE

    def as_result(self) -> dict[str, Any]:
        """As the operation records it and the API answers it: the item's fields, and
        its result."""
        return asdict(self.item) | {"result": self.result}


@dataclass
class Successor:
    """The person made Manager of a room its last Manager leaves, first."""

    person: str
    room: str  # the room's name
    result: str = ""  # "made Manager", a failure, or "" while not reached


@dataclass
class Removing:
    """The recorded work of a person's removal (its operation's `change`): the successors
    by room, then the items, each with what became of it."""

    items: list[Step]
    successors: dict[str, Successor]

    @classmethod
    def of(cls, op: Operation) -> Removing:
        return cls(
            [
                Step(Item(**{k: v for k, v in i.items() if k != "result"}), i["result"])
                for i in op.change["items"]
            ],
            {room: Successor(**named) for room, named in op.change["successors"].items()},
        )

    def into(self, op: Operation) -> None:
        op.change = {
            "items": [step.as_result() for step in self.items],
            "successors": {room: asdict(named) for room, named in self.successors.items()},
        }

    @property
    def progress(self) -> tuple[int, int]:
        """Items reached (whatever became of them) of all."""
        return sum(1 for step in self.items if step.result), len(self.items)


def removal_plan(*, actor: User, user_id: str, chosen: Iterable[str]) -> Removal:
    """What removing these items (keys from `items_of`) takes away, with what goes along."""
    require_admin(actor)
    standing = person_standing(viewer=actor, user_id=user_id)
    chosen = set(chosen)
    everything = items_of(standing)
    leaving = {i.category_id for i in everything if i.kind == "scope" and i.key in chosen}
    items = [
        replace(i, forced=i.key not in chosen)
        for i in everything
        if i.key in chosen or i.category_id in leaving
    ]
    if not items:
        raise RemovalInvalid("Choose at least one role or scope entry to remove.")
    keys = {i.key for i in items}
    orphaned = [
        room
        for room in standing.rooms
        if room.last_manager and f"room:{room.room_id}:manager" in keys
    ]
    kept = [f"Denied in “{c.name}”" for c in standing.categories if "denied" in c.standings]
    return Removal(user_id, items, orphaned, kept)


def successors_checked(removal: Removal, typed: dict[str, str]) -> dict[str, str]:
    """The successor named for each room left without a Manager, as chat IDs; a
    RemovalInvalid names each room whose successor cannot be one."""
    client = chat_backend()
    errors, successors = {}, {}
    for room in removal.orphaned:
        text = typed.get(room.room_id, "").strip()
        person = client.user_id_for(text) if text else ""
        if not text:
            errors[room.room_id] = "Name a successor: the room would be left without a Manager."
        elif not is_chat_id(person):
            errors[room.room_id] = f"“{text}” is not a chat ID (they look like @name:server)."
        elif person == removal.user_id:
            errors[room.room_id] = "The successor cannot be the person being removed."
        elif not client.get_category(room.category_id).in_scope(person):
            errors[room.room_id] = f"{person} is not in the scope of this room's category."
        else:
            try:
                client.get_user(person)
            except ChatNotFound:
                errors[room.room_id] = f"There is no person {person} on the chat server."
            successors[room.room_id] = person
    if errors:
        raise RemovalInvalid("Some rooms need a successor.", errors)
    return successors


def removal_start(
    *, actor: User, user_id: str, chosen: Iterable[str], successors: dict[str, str]
) -> Operation:
    """Check the removal again, record it, and run it."""
    removal = removal_plan(actor=actor, user_id=user_id, chosen=chosen)
    named = successors_checked(removal, successors)
    names = {room.room_id: room.name for room in removal.orphaned}
    request = current_request.get()
    op = Operation(
        kind=KIND,
        target_id=user_id,
        target_label=user_id,
        actor=actor,
        request_id=getattr(request, "request_id", "") or uuid.uuid4().hex,
    )
    Removing(
        [Step(item) for item in removal.items],
        {room: Successor(person, names[room]) for room, person in named.items()},
    ).into(op)
    op.save()
    return removal_run(op, actor=actor)


def removal_run(op: Operation, *, actor: User) -> Operation:
    """Apply what is not done yet, in order, keeping each item's result; stop at the first
    chat-server failure (the operation is then unfinished, for Retry)."""
    require_admin(actor)
    op.status, op.error = Operation.Status.RUNNING, ""
    op.save(update_fields=["status", "error", "updated_at"])
    work = Removing.of(op)
    current: Step | Successor | None = None

    def keep() -> None:
        work.into(op)
        op.save(update_fields=["change", "updated_at"])

    try:
        for room_id, successor in work.successors.items():
            if successor.result != "made Manager":
                current = successor
                role_add(
                    actor=actor,
                    room_id=room_id,
                    role=Role.MANAGER,
                    user_id=successor.person,
                    request_id=op.request_id,
                )
                successor.result = "made Manager"
                keep()
        for step in work.items:
            if not step.done:
                current = step
                step.result = _take_away(actor, op.target_id, step.item, op.request_id)
                keep()
    except (ChatBackendError, PermissionDenied) as exc:
        detail = exc.detail if isinstance(exc, ChatBackendError) else str(exc)
        if current is not None:
            current.result = f"failed: {detail}"
        op.status, op.error = Operation.Status.UNFINISHED, detail
    else:
        op.status = Operation.Status.SUCCEEDED
    work.into(op)
    op.save()
    audit_record(
        action=KIND,
        outcome=Outcome.SUCCEEDED if op.status == Operation.Status.SUCCEEDED else Outcome.PARTIAL,
        actor=actor,
        target_kind="person",
        target_id=op.target_id,
        target_label=op.target_label,
        after={
            "removed": [step.item.key for step in work.items if step.done],
            "left": [step.item.key for step in work.items if not step.done],
            "successors": {room: named.person for room, named in work.successors.items()},
        },
        error=op.error,
        request_id=op.request_id,
    )
    return op


def _take_away(actor: User, user_id: str, item: Item, request_id: str) -> str:
    """Remove one item, checked against the chat server's state as the index holds it."""
    client = chat_backend()
    if item.kind == "role":
        role = Role(item.role)
        if user_id not in client.get_room(item.target_id).principals(role):
            return "already gone"
        role_remove(
            actor=actor, room_id=item.target_id, role=role, user_id=user_id,
            request_id=request_id,
        )  # fmt: skip
        return "removed"
    category = client.get_category(item.target_id)
    if item.kind == "creator":
        if user_id not in category.creators:
            return "already gone"
        with (
            audited(
                "category.creators",
                actor=actor,
                target_kind="category",
                target_id=category.id,
                target_label=category.name,
                category_id=category.id,
                category_label=category.name,
                before={"creators": sorted(category.creators)},
                request_id=request_id,
            ) as scope,
            one_writer(category.id),
        ):
            after = client.set_category_creators(category.id, category.creators - {user_id})
            scope.after = {"creators": sorted(after.creators)}
        return "removed"
    if user_id not in category.allowed_members:
        return "already gone"
    with (
        audited(
            "category.scope",
            actor=actor,
            target_kind="category",
            target_id=category.id,
            target_label=category.name,
            category_id=category.id,
            category_label=category.name,
            before={"allowed": [user_id]},
            after={"removed": [user_id]},
            request_id=request_id,
        ),
        one_writer(category.id),
    ):
        client.remove_from_category_scope(category.id, [user_id])
    return "removed"


def sessions_end(*, actor: User, user_id: str) -> bool:
    """End every portal session of this person now (False: they have never signed in)."""
    if not actor.is_administrator:
        raise PermissionDenied("Only portal administrators end other people's sessions.")
    person = User.objects.filter(chat_id=user_id).first()
    if person is None:
        return False
    end_all(person, actor=actor, reason="Ended by a portal administrator.")
    return True
