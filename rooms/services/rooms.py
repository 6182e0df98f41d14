"""Room lifecycle: every change a person makes to a room, checked, audited, carried out.

Each service checks permission, writes one audit entry whatever the outcome, and calls
the chat backend client. Services never render.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypedDict

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from accounts.models import User
from portal.audit import AuditScope, audit_record, audited, current_request
from portal.models import Outcome
from rooms import index, operations
from rooms.backend.errors import ChatBackendError, ChatNotFound, RoomCreationIncomplete
from rooms.backend.records import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    NOT_ONE_LINE,
    AddIn,
    Category,
    Invitations,
    Privacy,
    Role,
    Room,
    RoomSettings,
    is_one_line,
)
from rooms.chatserver import text
from rooms.chatserver.policy import name_key
from rooms.chatserver.text import clean
from rooms.index import chat_backend
from rooms.locks import one_writer
from rooms.models import AddInEntry, JoinRequest, Operation, RoomSubmission
from rooms.permissions import can_create_in, can_delete, can_manage, can_view

SUBMITTED_FIELDS = ("name", "description", "category", "privacy", "auditorium", "invitations")


class RoomSettingsInvalid(Exception):
    """A setting breaks a rule; `field` names the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class StaleEdit(Exception):
    """Someone else changed the room after this person loaded it."""

    def __init__(self, current: Room) -> None:
        super().__init__("Someone else changed this room while you were editing it.")
        self.current = current


class SubmissionInProgress(Exception):
    """The same form was posted again while the first post is still being carried out."""


def snapshot(room: Room | RoomSettings) -> dict[str, Any]:
    """A room's settings as plain values, for audit entries and edit versions."""
    settings = room.settings if isinstance(room, Room) else room
    values = {
        key: str(value) if isinstance(value, str) else value
        for key, value in asdict(settings).items()
    }
    if isinstance(room, Room):
        values["disabled"] = room.disabled
        values |= room.options.values()
        values["add_ins"] = [a.id for a in room.add_ins]
    return values


