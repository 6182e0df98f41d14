"""Groups and OUs of the directory (accounts.directory) as a room's Members, Managers or
Presenters.

A room's Manager (or an administrator) names a group or an OU for a role (audited
`role.directory`); those of its people the rules allow then hold the role: people in the
category's scope only, Members only in Closed and Secret rooms, Presenters only in
auditoriums and only from the Members, and a Manager is not a Member by that alone. The
others are named in the result with the reason, and come in when the reason goes. After
each read of the directory the job runner (`keep_in_step`, categories first) brings
every such room in step: who joined the group gets the role, who left it (and does not
hold the role by name or through another group) loses it; each person's change is audited
`directory.role` with its cause ("left Support engineers"). No page expands a group: the
room's page reads the named groups and their counts from the portal's tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import partial

from django.db import transaction

from accounts.directory import Principal, Snapshot, normal_dn
from accounts.models import User
from portal.audit import audit_record, audited
from portal.models import Outcome
from rooms import index
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.records import Category, Privacy, Role, Room
from rooms.index import chat_backend
from rooms.models import DirectoryRole, DirectoryRoleGrant, DirectoryScope, Operation
from rooms.operations import recorded
from rooms.services.categories import CategoryInvalid
from rooms.services.directory import (
    CHAT_ACTOR,
    Naming,
    apply_category,
    expand_named,
    find_principals,
    keep_categories_in_step,
    left_because,
    read_snapshot,
    read_when_due,
    scopes_of,
)
from rooms.services.roles import RoleRefused, role_problem, room_for_roles

ACTION = "directory.role"
KIND = Operation.Kind.ROLE_DIRECTORY  # the operation (and audit action) of a Manager's change
ADD_CHUNK = 100  # people given a role in one call to the client (the index is written once)


@dataclass(frozen=True)
class RoleChange:
    """What bringing a room's roles in step did (or would do): people given a role and
    people it was taken from, as (role, person); people a group names but the rules keep
    out, with why; and people the chat server refused (tried again at the next round)."""

    added: tuple[tuple[str, str], ...] = ()
    removed: tuple[tuple[str, str], ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (person, why not)
    failed: tuple[tuple[str, str], ...] = ()

    @property
    def count(self) -> int:
        return len(self.added) + len(self.removed)


def named_in(room_id: str) -> list[DirectoryRole]:
    """The groups and OUs named for the room's roles."""
    return list(DirectoryRole.objects.filter(room_id=room_id).order_by("role", "name"))


def reasons_in(room_id: str, *, people: Iterable[str]) -> dict[str, dict[str, str]]:
    """Why each of these people holds a role in the room through a group or an OU: for
    each role, by person."""
    grants = DirectoryRoleGrant.objects.filter(
        named__room_id=room_id, user_id__in=list(people)
    ).order_by("reason")
    found: dict[str, dict[str, str]] = {role.value: {} for role in Role}
    for role, person, reason in grants.values_list("named__role", "user_id", "reason"):
        found[role].setdefault(person, reason)
    return found


def principals_find(*, actor: User, room_id: str, text: str) -> list[Principal]:
    """Groups and OUs whose name contains `text`, for the room's Managers."""
    room_for_roles(actor, room_id)
    return find_principals(text)


def _role_refused(room: Room, role: Role) -> str:
    """Why no group can be named for this role in this room, or ""."""
    if role is Role.MEMBER and room.settings.privacy is Privacy.OPEN:
        return (
            "Open rooms have no member list: everyone in the category can join. "
            "Make the room Closed or Secret to choose its members."
        )
    if role is Role.PRESENTER and not room.settings.auditorium:
        return "Presenters exist only in auditorium rooms."
    return ""


def _principal(snapshot: Snapshot, room: Room, role: Role, dn: str) -> Principal:
    problem = _role_refused(room, role)
    if problem:
        raise RoleRefused(problem)
    principal = snapshot.principals.get(normal_dn(dn))
    if principal is None:
        raise CategoryInvalid("principal", f"The directory has no group or OU {dn}.")
    if DirectoryRole.objects.filter(room_id=room.id, role=role, dn=principal.dn).exists():
        raise CategoryInvalid(
            "principal", f"{principal.label} is already named as this room's {role.label}s."
        )
    return principal


def principal_preview(
    *, actor: User, room_id: str, role: Role, dn: str, subtree: bool = True
) -> tuple[Principal, RoleChange]:
    """What naming a group or an OU (`subtree`: with the OUs under it) for a role would do
    (nothing changed)."""
    room, category = room_for_roles(actor, room_id)
    snapshot = read_snapshot()
    principal = _principal(snapshot, room, role, dn)
    new = DirectoryRole(
        room_id=room.id, role=role, kind=principal.kind, dn=principal.dn, subtree=subtree
    )
    change = apply_room(room, category, snapshot, named=[*named_in(room.id), new], dry_run=True)
    return principal, change


