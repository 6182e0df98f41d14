"""Category administration for portal administrators: categories, their scope, Creators.

Changing scope first shows what it does to the category's rooms: people who leave the
scope lose their roles in its rooms (docs/architecture.md §3.4), and are listed before it happens.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, replace
from typing import Any, TypedDict

from django.core.exceptions import PermissionDenied

from accounts.models import User
from portal.audit import AuditScope, audit_record, audited, current_request
from portal.models import Outcome
from rooms import index, operations
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.matrix.adoption import RoomFit, SpaceFit
from rooms.backend.records import NAME_MAX_LENGTH, Category, ChatOptions, Role, Room, is_chat_id
from rooms.chatserver.policy import name_key
from rooms.chatserver.text import name_problem
from rooms.index import chat_backend
from rooms.locks import one_writer
from rooms.models import Operation
from rooms.services import rooms as room_services
from rooms.services.roles import parse_people, role_remove


class CategoryInvalid(Exception):
    """A category change breaks a rule; `field` names the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _require_admin(actor: User) -> None:
    if not actor.is_administrator:
        raise PermissionDenied("Only portal administrators manage categories.")


def _values(category: Category) -> dict[str, Any]:
    values = asdict(category)
    for key in ("allowed_members", "denied_members", "creators", "room_ids"):
        values[key] = sorted(values[key])
    return values


def category_version(category: Category) -> str:
    """Changes whenever what an administrator sets of the category changes (its name,
    description, invitations, scope and Creators); rooms coming and going do not."""
    values = _values(category)
    del values["room_ids"]
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


class CategoryStale(Exception):
    """The category changed since the version the change was asked against."""

    def __init__(self, current: Category) -> None:
        super().__init__("Someone else changed this category since it was read.")
        self.current = current


def _still_at(category: Category, version: str | None) -> None:
    if version is not None and version != category_version(category):
        raise CategoryStale(category)


def _in(scope: AuditScope, category: Category) -> None:
    scope.target_id = scope.category_id = category.id
    scope.target_label = scope.category_label = category.name


def category_name_problem(name: str, *, exclude_id: str = "") -> str:
    name = name.strip()
    if not name:
        return "Give the category a name."
    if len(name) > NAME_MAX_LENGTH:
        return f"A category name has at most {NAME_MAX_LENGTH} characters."
    taken = any(
        c.name.casefold() == name.casefold() and c.id != exclude_id
        for c in chat_backend().list_categories()
    )
    return f"There is already a category called “{name}”." if taken else ""


def category_create(
    *,
    actor: User,
    name: str,
    description: str,
    invitations_allowed: bool,
    chat_history: bool = True,
    file_uploads: bool = True,
    keep_days: int | None = None,
    managers_read: bool = False,
) -> Category:
    """Create a category (a space) with no one in its scope yet."""
    with audited(
        "category.create", actor=actor, target_kind="category", target_label=name
    ) as scope:
        _require_admin(actor)
        problem = category_name_problem(name)
        if problem:
            raise CategoryInvalid("name", problem)
        category = chat_backend().create_category(
            name=name.strip(),
            description=description,
            invitations_allowed=invitations_allowed,
            options=ChatOptions(
                chat_history=chat_history,
                file_uploads=file_uploads,
                keep_days=keep_days or 0,
                managers_read=managers_read,
            ),
        )
        _in(scope, category)
        scope.after = _values(category)
        return category


def category_change_check(
    *,
    actor: User,
    category_id: str,
    name: str = "",
    creators: list[str] | None = None,
    deleting: bool = False,
) -> Category:
    """What changing (a new name, these Creators) or deleting a category checks, for a
    what-if: nothing is changed or audited. Returns the category as it is now."""
    _require_admin(actor)
    category = chat_backend().get_category(category_id)
    if name:
        problem = category_name_problem(name, exclude_id=category_id)
        if problem:
            raise CategoryInvalid("name", problem)
    _creators_in_scope(category, creators or [])
    if deleting:
        _no_rooms(category)
    return category


def _creators_in_scope(category: Category, creators: list[str]) -> None:
    outside = [c for c in creators if not category.in_scope(c)]
    if outside:
        raise CategoryInvalid(
            "creators",
            f"Creators are chosen from the people in scope; not in scope: {', '.join(outside)}.",
        )