def room_version(room: Room) -> str:
    """Changes whenever any setting of the room changes; edit forms carry it."""
    encoded = json.dumps(snapshot(room), sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def name_unavailable(name: str) -> str:
    """The one answer for a taken name: it says nothing of the room or request that has
    it (which may be Secret, or in a category the person cannot see)."""
    return (
        f"The name “{name.strip()}” is not available: names are unique, in any letter case "
        "and however alike their letters look."
    )


def name_problem(name: str, *, exclude_room_id: str = "") -> str:
    """What is wrong with a room name, or "" (Lync's Check Names)."""
    name = name.strip()
    if not name:
        return "Give the room a name."
    if len(name) > NAME_MAX_LENGTH:
        return f"A room name has at most {NAME_MAX_LENGTH} characters (this one has {len(name)})."
    if not is_one_line(name):
        return NOT_ONE_LINE
    if problem := text.name_problem(name):
        return problem
    if chat_backend().room_name_taken(name, exclude_room_id=exclude_room_id):
        return name_unavailable(name)
    return ""


def _claim_name(name: str) -> None:
    """Hold the name in the index before the room is made or renamed: of two people
    taking one name at the same moment, the database lets exactly one have it."""
    if not index.claim_name(name):
        raise RoomSettingsInvalid("name", name_unavailable(name))


def _check_settings(settings: RoomSettings, *, exclude_room_id: str = "") -> None:
    problem = name_problem(settings.name, exclude_room_id=exclude_room_id)
    if problem:
        raise RoomSettingsInvalid("name", problem)
    if len(settings.description) > DESCRIPTION_MAX_LENGTH:
        raise RoomSettingsInvalid(
            "description", f"A description has at most {DESCRIPTION_MAX_LENGTH} characters."
        )
    if problem := text.description_problem(settings.description):
        raise RoomSettingsInvalid("description", problem)


def _effective(settings: RoomSettings, category: Category) -> RoomSettings:
    """Invitations are off wherever the category does not allow them."""
    if not category.invitations_allowed and settings.invitations is Invitations.INHERIT:
        return replace(settings, invitations=Invitations.OFF)
    return settings


def _in_category(scope: AuditScope, room: Room, category: Category | None = None) -> None:
    scope.target_id, scope.target_label = room.id, room.name
    scope.category_id = room.settings.category_id
    if category is not None:
        scope.category_label = category.name


def room_create(
    *,
    actor: User,
    settings: RoomSettings,
    submission: uuid.UUID,
    owner: User | None = None,
) -> Room:
    """Create a room in a category where the actor holds create rights.

    The owner (the actor, unless an approver creates a requested room for its requester)
    becomes a Manager, and a Member of a Closed or Secret room. Posting the same form
    (the same submission token) again returns the room made the first time.
    """
    owner = owner or actor
    client = chat_backend()
    with audited(
        "room.create",
        actor=actor,
        target_kind="room",
        target_label=settings.name,
        category_id=settings.category_id,
    ) as scope:
        category = client.get_category(settings.category_id)
        scope.category_label = category.name
        if not can_create_in(actor, category):
            raise PermissionDenied(f"You cannot create rooms in the category “{category.name}”.")
        settings = _effective(replace(settings, name=clean(settings.name)), category)
        scope.after = snapshot(settings)
        try:
            with transaction.atomic():
                record = RoomSubmission.objects.create(token=submission, actor=actor, owner=owner)
        except IntegrityError:
            earlier = RoomSubmission.objects.get(token=submission)
            if (earlier.owner_id or earlier.actor_id) != owner.pk:
                # Someone else's form token: theirs to resend, not this person's.
                raise RoomSettingsInvalid(
                    "", "This form cannot be sent: reload the page and fill it in again."
                ) from None
            if earlier.room_id:
                scope.target_id = earlier.room_id
                return client.get_room(earlier.room_id)
            raise SubmissionInProgress(
                "This form is already being submitted. Wait a moment, then look in My rooms."
            ) from None
        try:
            _check_settings(settings)
            _claim_name(settings.name)
        except RoomSettingsInvalid:
            record.delete()  # the person may correct the form and post it again
            raise
        try:
            people = [owner.chat_id] if owner.chat_id else []
            room = client.create_room(
                settings,
                managers=people,
                members=people if settings.privacy is not Privacy.OPEN else [],
            )
        except ChatBackendError as exc:
            if not (isinstance(exc, RoomCreationIncomplete) and not exc.rolled_back):
                index.release_claim(settings.name)  # no room holds it
            record.delete()
            raise
        record.room_id = room.id
        record.save(update_fields=["room_id"])
        scope.target_id = room.id
        return room


SUBMISSION_POLL_SECONDS = 0.25


def submission_room(submission: uuid.UUID, *, wait: float) -> Room | None:
    """The room a submission still being carried out makes, once it is made (waiting up
    to `wait` seconds); None if it is not made by then, or its making failed."""
    deadline = time.monotonic() + wait
    while True:
        record = RoomSubmission.objects.filter(token=submission).first()
        if record is None:  # the first request failed, and let the form go
            return None
        if record.room_id:
            return chat_backend().get_room(record.room_id)
        if time.monotonic() > deadline:
            return None
        time.sleep(SUBMISSION_POLL_SECONDS)


def room_create_check(*, actor: User, settings: RoomSettings) -> RoomSettings:
    """The settings a room would be made with, checked as `room_create` checks them, for a
    what-if: nothing is made or audited."""
    category = chat_backend().get_category(settings.category_id)
    if not can_create_in(actor, category):
        raise PermissionDenied(f"You cannot create rooms in the category “{category.name}”.")
    settings = _effective(replace(settings, name=clean(settings.name)), category)
    _check_settings(settings)
    return settings


def submitted_room_id(*, actor: User, submission: str) -> str:
    """The room an earlier post of this same form created, or "" (posted twice)."""
    try:
        token = uuid.UUID(submission)
    except ValueError:
        return ""
    record = RoomSubmission.objects.filter(token=token, actor=actor).exclude(room_id="").first()
    return record.room_id if record else ""


def room_create_rejected(*, actor: User, data: Any, errors: Any) -> None:
    """Record a create-room form that was refused for bad input."""
    audit_record(
        action="room.create",
        outcome=Outcome.FAILED,
        actor=actor,
        target_kind="room",
        target_label=str(data.get("name", ""))[:512],
        category_id=str(data.get("category", ""))[:255],
        after={key: str(data.get(key, ""))[:512] for key in SUBMITTED_FIELDS},
        error="; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()),
    )


def _managed_room(actor: User, room_id: str, scope: AuditScope) -> tuple[Room, Category]:
    client = chat_backend()
    room = client.get_room(room_id)
    category = client.get_category(room.settings.category_id)
    _in_category(scope, room, category)
    scope.before = snapshot(room)
    if not can_manage(actor, room):
        raise PermissionDenied("Only the room's Managers and portal administrators change it.")
    return room, category


def room_update(
    *,
    actor: User,
    room_id: str,
    name: str,
    description: str,
    auditorium: bool,
    invitations: Invitations,
    version: str,
) -> Room:
    """Change a room's name, description, auditorium and invitations.

    Refused, with the current room, when someone changed it after `version` was read.
    """
    change: operations.RoomTarget = {
        "settings": {
            "name": clean(name),
            "description": description,
            "auditorium": auditorium,
            "invitations": str(invitations),
        }
    }
    with (
        audited("room.update", actor=actor, target_kind="room") as scope,
        operations.tracked("room.update", actor=actor, room_id=room_id, change=change) as op,
        one_writer(room_id),
    ):
        room, category = _managed_room(actor, room_id, scope)
        if version != room_version(room):
            raise StaleEdit(room)
        settings = _effective(
            replace(
                room.settings,
                name=clean(name),
                description=description,
                auditorium=auditorium,
                invitations=invitations,
            ),
            category,
        )
        scope.after = snapshot(settings)
        _check_settings(settings, exclude_room_id=room.id)
        renamed = name_key(settings.name) != name_key(room.name)
        if renamed:
            _claim_name(settings.name)
        change["settings"]["invitations"] = str(settings.invitations)
        # Presenters exist only in auditoriums (docs/architecture.md §3.5).
        leaving = {} if settings.auditorium else {p: ["presenter"] for p in room.presenters}
        try:
            updated = op.run(room, change=change, remove=leaving)
        except BaseException:
            if renamed:  # given back, unless the room took it on the chat server meanwhile
                index.release_claim(settings.name)
            raise
        scope.after = snapshot(updated)
        return updated


def room_change_preview(
    *, actor: User, room_id: str, changes: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """What a change of settings (any of name, description, auditorium, invitations,
    privacy, disabled) would do, checked as if it were made but not made: the room's
    settings before and after, and who would lose the Presenter role. Not audited."""
    client = chat_backend()
    room = client.get_room(room_id)
    category = client.get_category(room.settings.category_id)
    if not can_manage(actor, room):
        raise PermissionDenied("Only the room's Managers and portal administrators change it.")
    if changes.get("category_options") and not actor.is_administrator:
        raise PermissionDenied(CATEGORY_OPTIONS_ONLY)
    typed = {k: v for k, v in changes.items() if k not in NOT_SETTINGS}
    if "privacy" in typed:
        typed["privacy"] = Privacy(typed["privacy"])
    if "invitations" in typed:
        typed["invitations"] = Invitations(typed["invitations"])
    if "name" in typed:
        typed["name"] = clean(typed["name"])
    settings = _effective(replace(room.settings, **typed), category)
    _check_settings(settings, exclude_room_id=room.id)
    after = snapshot(settings) | {"disabled": changes.get("disabled", room.disabled)}
    after |= (category.options if changes.get("category_options") else room.options).values()
    after["add_ins"] = [a.id for a in room.add_ins if a.id != changes.get("detach_add_in")]
    losing = [] if settings.auditorium else sorted(room.presenters)
    return snapshot(room), after, losing


def room_change(
    *, actor: User, room_id: str, changes: dict[str, Any], version: str | None = None
) -> Room:
    """Change any of a room's settings, its privacy and whether it is disabled, give it its
    category's chat options (`category_options`) and take an add-in out of it
    (`detach_add_in`), each part as its own page does it (its own operation and audit
    entry).

    With `version` (an API `If-Match`), refused with StaleEdit unless the room is still at
    that version when its first part is made, under the room's lock."""
    room = current = chat_backend().get_room(room_id)
    expected = version
    if {"name", "description", "auditorium", "invitations"} & changes.keys():
        room = room_update(
            actor=actor,
            room_id=room_id,
            name=changes.get("name", current.settings.name),
            description=changes.get("description", current.settings.description),
            auditorium=changes.get("auditorium", current.settings.auditorium),
            invitations=Invitations(changes.get("invitations", current.settings.invitations)),
            version=expected or room_version(current),
        )
        expected = None
    if "privacy" in changes:
        room = room_set_privacy(
            actor=actor, room_id=room_id, privacy=Privacy(changes["privacy"]), version=expected
        )
        expected = None
    if "disabled" in changes:
        room = room_set_disabled(
            actor=actor, room_id=room_id, disabled=changes["disabled"], version=expected
        )
        expected = None
    if changes.get("category_options"):
        room = room_take_category_options(actor=actor, room_id=room_id, version=expected)
        expected = None
    if "detach_add_in" in changes:
        _still_at(room, expected)
        room = room_add_in_detach(
            actor=actor, room_id=room_id, add_in_id=str(changes["detach_add_in"])
        )
    return room


class RoomResult(TypedDict, total=False):
    """What became of one room of a change made to many."""

    room: str
    result: str  # changed, unchanged, would change, refused, not found, failed
    detail: str  # why it was refused or failed
    after: dict[str, Any]  # the room's settings after it (an audit snapshot)


def room_change_result(
    *, actor: User, room_id: str, changes: dict[str, Any], dry_run: bool
) -> RoomResult:
    """One room of a change made to many: what became of it (changed, unchanged, would
    change, refused, not found, failed), never an exception, so the others go on."""
    try:
        room = chat_backend().get_room(room_id)
        if not can_view(actor, room, chat_backend().get_category(room.settings.category_id)):
            raise ChatNotFound("")
        before, after, _ = room_change_preview(actor=actor, room_id=room_id, changes=changes)
        if not dry_run and after != before:
            after = snapshot(room_change(actor=actor, room_id=room_id, changes=changes))
    except ChatNotFound:
        return {"room": room_id, "result": "not found", "detail": "No such room, or not yours."}
    except PermissionDenied as exc:
        return {"room": room_id, "result": "refused", "detail": str(exc)}
    except RoomSettingsInvalid as exc:
        return {"room": room_id, "result": "refused", "detail": exc.message}
    except StaleEdit:
        return {"room": room_id, "result": "failed", "detail": "Changed meanwhile: send it again."}
    except ChatBackendError as exc:
        return {"room": room_id, "result": "failed", "detail": exc.detail}
    if after == before:
        return {"room": room_id, "result": "unchanged", "after": after}
    return {"room": room_id, "result": "would change" if dry_run else "changed", "after": after}


CATEGORY_OPTIONS_ONLY = (
    "A room's chat history and file upload are its category's options: the portal's "
    "administrators set them on the category."
)
# What a change to many rooms may hold besides settings: disabled, the category's chat
# options, an add-in taken out (by the register's removal).
NOT_SETTINGS = ("disabled", "category_options", "detach_add_in")
BULK = Operation.Kind.ROOMS_BULK
BULK_CHUNK = 20


# What became of a room of a change to many that counts as done (a Retry leaves it).
DONE_RESULTS = ("changed", "unchanged")


@dataclass
class RoomsChange:
    """The recorded work of a `rooms.bulk` operation (its `change`): one change (as
    `PATCH /rooms/{id}` takes it) for rooms in order, and what became of each room done
    so far (`room_change_result`'s answer); a what-if changes nothing."""

    rooms: list[str]
    changes: dict[str, Any]
    results: list[RoomResult] = field(default_factory=list)
    dry_run: bool = False

    @classmethod
    def of(cls, op: Operation) -> RoomsChange:
        return cls(**op.change)

    def into(self, op: Operation) -> None:
        op.change = asdict(self)

    def next_rooms(self, chunk: int) -> list[str]:
        return self.rooms[len(self.results) : len(self.results) + chunk]

    @property
    def progress(self) -> tuple[int, int]:
        return len(self.results), len(self.rooms)

    @property
    def not_done(self) -> list[RoomResult]:
        """The rooms it did not change (a what-if's refusals are its answer)."""
        return [r for r in self.results if r["result"] not in DONE_RESULTS]


def bulk_change_start(
    *,
    actor: User,
    room_ids: list[str],
    changes: dict[str, Any],
    dry_run: bool = False,
    label: str = "",
) -> Operation:
    """Record a change for many rooms, applied a chunk at a time by the job runner
    (`bulk_change_step`); its operation says how far it got and what became of each room.
    A what-if (`dry_run`) is run the same way and changes nothing."""
    request = current_request.get()
    op = Operation(
        kind=BULK,
        target_label=(label or f"{len(room_ids)} rooms") + (" (what-if)" if dry_run else ""),
        actor=actor,
        request_id=getattr(request, "request_id", "") if request is not None else "",
    )
    RoomsChange(list(dict.fromkeys(room_ids)), changes, dry_run=dry_run).into(op)
    op.save()
    return op


def bulk_change_step(*, chunk: int = BULK_CHUNK) -> int:
    """Apply the next rooms of every running change to many rooms; how many were done."""
    done = 0
    for op in Operation.objects.filter(kind=BULK, status=Operation.Status.RUNNING).select_related(
        "actor"
    ):
        work = RoomsChange.of(op)
        actor = op.actor
        if actor is None:  # its owner's account was removed meanwhile
            op.status, op.error = Operation.Status.UNFINISHED, "Its owner's account is gone."
            op.save()
            continue
        for room_id in work.next_rooms(chunk):
            work.results.append(
                room_change_result(
                    actor=actor, room_id=room_id, changes=work.changes, dry_run=work.dry_run
                )
            )
            work.into(op)
            op.save(update_fields=["change", "updated_at"])
            done += 1
        finished, total = work.progress
        if finished == total:
            failed = [] if work.dry_run else work.not_done
            op.status = Operation.Status.UNFINISHED if failed else Operation.Status.SUCCEEDED
            op.error = f"{len(failed)} of {total} rooms were not changed." if failed else ""
            op.save()
    return done


def bulk_change_retry(op: Operation) -> Operation:
    """Run the rooms of a change to many that were not changed again (the worker does)."""
    work = RoomsChange.of(op)
    kept = [r for r in work.results if r["result"] in DONE_RESULTS]
    done = {r["room"] for r in kept}
    work.rooms = [r for r in work.rooms if r in done] + [r for r in work.rooms if r not in done]
    work.results = kept
    work.into(op)
    op.status, op.error = Operation.Status.RUNNING, ""
    op.save()
    return op


def privacy_change_warning(room: Room, category: Category, privacy: Privacy) -> str:
    """What a person must confirm before this privacy change, or "" when nothing."""
    if privacy is room.settings.privacy:
        return ""
    if privacy is Privacy.SECRET:
        return (
            "The room will disappear from the category for everyone who is not a member. "
            "Only its members will be able to find it or get in."
        )
    if privacy is Privacy.OPEN:
        count = len(room.members)
        return (
            f"Everyone in the category “{category.name}” will be able to find and join the "
            f"room. The member list ({count} {'person' if count == 1 else 'people'}) is "
            "kept, and used again if you make the room Closed or Secret later."
        )
    count = len(room.members)
    if room.settings.privacy is Privacy.SECRET:  # to Closed: the room is shown
        return (
            f"The room will be listed in the category “{category.name}”: everyone in its "
            "scope will see its name and description, and can ask to join. Only its "
            "members get in."
        )
    return (  # Open to Closed: the door shuts
        f"From now on only members get in: the {count} {'person' if count == 1 else 'people'}"
        f" in it now stay members, and everyone else in “{category.name}” can find the "
        "room and ask to join."
    )


def room_set_privacy(
    *, actor: User, room_id: str, privacy: Privacy, version: str | None = None
) -> Room:
    """Make a room Open, Closed or Secret; with `version`, only if the room is still at it."""
    change: operations.RoomTarget = {"settings": {"privacy": str(privacy)}}
    with (
        audited("room.privacy", actor=actor, target_kind="room") as scope,
        operations.tracked("room.privacy", actor=actor, room_id=room_id, change=change) as op,
        one_writer(room_id),
    ):
        room, _ = _managed_room(actor, room_id, scope)
        _still_at(room, version)
        scope.after = snapshot(replace(room.settings, privacy=privacy))
        if privacy is room.settings.privacy:
            return room
        updated = op.run(room)
        scope.after = snapshot(updated)
        return updated


def room_set_disabled(
    *, actor: User, room_id: str, disabled: bool, version: str | None = None
) -> Room:
    """Disable a room (nobody joins or posts) or enable it again; settings and roles stay.
    With `version`, only if the room is still at it."""
    action = "room.disable" if disabled else "room.enable"
    with (
        audited(action, actor=actor, target_kind="room") as scope,
        operations.tracked(
            action, actor=actor, room_id=room_id, change={"disabled": disabled}
        ) as op,
        one_writer(room_id),
    ):
        room, _ = _managed_room(actor, room_id, scope)
        _still_at(room, version)
        updated = op.run(room)
        scope.after = snapshot(updated)
        return updated


def room_take_category_options(*, actor: User, room_id: str, version: str | None = None) -> Room:
    """Give a room its category's chat options as the category has them now (after an
    administrator changed them, `categories.category_set_options`). Portal
    administrators only: a room's Managers do not choose them."""
    with (
        audited("room.options", actor=actor, target_kind="room") as scope,
        operations.tracked("room.options", actor=actor, room_id=room_id, change={}) as op,
        one_writer(room_id),
    ):
        room, category = _managed_room(actor, room_id, scope)
        if not actor.is_administrator:
            raise PermissionDenied(CATEGORY_OPTIONS_ONLY)
        _still_at(room, version)
        scope.after = snapshot(room) | category.options.values()
        if category.options == room.options:
            return room
        updated = op.run(room, change={"options": operations.options_fields(category.options)})
        scope.after = snapshot(updated)
        return updated


def room_add_in_attach(*, actor: User, room_id: str, add_in_id: int) -> Room:
    """Show an add-in of the register beside the room's conversation (the room's
    Managers; one its category may use)."""
    with (
        audited("room.addin.attach", actor=actor, target_kind="room") as scope,
        operations.tracked("room.addin.attach", actor=actor, room_id=room_id, change={}) as op,
        one_writer(room_id),
    ):
        room, category = _managed_room(actor, room_id, scope)
        entry = AddInEntry.objects.filter(pk=add_in_id).first()
        if entry is None or category.id not in entry.category_ids:
            raise RoomSettingsInvalid(
                "add_in", f"That add-in is not one the category “{category.name}” may use."
            )
        scope.after = snapshot(room) | {"add_in": entry.name, "url": entry.url}
        add_in = AddIn(id=str(entry.pk), name=entry.name, url=entry.url)
        if add_in in room.add_ins:
            return room
        updated = op.run(room, change={"add_ins": {add_in.id: operations.add_in_fields(add_in)}})
        scope.after = snapshot(updated) | {"add_in": entry.name, "url": entry.url}
        return updated


def room_add_in_detach(*, actor: User, room_id: str, add_in_id: str) -> Room:
    """Take an add-in out of the room (the room's Managers; administrators, as the
    register's removal does)."""
    with (
        audited("room.addin.detach", actor=actor, target_kind="room") as scope,
        operations.tracked("room.addin.detach", actor=actor, room_id=room_id, change={}) as op,
        one_writer(room_id),
    ):
        room, _ = _managed_room(actor, room_id, scope)
        held = next((a for a in room.add_ins if a.id == add_in_id), None)
        named = {"add_in": held.name if held else add_in_id}
        scope.after = snapshot(room) | named
        if held is None:
            return room
        updated = op.run(room, change={"add_ins": {add_in_id: None}})
        scope.after = snapshot(updated) | named
        return updated


def _still_at(room: Room, version: str | None) -> None:
    if version is not None and version != room_version(room):
        raise StaleEdit(room)


def join_problem(actor: User, room: Room, category: Category, *, asking: bool = False) -> str:
    """Why this person cannot join the room themselves (Open rooms), or ask to join it
    (`asking`: Closed rooms), or "": the room of a category whose scope holds them, which
    they are not in yet, and not disabled."""
    if not actor.chat_id:
        return "Only people with a chat account join rooms."
    if actor.chat_id in room.members:
        return "You are already a member of this room."
    if room.disabled:
        return "The room is disabled: nobody can join it."
    if asking and room.settings.privacy is not Privacy.CLOSED:
        return "Only Closed rooms take requests to join: join an Open room directly."
    if not asking and room.settings.privacy is not Privacy.OPEN:
        return "Only Open rooms are joined directly: ask one of the room's Managers to add you."
    if not category.in_scope(actor.chat_id):
        return f"You are not in the scope of the category “{category.name}”."
    return ""


def room_join(*, actor: User, room_id: str) -> Room:
    """Join an Open room of a category whose scope holds the person: the portal's service
    account makes them a member on the chat server, where their chat client finds it."""
    with audited("room.join", actor=actor, target_kind="room") as scope, one_writer(room_id):
        client = chat_backend()
        room = client.get_room(room_id)
        category = client.get_category(room.settings.category_id)
        _in_category(scope, room, category)
        scope.after = {"person": actor.chat_id}
        problem = join_problem(actor, room, category)
        if problem:
            raise PermissionDenied(problem)
        client.add_to_role(room.id, Role.MEMBER, [actor.chat_id or ""], invite=False)
        return client.get_room(room.id)


def join_request_submit(*, actor: User, room_id: str, message: str) -> JoinRequest:
    """Ask to be let into a Closed room; its Managers decide, and the person is told by
    e-mail. Asking twice is refused while the first request waits."""
    with audited("room.join_request", actor=actor, target_kind="room") as scope:
        client = chat_backend()
        room = client.get_room(room_id)
        category = client.get_category(room.settings.category_id)
        _in_category(scope, room, category)
        scope.after = {"person": actor.chat_id, "message": message}
        problem = join_problem(actor, room, category, asking=True)
        if problem:
            raise PermissionDenied(problem)
        try:
            with transaction.atomic():
                return JoinRequest.objects.create(
                    room_id=room.id, requester=actor, message=message.strip()
                )
        except IntegrityError:
            raise PermissionDenied(
                "You have already asked to join this room: its Managers will decide."
            ) from None


def people_leaving_scope(room: Room, target: Category) -> list[tuple[str, list[Role]]]:
    """Who holds a role in the room but is not in the target category's scope."""
    people: dict[str, list[Role]] = {}
    for role in Role:
        for person in sorted(room.principals(role)):
            if not target.in_scope(person):
                people.setdefault(person, []).append(role)
    return sorted(people.items())


def move_check(*, actor: User, room: Room, category_id: str) -> Category:
    """The category a room would move to, checked as `room_move` checks it (a what-if)."""
    if not can_manage(actor, room):
        raise PermissionDenied("Only the room's Managers and portal administrators change it.")
    target = chat_backend().get_category(category_id)
    if not can_create_in(actor, target):
        raise PermissionDenied(f"You cannot create rooms in the category “{target.name}”.")
    if target.id == room.settings.category_id:
        raise RoomSettingsInvalid("category", "The room is already in that category.")
    return target


def room_move(*, actor: User, room_id: str, category_id: str, version: str) -> Room:
    """Move a room to another category where the actor is a Creator.

    People outside the new category's scope lose their roles in the room.
    """
    client = chat_backend()
    change: operations.RoomTarget = {"settings": {"category_id": category_id}}
    with (
        audited("room.move", actor=actor, target_kind="room") as scope,
        operations.tracked("room.move", actor=actor, room_id=room_id, change=change) as op,
        one_writer(room_id),
    ):
        room, _ = _managed_room(actor, room_id, scope)
        target = client.get_category(category_id)
        scope.after = snapshot(replace(room.settings, category_id=target.id))
        if not can_create_in(actor, target):
            raise PermissionDenied(f"You cannot create rooms in the category “{target.name}”.")
        if version != room_version(room):
            raise StaleEdit(room)
        if target.id == room.settings.category_id:
            raise RoomSettingsInvalid("category", "The room is already in that category.")
        leaving = {p: [str(r) for r in roles] for p, roles in people_leaving_scope(room, target)}
        moved = op.run(room, remove=leaving)
        scope.after = snapshot(moved) | {"category_label": target.name}
        return moved


def room_delete(*, actor: User, room_id: str, confirm_name: str) -> None:
    """Delete a room and its history from the chat server (portal administrators only)."""
    client = chat_backend()
    with audited("room.delete", actor=actor, target_kind="room") as scope, one_writer(room_id):
        room = client.get_room(room_id)
        _in_category(scope, room)
        scope.before = snapshot(room)
        if not can_delete(actor):
            raise PermissionDenied("Only portal administrators delete rooms.")
        if confirm_name.strip() != room.name:
            raise RoomSettingsInvalid(
                "confirm_name", "Type the room's name exactly as shown to confirm."
            )
        client.delete_room(room.id)