def removal_preview(
    *, actor: User, room_id: str, named_id: int
) -> tuple[DirectoryRole, RoleChange]:
    """What taking a group or an OU off a role would do: who loses which role."""
    room, category = room_for_roles(actor, room_id)
    named = _named(room, named_id)
    kept = [n for n in named_in(room.id) if n.pk != named.pk]
    return named, apply_room(room, category, read_snapshot(), named=kept, dry_run=True)


def _named(room: Room, named_id: int) -> DirectoryRole:
    named = DirectoryRole.objects.filter(room_id=room.id, pk=named_id).first()
    if named is None:
        raise CategoryInvalid("principal", "That group or OU is not named in this room.")
    return named


def principal_add(
    *, actor: User, room_id: str, role: Role, dn: str, subtree: bool = True
) -> RoleChange:
    """Name a group or an OU (`subtree`: with the OUs under it) as the room's Members,
    Managers or Presenters and give the role to those of its people the rules allow."""
    with audited(KIND, actor=actor, target_kind="room", target_id=room_id) as scope:
        room, category = room_for_roles(actor, room_id, scope)
        snapshot = read_snapshot()
        principal = _principal(snapshot, room, role, dn)
        named, made = DirectoryRole.objects.get_or_create(
            room_id=room.id,
            role=role,
            dn=principal.dn,
            defaults={"kind": principal.kind, "name": principal.name, "subtree": subtree},
        )
        if not made:  # another Manager named it meanwhile
            raise CategoryInvalid("principal", f"{principal.label} was just named by someone else.")
        with recorded(KIND, actor=actor, target_id=room.id, target_label=room.name) as op:
            Naming(principal.dn, str(named), role=str(role)).into(op)
            change = apply_room(room, category, snapshot)
        scope.after = {
            "principal": str(named),
            "dn": principal.dn,
            "role": str(role),
            "people": len(snapshot.expand(principal.dn, subtree=subtree)),
        } | _said(change)
        return change


def principal_remove(*, actor: User, room_id: str, named_id: int) -> RoleChange:
    """Take a group or an OU off a room's role: the people only it gave the role lose it."""
    with audited(KIND, actor=actor, target_kind="room", target_id=room_id) as scope:
        room, category = room_for_roles(actor, room_id, scope)
        named = _named(room, named_id)
        scope.before = {"principal": str(named), "dn": named.dn, "role": named.role}
        kept = [n for n in named_in(room.id) if n.pk != named.pk]
        snapshot = read_snapshot()
        with recorded(KIND, actor=actor, target_id=room.id, target_label=room.name) as op:
            Naming(named.dn, str(named), role=named.role, taking_out=named.pk).into(op)
            change = apply_room(room, category, snapshot, named=kept)
            named.delete()
        scope.after = _said(change)
        return change


def _said(change: RoleChange) -> dict[str, object]:
    return {k: [list(pair) for pair in v] for k, v in vars(change).items() if v}


def directory_retry(op: Operation, *, actor: User) -> Operation:
    """Retry of a change to a category's groups and OUs (`category.scope` naming a DN)
    or a room's (`role.directory`) that its process left part-way: the category or the
    room is brought in step with the directory again, and a group or an OU that was being
    taken out is taken out. Audited as `operation.retry`."""
    of_room = op.kind == KIND
    taking_out = Naming.of(op).taking_out
    with audited(
        "operation.retry",
        actor=actor,
        target_kind="room" if of_room else "category",
        target_id=op.target_id,
        target_label=op.target_label,
        before={"operation": str(op.pk), "kind": op.kind},
    ) as scope:
        client, snapshot = chat_backend(), read_snapshot()
        if of_room:
            room = client.get_room(op.target_id)
            kept = [n for n in named_in(room.id) if n.pk != taking_out]
            category = client.get_category(room.settings.category_id)
            failed = apply_room(room, category, snapshot, named=kept).failed
            if taking_out is not None:
                DirectoryRole.objects.filter(room_id=room.id, pk=taking_out).delete()
        else:
            category = client.get_category(op.target_id)
            left = [s for s in scopes_of(category.id) if s.pk != taking_out]
            failed = tuple(("", p) for p in apply_category(category, snapshot, scopes=left).failed)
            if taking_out is not None:
                DirectoryScope.objects.filter(category_id=category.id, pk=taking_out).delete()
        scope.after = {"failed": [person for _, person in failed]}
    op.status = Operation.Status.UNFINISHED if failed else Operation.Status.SUCCEEDED
    op.error = (
        f"The chat server refused {len(failed)} people; the job runner tries again."
        if failed
        else ""
    )
    op.save(update_fields=["status", "error", "updated_at"])
    return op