def _no_rooms(category: Category) -> None:
    if category.room_ids:
        raise CategoryInvalid(
            "category",
            f"“{category.name}” still has {category.room_count} room(s): move or delete "
            "them first.",
        )


def category_update(
    *,
    actor: User,
    category_id: str,
    name: str | None = None,
    description: str | None = None,
    invitations_allowed: bool | None = None,
    version: str | None = None,
) -> Category:
    """Change a category's name, description and invitations; what is not given (None)
    stays as it is at the moment of the change. With `version`, only if the category is
    still at that version (`CategoryStale` otherwise), checked under its writer lock."""
    with (
        audited("category.update", actor=actor, target_kind="category") as scope,
        one_writer(category_id),
    ):
        _require_admin(actor)
        client = chat_backend()
        before = client.get_category(category_id)
        _in(scope, before)
        scope.before = _values(before)
        _still_at(before, version)
        name = before.name if name is None else name
        problem = category_name_problem(name, exclude_id=category_id)
        if problem:
            raise CategoryInvalid("name", problem)
        after = client.update_category(
            category_id,
            name=name.strip(),
            description=before.description if description is None else description,
            invitations_allowed=(
                before.invitations_allowed if invitations_allowed is None else invitations_allowed
            ),
        )
        scope.after = _values(after)
        return after


def category_options_preview(
    *, actor: User, category_id: str, options: ChatOptions
) -> tuple[Category, list[str]]:
    """What changing a category's chat options would do, for a what-if: the category as
    it is, and its rooms whose options would change (as the index has them). Nothing is
    changed or audited."""
    _require_admin(actor)
    category = chat_backend().get_category(category_id)
    return category, index.rooms_with_other_options(category.id, options)


def category_set_options(
    *, actor: User, category_id: str, options: ChatOptions, version: str | None = None
) -> tuple[Category, Operation | None]:
    """Change a category's chat options and give them to every one of its rooms: the
    category first (rooms made from then on take them), then each room, as one
    operation of the job runner's with a result per room (None: no room to change).
    With `version`, only if the category is still at it."""
    with (
        audited("category.options", actor=actor, target_kind="category") as scope,
        one_writer(category_id),
    ):
        _require_admin(actor)
        client = chat_backend()
        before = client.get_category(category_id)
        _in(scope, before)
        scope.before = before.options.values()
        _still_at(before, version)
        after = client.update_category(
            category_id,
            name=before.name,
            description=before.description,
            invitations_allowed=before.invitations_allowed,
            options=options,
        )
        scope.after = after.options.values()
        rooms = index.rooms_with_other_options(after.id, options)
        if not rooms:
            return after, None
        op = room_services.bulk_change_start(
            actor=actor,
            room_ids=rooms,
            changes={"category_options": True},
            label=f"Chat options of “{after.name}”: {len(rooms)} rooms",
        )
        scope.after |= {"operation": str(op.pk), "rooms": len(rooms)}
        return after, op


@dataclass(frozen=True)
class ScopeChange:
    """A checked scope change, ready to preview and apply."""

    add: tuple[str, ...]
    remove: tuple[str, ...]
    deny: tuple[str, ...]
    undeny: tuple[str, ...]
    # Everyone leaving the scope, with the rooms where they hold roles and those roles.
    leaving: tuple[tuple[str, tuple[tuple[Room, tuple[Role, ...]], ...]], ...]

    @property
    def empty(self) -> bool:
        return not (self.add or self.remove or self.deny or self.undeny)


def scope_change_check(
    *, actor: User, category_id: str, add: str, remove: str, deny: str, undeny: str
) -> ScopeChange:
    """Read and check the lists typed in, and work out what leaving the scope costs."""
    _require_admin(actor)
    client = chat_backend()
    category = client.get_category(category_id)
    lists = {}
    for field, text in (("add", add), ("remove", remove), ("deny", deny), ("undeny", undeny)):
        typed = parse_people(text)
        people = [client.user_id_for(p) for p in typed]
        bad = [raw for raw, p in zip(typed, people, strict=True) if not is_chat_id(p)]
        if bad:
            raise CategoryInvalid(field, f"Not chat IDs: {', '.join(bad[:5])}.")
        lists[field] = tuple(dict.fromkeys(people))
    both = set(lists["add"]) & set(lists["deny"])
    if both:
        raise CategoryInvalid(
            "deny", f"A person cannot be both allowed and denied: {', '.join(sorted(both))}."
        )
    for person in lists["add"]:
        try:
            client.get_user(person)
        except ChatNotFound:
            raise CategoryInvalid(
                "add", f"There is no person {person} on the chat server."
            ) from None
        if person in category.denied_members and person not in lists["undeny"]:
            raise CategoryInvalid(
                "add", f"{person} is denied in this category: allow them again first."
            )
    leavers = [p for p in (*lists["remove"], *lists["deny"]) if p in category.allowed_members]
    rooms = client.get_rooms(category.room_ids) if leavers else []
    leaving = []
    for person in dict.fromkeys(leavers):
        held = tuple(
            (room, tuple(room.roles_of(person))) for room in rooms if room.roles_of(person)
        )
        leaving.append((person, held))
    return ScopeChange(
        lists["add"], lists["remove"], lists["deny"], lists["undeny"], tuple(leaving)
    )


