"""Groups and organisational units of the directory (accounts.directory) in categories'
scopes.

An administrator names a group or an OU in a category's scope, allowed or denied
(audited `category.scope`); everyone it stands for is then put in the scope (their chat
account made first where they have none) or denied the category, at once. After that the
job runner reads the directory every DIRECTORY_POLL_SECONDS (`read_when_due`) and applies
what changed (`keep_categories_in_step`, then rooms.services.directory_roles for rooms):
someone who joined a group comes in, someone who left every group and OU of the category
that held them, and was not in by name, leaves the scope and their room roles in its
rooms; each change is audited `directory.scope` with its cause ("left Support
engineers"). Denied beats allowed. A directory that cannot be read changes nothing.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import accounts.directory as directory
from accounts.directory import DirectoryUnavailable, Principal, Snapshot, normal_dn
from accounts.models import User
from portal.audit import audit_record, audited
from portal.models import Outcome
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.records import Category, Role
from rooms.index import chat_backend
from rooms.models import (
    DirectoryGrant,
    DirectoryRead,
    DirectoryRole,
    DirectoryScope,
    Operation,
)
from rooms.operations import recorded
from rooms.services.categories import CategoryInvalid, _require_admin

T = TypeVar("T")
ACTION = "directory.scope"
SCOPE = (
    Operation.Kind.CATEGORY_SCOPE
)  # the operation (and audit action) of an administrator's change
ALLOWED, DENIED, CREATOR = (s.value for s in DirectoryScope.Standing)
STANDINGS = (ALLOWED, DENIED, CREATOR)
JOIN_CHUNK = 100
CHAT_ACTOR = "the directory"


@dataclass
class Naming:
    """The recorded work of naming a group or an OU in a category's scope or for a room's
    role, or of taking one out (its operation's `change`): the group or OU by DN and as
    pages show it, how it is named (`standing` in a scope, `role` in a room), and, when
    one is taken out, its row (`taking_out`, a DirectoryScope's or DirectoryRole's)."""

    dn: str
    principal: str
    standing: str = ""
    role: str = ""
    taking_out: int | None = None

    @staticmethod
    def recorded_in(op: Operation) -> bool:
        """Whether the operation names or takes out a group or an OU (a category's scope
        change names people otherwise)."""
        return op.kind == Operation.Kind.ROLE_DIRECTORY or (op.kind == SCOPE and "dn" in op.change)

    @classmethod
    def of(cls, op: Operation) -> Naming:
        return cls(**op.change)

    def into(self, op: Operation) -> None:
        op.change = asdict(self)
        op.save(update_fields=["change"])


def _asked(question: Callable[[], T]) -> T:
    """Ask the directory; CategoryInvalid when there is none or it cannot be read."""
    if not directory.configured():
        raise CategoryInvalid("principal", "No directory is configured (DIRECTORY_URL).")
    try:
        return question()
    except DirectoryUnavailable as exc:
        raise CategoryInvalid("principal", str(exc)) from exc


def read_snapshot() -> Snapshot:
    """The directory as it is now (CategoryInvalid when there is none or it cannot be read)."""
    return _asked(directory.read)


def find_principals(text: str) -> list[Principal]:
    """Groups and OUs whose name contains `text` (CategoryInvalid as `read_snapshot`)."""
    return _asked(partial(directory.find, text)) if text.strip() else []


def principals_find(*, actor: User, text: str) -> list[Principal]:
    """Groups and OUs of the directory whose name contains `text`."""
    _require_admin(actor)
    return find_principals(text)


def reasons_in(category_id: str) -> dict[str, str]:
    """Why each person a group or an OU put in (or denied) the category is there."""
    grants = DirectoryGrant.objects.filter(scope__category_id=category_id).order_by("reason")
    found: dict[str, str] = {}
    for user_id, reason in grants.values_list("user_id", "reason"):
        found.setdefault(user_id, reason)
    return found


def scopes_of(category_id: str) -> list[DirectoryScope]:
    return list(DirectoryScope.objects.filter(category_id=category_id).order_by("standing", "name"))


@dataclass(frozen=True)
class Change:
    """What one round for a category did: people put in, taken out, denied, let in again,
    made Creators and no longer."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()
    undenied: tuple[str, ...] = ()
    creators: tuple[str, ...] = ()  # made Creators
    uncreated: tuple[str, ...] = ()  # Creators no longer
    failed: tuple[str, ...] = ()
    # In a what-if: who leaving (or denied) loses which room roles, "Room (Member, Manager)".
    losing: tuple[tuple[str, str], ...] = ()

    @property
    def count(self) -> int:
        changed = (self.added, self.removed, self.denied, self.undenied)
        return sum(len(people) for people in (*changed, self.creators, self.uncreated))


def principal_preview(
    *, actor: User, category_id: str, dn: str, standing: str = "allowed", subtree: bool = True
) -> tuple[Principal, Change]:
    """What naming a group or an OU (`subtree`: with the OUs under it) in the category's
    scope would do (nothing changed)."""
    _require_admin(actor)
    category = chat_backend().get_category(category_id)
    snapshot = read_snapshot()
    principal = _principal(snapshot, category, dn)
    new = DirectoryScope(
        category_id=category.id,
        kind=principal.kind,
        dn=principal.dn,
        standing=_standing(standing),
        subtree=subtree,
    )
    change = apply_category(category, snapshot, scopes=[*scopes_of(category.id), new], dry_run=True)
    return principal, change


def removal_preview(
    *, actor: User, category_id: str, scope_id: int
) -> tuple[DirectoryScope, Change]:
    """What taking a group or an OU out of the category's scope would do."""
    _require_admin(actor)
    category = chat_backend().get_category(category_id)
    named = _named(category, scope_id)
    kept = [s for s in scopes_of(category.id) if s.pk != named.pk]
    return named, apply_category(category, read_snapshot(), scopes=kept, dry_run=True)


def _principal(snapshot: Snapshot, category: Category, dn: str) -> Principal:
    principal = snapshot.principals.get(normal_dn(dn))
    if principal is None:
        raise CategoryInvalid("principal", f"The directory has no group or OU {dn}.")
    held = DirectoryScope.objects.filter(category_id=category.id, dn=principal.dn).first()
    if held is not None:
        raise CategoryInvalid(
            "principal",
            f"{principal.label} is already named in this category "
            f"({held.get_standing_display().lower()}).",
        )
    return principal


def _standing(standing: str) -> str:
    if standing not in STANDINGS:
        raise CategoryInvalid("standing", "Say allowed, denied or creator.")
    return standing


def _named(category: Category, scope_id: int) -> DirectoryScope:
    named = DirectoryScope.objects.filter(category_id=category.id, pk=scope_id).first()
    if named is None:
        raise CategoryInvalid("principal", "That group or OU is not in this category.")
    return named


def principal_add(
    *, actor: User, category_id: str, dn: str, standing: str = "allowed", subtree: bool = True
) -> Change:
    """Name a group or an OU (`subtree`: with the OUs under it) in the category's scope,
    as denied it, or as its Creators (those of its people in scope), and apply it."""
    with audited(SCOPE, actor=actor, target_kind="category") as scope:
        _require_admin(actor)
        category = chat_backend().get_category(category_id)
        scope.target_id = scope.category_id = category.id
        scope.target_label = scope.category_label = category.name
        snapshot = read_snapshot()
        principal = _principal(snapshot, category, dn)
        named, made = DirectoryScope.objects.get_or_create(
            category_id=category.id,
            dn=principal.dn,
            defaults={
                "kind": principal.kind,
                "name": principal.name,
                "standing": _standing(standing),
                "subtree": subtree,
            },
        )
        if not made:  # another administrator named it meanwhile
            raise CategoryInvalid("principal", f"{principal.label} was just named by someone else.")
        with recorded(SCOPE, actor=actor, target_id=category.id, target_label=category.name) as op:
            Naming(principal.dn, str(named), standing=standing).into(op)
            change = apply_category(category, snapshot)
        scope.after = {
            "principal": str(named),
            "dn": principal.dn,
            "standing": standing,
            "people": len(snapshot.expand(principal.dn, subtree=subtree)),
        } | _said(change)
        return change


def principal_remove(*, actor: User, category_id: str, scope_id: int) -> Change:
    """Take a group or an OU out of the category's scope: the people only it held leave
    the scope (and their room roles), those only it denied are let in again."""
    with audited(SCOPE, actor=actor, target_kind="category") as scope:
        _require_admin(actor)
        category = chat_backend().get_category(category_id)
        scope.target_id = scope.category_id = category.id
        scope.target_label = scope.category_label = category.name
        named = _named(category, scope_id)
        scope.before = {"principal": str(named), "dn": named.dn, "standing": named.standing}
        kept = [s for s in scopes_of(category.id) if s.pk != named.pk]
        snapshot = read_snapshot()
        with recorded(SCOPE, actor=actor, target_id=category.id, target_label=category.name) as op:
            Naming(named.dn, str(named), standing=named.standing, taking_out=named.pk).into(op)
            change = apply_category(category, snapshot, scopes=kept)
            named.delete()
        scope.after = _said(change)
        return change


def _said(change: Change) -> dict[str, list[str]]:
    return {k: list(v) for k, v in vars(change).items() if v}


def read_when_due(*, force: bool = False) -> Snapshot | None:
    """The job runner's read of the directory: once every DIRECTORY_POLL_SECONDS (or at
    once, `force`) while a category or a room names a group or an OU; None when not due
    or when the directory cannot be read (recorded for /health/ready)."""
    global _read_at
    named = DirectoryScope.objects.exists() or DirectoryRole.objects.exists()
    if not directory.configured() or not named:
        return None
    if not force and time.monotonic() - _read_at < settings.DIRECTORY_POLL_SECONDS:
        return None
    _read_at = time.monotonic()
    state, _ = DirectoryRead.objects.get_or_create(key="directory")
    try:
        snapshot = directory.read()
    except DirectoryUnavailable as exc:
        state.failed_at, state.error = timezone.now(), str(exc)
        state.save()
        return None
    state.read_at, state.people, state.error = timezone.now(), len(snapshot.people), ""
    state.save()
    return snapshot


def keep_categories_in_step(snapshot: Snapshot) -> int:
    """Apply what changed in the directory to every category that names a group or an
    OU; how many people's standing changed."""
    changed = 0
    client = chat_backend()
    categories = DirectoryScope.objects.values_list("category_id", flat=True).distinct()
    for category_id in sorted(set(categories)):
        try:
            category = client.get_category(category_id)
        except ChatNotFound:  # the category was deleted: its groups and OUs go with it
            DirectoryScope.objects.filter(category_id=category_id).delete()
            continue
        changed += apply_category(category, snapshot).count
    return changed


_read_at = float("-inf")


def directory_state() -> dict[str, object] | None:
    """The directory's last reads, for /health/ready (None: no directory configured)."""
    if not directory.configured():
        return None
    state = DirectoryRead.objects.filter(key="directory").first() or DirectoryRead()
    return {
        "status": "unavailable" if state.error else "ok",
        "read_at": state.read_at.isoformat() if state.read_at else None,
        "people": state.people,
        "error": state.error or None,
        "poll_seconds": settings.DIRECTORY_POLL_SECONDS,
    }


def expand_named(
    named: Sequence[DirectoryScope | DirectoryRole], snapshot: Snapshot, *, dry_run: bool
) -> tuple[dict[tuple[int | None, str], str], dict[str, dict[str, str]]]:
    """Who the named groups and OUs (of a scope, or of a room's roles) stand for now: each
    (named, chat ID) with why, and for each standing or role what it gives, each person's
    first reason. How many people each stands for is kept up to date (not in a dry run)."""
    client = chat_backend()
    wanted: dict[tuple[int | None, str], str] = {}
    why: dict[str, dict[str, str]] = defaultdict(dict)
    for each in named:
        people = snapshot.expand(each.dn, subtree=each.subtree)
        if not dry_run and each.pk is not None and each.people != len(people):
            each.people = len(people)
            each.save(update_fields=["people"])
        gives = each.standing if isinstance(each, DirectoryScope) else each.role
        for username, reason in people.items():
            person = client.user_id_for(username)
            wanted[(each.pk, person)] = reason
            why[gives].setdefault(person, reason)
    return wanted, why


def apply_category(
    category: Category,
    snapshot: Snapshot,
    *,
    scopes: list[DirectoryScope] | None = None,
    dry_run: bool = False,
) -> Change:
    """Bring the category's scope and Creators in step with what its groups and OUs stand
    for now (`scopes`: as if it named these instead; `dry_run`: only say what would
    change). Each person's change is audited; one the chat server refuses is left for the
    next round."""
    stored = {s.pk: s for s in scopes_of(category.id)}
    scopes = list(stored.values()) if scopes is None else scopes
    client = chat_backend()
    wanted, why = expand_named(scopes, snapshot, dry_run=dry_run)
    kinds = stored | {s.pk: s for s in scopes if s.pk is not None}  # what each grant was for
    grants = list(DirectoryGrant.objects.filter(scope__category_id=category.id))
    held: dict[tuple[int | None, str], DirectoryGrant] = {
        (g.scope_id, g.user_id): g for g in grants
    }
    allowed, denied, creating = (set(why[k]) for k in STANDINGS)

    # Who loses the last grant of a standing that the portal had given them (not by name).
    lost: dict[str, dict[str, list[DirectoryGrant]]] = {k: defaultdict(list) for k in STANDINGS}
    for key, grant in held.items():
        if key not in wanted:
            lost[kinds[grant.scope_id].standing][grant.user_id].append(grant)
    ours = {k: {p for p, gs in lost[k].items() if any(g.added for g in gs)} for k in STANDINGS}
    leaving = sorted(p for p in ours[ALLOWED] if p not in allowed and p in category.allowed_members)
    undenying = sorted(p for p in ours[DENIED] if p not in denied and p in category.denied_members)
    joining = sorted(
        p
        for p in allowed - denied
        if p not in category.allowed_members and p not in category.denied_members
    )
    denying = sorted(p for p in denied if p not in category.denied_members)
    in_scope = (category.allowed_members | set(joining)) - set(leaving) - denied
    making = sorted(p for p in creating & in_scope if p not in category.creators)
    unmaking = sorted(
        p for p in ours[CREATOR] if p not in creating and p in category.creators and p in in_scope
    )
    if dry_run:
        return Change(
            added=tuple(joining),
            removed=tuple(leaving),
            denied=tuple(denying),
            undenied=tuple(undenying),
            creators=tuple(making),
            uncreated=tuple(unmaking),
            losing=_losing(category, [*leaving, *denying]),
        )

    done: dict[str, list[str]] = defaultdict(list)
    cause = {
        k: {p: left_because(snapshot, p, (str(g.scope) for g in gs)) for p, gs in lost[k].items()}
        for k in STANDINGS
    }
    names = {username: name for username, name in snapshot.people.values()}
    steps: list[tuple[str, str, str, Callable[[], None]]] = [
        *((p, "removed", cause[ALLOWED][p], partial(_leave, category, p)) for p in leaving),
        *(
            (p, "undenied", cause[DENIED][p], partial(client.undeny_in_category, category.id, [p]))
            for p in undenying
        ),
        *((p, "denied", why[DENIED][p], partial(_deny, category, p)) for p in denying),
    ]
    for person, how, reason, change in steps:
        _step(category, person, how, reason, done, change)
    # Newcomers JOIN_CHUNK at a time (the index reads the category once a chunk); a chunk
    # the chat server refuses is tried again one by one, to tell whom it refused.
    for start in range(0, len(joining), JOIN_CHUNK):
        chunk = joining[start : start + JOIN_CHUNK]
        try:
            _join(category, chunk, names)
        except ChatBackendError:
            for person in chunk:
                step = partial(_join, category, [person], names)
                _step(category, person, "added", why[ALLOWED][person], done, step)
        else:
            for person in chunk:
                _record(category, person, "added", why[ALLOWED][person], done)
    # Creators last, in one change: among the people now in scope.
    failed = set(done["failed"])
    making = [p for p in making if p not in failed]
    if making or unmaking:
        now = client.get_category(category.id)
        error = ""
        try:
            client.set_category_creators(category.id, (now.creators | set(making)) - set(unmaking))
        except ChatBackendError as exc:
            error = exc.detail
        for person in making:
            _record(category, person, "creator", why[CREATOR][person], done, error)
        for person in unmaking:
            _record(category, person, "no longer creator", cause[CREATOR][person], done, error)
        failed = set(done["failed"])

    # The grants as they now stand: a grant is `added` when its person did not hold that
    # standing by name, which carries over to the grants that remain when one goes.
    given = {
        ALLOWED: ours[ALLOWED] | set(done["added"]),
        DENIED: ours[DENIED] | set(done["denied"]),
        CREATOR: ours[CREATOR] | set(done["creator"]),
    }
    held_before = {
        ALLOWED: category.allowed_members,
        DENIED: category.denied_members,
        CREATOR: category.creators,
    }
    new: list[DirectoryGrant] = []
    with transaction.atomic():
        stale = [g.pk for key, g in held.items() if key not in wanted and g.user_id not in failed]
        DirectoryGrant.objects.filter(pk__in=stale).delete()
        for (pk, person), reason in wanted.items():
            if person in failed or pk is None:
                continue
            standing = kinds[pk].standing
            mine = person in given[standing]
            kept = held.get((pk, person))
            if kept is None:
                added = mine or person not in held_before[standing]
                new.append(DirectoryGrant(scope_id=pk, user_id=person, reason=reason, added=added))
            elif kept.reason != reason or (mine and not kept.added):
                kept.reason, kept.added = reason, kept.added or mine
                kept.save(update_fields=["reason", "added"])
        # Conflicts ignored: the job runner and an administrator may apply at once.
        DirectoryGrant.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
    return Change(
        added=tuple(done["added"]),
        removed=tuple(done["removed"]),
        denied=tuple(done["denied"]),
        undenied=tuple(done["undenied"]),
        creators=tuple(done["creator"]),
        uncreated=tuple(done["no longer creator"]),
        failed=tuple(done["failed"]),
    )


def _losing(category: Category, people: list[str]) -> tuple[tuple[str, str], ...]:
    """The room roles each of these people holds in the category's rooms (from the index),
    said as "Room A (Member, Manager); Room B (Presenter)"; those with none left out."""
    rooms = chat_backend().get_rooms(category.room_ids) if people else []
    found = []
    for person in people:
        held = [
            f"{room.name} ({', '.join(r.label for r in room.roles_of(person))})"
            for room in rooms
            if room.roles_of(person)
        ]
        if held:
            found.append((person, "; ".join(held)))
    return tuple(found)


def left_because(snapshot: Snapshot, person: str, held_by: Iterable[str]) -> str:
    """Why someone lost what groups or OUs gave them: disabled in the directory, gone from
    it, or no longer in those groups or OUs."""
    username = person.split(":", 1)[0].removeprefix("@")
    return snapshot.gone(username) or "no longer in " + ", ".join(held_by)


def _step(
    category: Category,
    person: str,
    how: str,
    cause: str,
    done: dict[str, list[str]],
    change: Callable[[], None],
) -> None:
    """One person's change, audited with its cause; a chat server that refuses it leaves
    it for the next round."""
    error = ""
    try:
        change()
    except ChatBackendError as exc:
        error = exc.detail
    _record(category, person, how, cause, done, error)


def _record(
    category: Category,
    person: str,
    how: str,
    cause: str,
    done: dict[str, list[str]],
    error: str = "",
) -> None:
    done["failed" if error else how].append(person)
    audit_record(
        action=ACTION,
        outcome=Outcome.FAILED if error else Outcome.SUCCEEDED,
        target_kind="category",
        target_id=category.id,
        target_label=category.name,
        category_id=category.id,
        category_label=category.name,
        after={"person": person, "change": how, "cause": cause},
        error=error,
        chat_actor=CHAT_ACTOR,
    )


def _join(category: Category, people: list[str], names: dict[str, str]) -> None:
    """Into the scope, each with a chat account of the directory's name first."""
    client = chat_backend()
    for person in people:
        localpart = person.split(":", 1)[0].removeprefix("@")
        client.provision_user(localpart, display_name=names.get(localpart, localpart))
    client.add_to_category_scope(category.id, people)


def _deny(category: Category, person: str) -> None:
    _drop_room_roles(category, person)
    chat_backend().deny_in_category(category.id, [person])


def _leave(category: Category, person: str) -> None:
    _drop_room_roles(category, person)
    client = chat_backend()
    client.remove_from_category_scope(category.id, [person])
    if person in category.creators:
        client.set_category_creators(category.id, category.creators - {person})


def _drop_room_roles(category: Category, person: str) -> None:
    """Someone leaving the scope loses their roles in its rooms (Presenters first: they
    must stay Members until their Presenter role is gone)."""
    client = chat_backend()
    for room in client.get_rooms(category.room_ids):
        roles: Iterable[Role] = sorted(room.roles_of(person), key=lambda r: r is not Role.PRESENTER)
        for role in roles:
            client.remove_from_role(room.id, role, [person])