def keep_in_step(*, force: bool = False) -> int:
    """The job runner's turn: when a read of the directory is due (`force`: now), apply
    what changed to every category, then to every room (a person the scope just let in
    may now get a room role); how many people's standing or roles changed."""
    snapshot = read_when_due(force=force)
    if snapshot is None:
        return 0
    return keep_categories_in_step(snapshot) + keep_rooms_in_step(snapshot)


def keep_rooms_in_step(snapshot: Snapshot) -> int:
    """Every room that names a group or an OU for a role, in step with the directory; how
    many role changes were made."""
    client = chat_backend()
    changed = 0
    for room_id in sorted(set(DirectoryRole.objects.values_list("room_id", flat=True))):
        try:
            room = client.get_room(room_id)
            category = client.get_category(room.settings.category_id)
        except ChatNotFound:  # the room was deleted: its groups and OUs go with it
            DirectoryRole.objects.filter(room_id=room_id).delete()
            continue
        changed += apply_room(room, category, snapshot).count
    return changed


def apply_room(
    room: Room,
    category: Category,
    snapshot: Snapshot,
    *,
    named: list[DirectoryRole] | None = None,
    dry_run: bool = False,
) -> RoleChange:
    """Bring the room's roles in step with what its groups and OUs stand for now (`named`:
    as if it named these instead; `dry_run`: only say what would change). Presenters are
    taken away first and given last, so a Presenter is a Member throughout. No room lock is
    held: a group of thousands takes minutes, and giving a role twice gives it once."""
    stored = {n.pk: n for n in named_in(room.id)}
    named = list(stored.values()) if named is None else named
    client = chat_backend()
    wanted, why = expand_named(named, snapshot, dry_run=dry_run)
    kinds = stored | {n.pk: n for n in named if n.pk is not None}
    held = {
        (g.named_id, g.user_id): g
        for g in DirectoryRoleGrant.objects.filter(named__room_id=room.id)
    }
    lost: dict[Role, dict[str, list[DirectoryRoleGrant]]] = {r: defaultdict(list) for r in Role}
    for key, grant in held.items():
        if key not in wanted:
            lost[Role(kinds[grant.named_id].role)][grant.user_id].append(grant)

    removing: dict[Role, list[str]] = {}
    for role in Role:
        ours = (p for p, grants in lost[role].items() if any(g.added for g in grants))
        holds = room.principals(role)
        removing[role] = sorted(p for p in ours if p not in why[role] and p in holds)
    # A Member who leaves stops presenting too.
    removing[Role.PRESENTER] = sorted(
        set(removing[Role.PRESENTER]) | (set(removing[Role.MEMBER]) & room.presenters)
    )
    adding: dict[Role, list[str]] = {}
    skipped: dict[str, str] = {}
    will_hold: dict[Role, AbstractSet[str]] = {}  # Members and Managers once this is applied
    for role in Role:  # Members, Managers, then Presenters (who must be Members)
        adding[role] = []
        for person in sorted(p for p in why[role] if p not in room.principals(role)):
            problem = _problem(room, category, role, person, will_hold)
            if problem:
                skipped.setdefault(person, problem)
            else:
                adding[role].append(person)
        will_hold[role] = (room.principals(role) - set(removing[role])) | set(adding[role])
        if role is Role.MANAGER and removing[role] and not will_hold[role]:
            # A room keeps at least one Manager, as when a Manager removes one by name: the
            # last stays, from now on as if named (their grant goes with the group's).
            last = removing[role].pop(0)
            skipped[last] = f"{last} stays a Manager: a room keeps at least one Manager."
            will_hold[role] = frozenset({last})
    if dry_run:
        return RoleChange(
            added=tuple((str(r), p) for r in Role for p in adding[r]),
            removed=tuple((str(r), p) for r in Role for p in removing[r]),
            skipped=tuple(sorted(skipped.items())),
        )

    done: dict[str, list[tuple[str, str]]] = defaultdict(list)
    cause = {
        role: {p: left_because(snapshot, p, (str(g.named) for g in gs)) for p, gs in ours.items()}
        for role, ours in lost.items()
    }
    for person, why_kept in skipped.items():
        if why_kept.endswith("keeps at least one Manager."):
            reason = f"{cause[Role.MANAGER][person]}; {why_kept}"
            _record(room, category, Role.MANAGER, person, "kept", reason, done)
    for role in (Role.PRESENTER, Role.MANAGER, Role.MEMBER):
        for person in removing[role]:
            reason = cause[role].get(person) or cause[Role.MEMBER].get(person, "")
            step = partial(client.remove_from_role, room.id, role, [person])
            _step(room, category, role, person, "removed", reason, done, step)
    names = {client.user_id_for(u): name for u, name in snapshot.people.values()}
    for role in (Role.MEMBER, Role.MANAGER, Role.PRESENTER):
        for start in range(0, len(adding[role]), ADD_CHUNK):
            _add(room, category, role, adding[role][start : start + ADD_CHUNK], why, names, done)

    failed = {p for _, p in done["failed"]}
    holding = {
        role: (room.principals(role) | {p for r, p in done["added"] if r == role})
        - {p for r, p in done["removed"] if r == role}
        for role in Role
    }
    given = {role: {p for r, p in done["added"] if r == role} for role in Role}
    new: list[DirectoryRoleGrant] = []
    with transaction.atomic():
        stale = [g.pk for key, g in held.items() if key not in wanted and g.user_id not in failed]
        DirectoryRoleGrant.objects.filter(pk__in=stale).delete()
        for (pk, person), reason in wanted.items():
            if pk is None:
                continue
            role = Role(kinds[pk].role)
            if person in failed or person not in holding[role]:
                continue
            kept = held.get((pk, person))
            mine = person in given[role]
            if kept is None:
                new.append(
                    DirectoryRoleGrant(named_id=pk, user_id=person, reason=reason, added=mine)
                )
            elif kept.reason != reason or (mine and not kept.added):
                kept.reason, kept.added = reason, kept.added or mine
                kept.save(update_fields=["reason", "added"])
        # Conflicts ignored: the job runner and a Manager may apply at once.
        DirectoryRoleGrant.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
    return RoleChange(
        added=tuple(done["added"]),
        removed=tuple(done["removed"]),
        skipped=tuple(sorted(skipped.items())),
        failed=tuple(done["failed"]),
    )