class ScopeLists(TypedDict):
    """A scope change as its operation records it: the chat IDs of each list."""

    add: list[str]
    remove: list[str]
    deny: list[str]
    undeny: list[str]


def scope_change_apply(
    *, actor: User, category_id: str, change: ScopeChange, version: str | None = None
) -> Category:
    """Apply a previewed scope change: room roles of people leaving first, then the scope
    (with `version`, only if the category is still at it).

    It is recorded as an operation before its first request; every step is safe to
    repeat, so one that stops part-way is listed as unfinished and finished by applying
    it again (Retry in the list of unfinished changes).
    """
    client = chat_backend()
    with audited("category.scope", actor=actor, target_kind="category") as scope:
        _require_admin(actor)
        category = client.get_category(category_id)
        _in(scope, category)
        scope.before = {
            "allowed": sorted(category.allowed_members),
            "denied": sorted(category.denied_members),
        }
        _still_at(category, version)
        lists = ScopeLists(
            add=list(change.add),
            remove=list(change.remove),
            deny=list(change.deny),
            undeny=list(change.undeny),
        )
        with operations.recorded(
            "category.scope", actor=actor, target_id=category.id, target_label=category.name
        ) as op:
            op.change, op.before = lists, scope.before
            after = _apply_scope(actor, category, change)
        scope.after = {
            "allowed": sorted(after.allowed_members),
            "denied": sorted(after.denied_members),
        }
        return after


def scope_change_retry(*, actor: User, operation: Operation) -> Category:
    """Apply an unfinished scope change again, as checked now (who still holds room roles)."""
    lists: ScopeLists = operation.change
    change = scope_change_check(
        actor=actor,
        category_id=operation.target_id,
        add="\n".join(lists["add"]),
        remove="\n".join(lists["remove"]),
        deny="\n".join(lists["deny"]),
        undeny="\n".join(lists["undeny"]),
    )
    category = scope_change_apply(actor=actor, category_id=operation.target_id, change=change)
    operation.status = Operation.Status.SUCCEEDED
    operation.save(update_fields=["status", "updated_at"])
    return category


def _apply_scope(actor: User, category: Category, change: ScopeChange) -> Category:
    """The steps of a scope change, each safe to repeat."""
    client = chat_backend()
    for person, held in change.leaving:
        _remove_room_roles(actor, person, held)
    client.undeny_in_category(category.id, change.undeny)
    client.remove_from_category_scope(
        category.id, [p for p in change.remove if p in category.allowed_members]
    )
    client.deny_in_category(category.id, change.deny)
    client.add_to_category_scope(
        category.id, [p for p in change.add if p not in category.allowed_members]
    )
    # Creators are chosen from the scope: anyone leaving it stops being one.
    leavers = {person for person, _ in change.leaving}
    if category.creators & leavers:
        client.set_category_creators(category.id, category.creators - leavers)
    return client.get_category(category.id)


def _remove_room_roles(
    actor: User, person: str, held: tuple[tuple[Room, tuple[Role, ...]], ...]
) -> None:
    """Take away the room roles of someone leaving the scope, each audited on its own."""
    for room, roles in held:
        # Presenters first: they must stay Members until their Presenter role is gone.
        for role in sorted(roles, key=lambda r: r is not Role.PRESENTER):
            role_remove(actor=actor, room_id=room.id, role=role, user_id=person)


def creators_set(
    *, actor: User, category_id: str, creators: list[str], version: str | None = None
) -> Category:
    """Make these people, who must be in scope, the category's Creators (with `version`,
    only if the category is still at it)."""
    client = chat_backend()
    with (
        audited("category.creators", actor=actor, target_kind="category") as scope,
        one_writer(category_id),
    ):
        _require_admin(actor)
        category = client.get_category(category_id)
        _in(scope, category)
        scope.before = {"creators": sorted(category.creators)}
        _still_at(category, version)
        _creators_in_scope(category, creators)
        after = client.set_category_creators(category.id, creators)
        scope.after = {"creators": sorted(after.creators)}
        return after


def category_delete(*, actor: User, category_id: str, version: str | None = None) -> None:
    """Delete a category that has no rooms (with `version`, only if it is still at it)."""
    client = chat_backend()
    with (
        audited("category.delete", actor=actor, target_kind="category") as scope,
        one_writer(category_id),
    ):
        _require_admin(actor)
        category = client.get_category(category_id)
        _in(scope, category)
        scope.before = _values(category)
        _still_at(category, version)
        _no_rooms(category)
        client.delete_category(category.id)


# --- adopting a space made outside the portal ----------------------------------------------

ADOPT = Operation.Kind.CATEGORY_ADOPT


def adoptable_found(*, actor: User, term: str) -> list[tuple[str, str, int, bool]]:
    """Spaces and rooms on the chat server whose name holds the term, not yet the
    portal's: (ID, name, members, whether it is a space)."""
    _require_admin(actor)
    return chat_backend().find_adoptable(term)


def categories_to_adopt_into(*, actor: User) -> list[Category]:
    """Every category, by name, for choosing where an adopted room goes."""
    _require_admin(actor)
    return sorted(chat_backend().list_categories(), key=lambda c: c.name.casefold())


def room_adoption_fit(*, actor: User, room_id: str, category_id: str) -> RoomFit:
    """How a room made outside the portal (in no space) would map into a category."""
    _require_admin(actor)
    return chat_backend().room_fit(room_id, category_id)


def room_adopt(*, actor: User, room_id: str, category_id: str) -> RoomFit:
    """Adopt one room into an existing category; its people outside the category's scope
    are put in it. Each step is safe to repeat: after a failure, adopting it again
    completes it."""
    client = chat_backend()
    with audited("room.adopt", actor=actor, target_kind="room", target_id=room_id) as scope:
        fit = room_adoption_fit(actor=actor, room_id=room_id, category_id=category_id)
        category = client.get_category(category_id)
        scope.target_label, scope.category_id = fit.name, category.id
        scope.category_label = category.name
        scope.after = {
            "privacy": str(fit.privacy),
            "managers": sorted(fit.managers),
            "members": len(fit.members),
            "notes": list(fit.notes),
        }
        if fit.impossible:
            raise CategoryInvalid("room", fit.impossible)
        client.add_to_category_scope(category.id, sorted(fit.outside_scope))
        client.adopt_room(fit, category.id)
        return fit


def adoption_fit(*, actor: User, space_id: str) -> SpaceFit:
    """How a space and its rooms would map to a category and portal rooms."""
    _require_admin(actor)
    if not space_id:
        raise CategoryInvalid("space", "Choose a space to adopt.")
    if chat_backend().held_by_portal(space_id):
        raise CategoryInvalid("space", "That is one of the portal's categories already.")
    fit = chat_backend().adoption_fit(space_id)
    seen: set[str] = set()
    return replace(fit, rooms=tuple(_name_fit(room, seen) for room in fit.rooms))


def _name_fit(room: RoomFit, seen: set[str]) -> RoomFit:
    """A room whose name would deceive, or looks like a portal room's (or another of the
    space's), is not adopted until it is renamed: the rules hold for adopted rooms too."""
    if room.impossible:
        return room
    key = name_key(room.name)
    problem = name_problem(room.name) or (
        room_services.name_unavailable(room.name)
        if key in seen or index.name_taken(room.name)
        else ""
    )
    seen.add(key)
    if not problem:
        return room
    return replace(room, impossible=f"{problem} Rename it in a chat client, then adopt the space.")


def last_adoption(space_id: str) -> Operation | None:
    return Operation.objects.filter(kind=ADOPT, target_id=space_id).order_by("-created_at").first()