def _problem(
    room: Room, category: Category, role: Role, person: str, will_hold: dict[Role, AbstractSet[str]]
) -> str:
    """Why the rules keep this person from the role ("" if they do not), with the room's
    Members and Managers as they will be once this change is applied."""
    if role is Role.PRESENTER and category.in_scope(person) and room.settings.auditorium:
        if person in will_hold[Role.MANAGER]:
            return f"{person} is a Manager, who posts in the auditorium already."
        if room.settings.privacy is not Privacy.OPEN and person not in will_hold[Role.MEMBER]:
            return f"{person} must be a Member before becoming a Presenter."
        return ""
    return role_problem(room, category, role, person)


def _add(
    room: Room,
    category: Category,
    role: Role,
    people: list[str],
    why: dict[str, dict[str, str]],
    names: dict[str, str],
    done: dict[str, list[tuple[str, str]]],
) -> None:
    """Give a chunk of people a role; those the chat server confirmed are recorded as
    added, the rest (after a refusal) as failed, each audited."""
    confirmed: list[str] = []
    error = ""
    try:
        chat_backend().add_to_role(room.id, role, people, on_added=confirmed.append)
    except ChatBackendError as exc:
        error = exc.detail
    index.remember_names(room.id, {p: names[p] for p in confirmed if p in names})
    for person in people:
        failed = "" if person in confirmed else error or "not confirmed"
        _record(room, category, role, person, "added", why[role][person], done, failed)


def _step(
    room: Room,
    category: Category,
    role: Role,
    person: str,
    how: str,
    cause: str,
    done: dict[str, list[tuple[str, str]]],
    change: Callable[[], None],
) -> None:
    error = ""
    try:
        change()
    except ChatBackendError as exc:
        error = exc.detail
    _record(room, category, role, person, how, cause, done, error)


def _record(
    room: Room,
    category: Category,
    role: Role,
    person: str,
    how: str,
    cause: str,
    done: dict[str, list[tuple[str, str]]],
    error: str = "",
) -> None:
    done["failed" if error else how].append((str(role), person))
    audit_record(
        action=ACTION,
        outcome=Outcome.FAILED if error else Outcome.SUCCEEDED,
        target_kind="room",
        target_id=room.id,
        target_label=room.name,
        category_id=category.id,
        category_label=category.name,
        after={"person": person, "role": str(role), "change": how, "cause": cause},
        error=error,
        chat_actor=CHAT_ACTOR,
    )