def category_adopt(*, actor: User, space_id: str) -> Operation:
    """Adopt a space: a category of its name, scope, denials and Creators, and each room
    that can be adopted moved into it. Recorded first; adopting it again after a failure
    (or Retry) carries on where it stopped, with the category already made."""
    fit = adoption_fit(actor=actor, space_id=space_id)
    earlier = last_adoption(space_id)
    if earlier is not None and earlier.status == Operation.Status.UNFINISHED:
        return adoption_run(earlier, actor=actor)
    problem = category_name_problem(fit.name)
    if problem:
        raise CategoryInvalid("space", f"{problem} Rename one of them first.")
    request = current_request.get()
    op = Operation(
        kind=ADOPT,
        target_id=space_id,
        target_label=fit.name,
        actor=actor,
        request_id=getattr(request, "request_id", "") or uuid.uuid4().hex,
    )
    Adopting("", {room.room_id: "" for room in fit.adoptable}).into(op)
    op.save()
    return adoption_run(op, actor=actor)


@dataclass
class Adopting:
    """The recorded work of an adoption (its operation's `change`): the category made for
    the space ("" until it is), and each room recorded at the start with what became of
    it ("" while not reached, "failed" while being taken or after, "adopted")."""

    category_id: str
    rooms: dict[str, str]

    @classmethod
    def of(cls, op: Operation) -> Adopting:
        return cls(str(op.change["category_id"]), dict(op.change["rooms"]))

    def into(self, op: Operation) -> None:
        op.change = asdict(self)


def adoption_run(op: Operation, *, actor: User) -> Operation:
    """The steps of an adoption, each safe to repeat; every room is its own audit entry,
    and the whole one more, all under one request ID."""
    _require_admin(actor)
    client = chat_backend()
    op.status, op.error = Operation.Status.RUNNING, ""
    op.save(update_fields=["status", "error", "updated_at"])
    fit = client.adoption_fit(op.target_id)
    work = Adopting.of(op)

    def keep() -> None:
        work.into(op)
        op.save(update_fields=["change", "updated_at"])

    try:
        if not work.category_id:
            work.category_id = client.create_category(name=fit.name, description=fit.description).id
            keep()
        category = client.get_category(work.category_id)
        wanted = fit.allowed.union(
            *(room.outside_scope for room in fit.rooms if room.room_id in work.rooms)
        )
        client.add_to_category_scope(category.id, sorted(wanted - category.allowed_members))
        client.deny_in_category(category.id, sorted(fit.denied - category.denied_members))
        if fit.creators - category.creators:
            client.set_category_creators(category.id, category.creators | fit.creators)
        # The rooms recorded at the start: one an earlier try took part-way is indexed
        # as a portal room already, and is carried on with all the same.
        for room in fit.rooms:
            if work.rooms.get(room.room_id, "adopted") != "adopted":
                work.rooms[room.room_id] = "failed"
                _adopt_room(actor, op, room, category)
                work.rooms[room.room_id] = "adopted"
                keep()
    except ChatBackendError as exc:
        op.status, op.error = Operation.Status.UNFINISHED, exc.detail
    else:
        op.status = Operation.Status.SUCCEEDED
    work.into(op)
    op.save()
    audit_record(
        action=ADOPT,
        outcome=Outcome.SUCCEEDED if op.status == Operation.Status.SUCCEEDED else Outcome.PARTIAL,
        actor=actor,
        target_kind="category",
        target_id=work.category_id,
        target_label=fit.name,
        category_id=work.category_id,
        category_label=fit.name,
        before={"space": op.target_id},
        after={
            "rooms": work.rooms,
            "impossible": {room.room_id: room.impossible for room in fit.rooms if room.impossible},
            "scope": sorted(fit.allowed),
            "creators": sorted(fit.creators),
        },
        error=op.error,
        request_id=op.request_id,
    )
    return op


def _adopt_room(actor: User, op: Operation, room: RoomFit, category: Category) -> None:
    with audited(
        "room.adopt",
        actor=actor,
        target_kind="room",
        target_id=room.room_id,
        target_label=room.name,
        category_id=category.id,
        category_label=category.name,
        after={
            "privacy": str(room.privacy),
            "auditorium": room.auditorium,
            "managers": sorted(room.managers),
            "presenters": sorted(room.presenters),
            "members": len(room.members),
            "notes": list(room.notes),
        },
        request_id=op.request_id,
    ):
        chat_backend().adopt_room(room, category.id)
