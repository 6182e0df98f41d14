"""The second line: the sync worker undoes what a chat user broke on the chat server.

The homeserver's module (rooms.chatserver.module) refuses what breaks the rules. Where a
breach lands anyway (a homeserver without the module, events from before it ran, the
module down), the sync worker finds it in the batch that carries it: each piece of state
a chat user changed is checked with the same rules (rooms.chatserver.policy), and what
breaks them is put back by the service account at once. Every breach is audited as what
it was (`policy.breach`, with the chat user and the rule, outcome `undone` or `failed`)
and every repair as `policy.enforced` (what was undone); each is kept as a
`PolicyBreach`, open until undone, for the room's page and the administrators' list.
Refusals the module reports are audited as `policy.refused`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from portal.audit import audit_record
from portal.models import Outcome
from rooms import index
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.backend.matrix.state import RoomState
from rooms.backend.records import Category, Room
from rooms.chatserver.policy import (
    Breach,
    Rule,
    breaches,
    child_link_breach,
    child_links,
    link_changer,
)
from rooms.models import IndexedCategory, PolicyBreach, RoomName

log = logging.getLogger(__name__)

StateKey = tuple[str, str]


def enforce(server: MatrixChatBackend, target_id: str, changed: Mapping[StateKey, str]) -> None:
    """Check what chat users changed in one room or category (`changed`: each piece of
    state, with who changed it last) and undo what breaks the rules."""
    if not changed:
        return
    held = index.held(target_id)
    if isinstance(held, Category):
        _enforce_category(server, held, changed)
        return
    try:
        state, category, found = server.read_breaches(
            target_id,
            category_id=held.settings.category_id if isinstance(held, Room) else "",
            category_for=_indexed_category,
            changed=changed,
            name_holder=_name_holder,
        )
    except ChatNotFound:
        return
    if category is None:
        return
    label = held.name if held is not None else state.name or target_id
    _close_resolved(target_id, found)
    landed = [(breach, actor) for breach in found if (actor := _actor(breach, changed))]
    if not landed:
        return
    try:
        undone = server.undo(state, [b for b, _ in landed], room=held, category=category)
        failure = ""
    except ChatBackendError as exc:
        undone, failure = {}, str(exc)
    # A breach already listed as not put back (its repair failed before, or a batch is
    # read again after a restart) is tried again but not recorded twice: put back now,
    # its listing is closed.
    still_open = {
        (row.rule, row.detail): row
        for row in PolicyBreach.objects.filter(target_id=target_id, undone_at__isnull=True)
    }
    for breach, actor in landed:
        listed = still_open.get((str(breach.rule), breach.detail))
        if listed is not None:
            if undone.get(breach.subject):
                listed.undone = undone[breach.subject]
                listed.undone_at = timezone.now()
                listed.save(update_fields=["undone", "undone_at"])
            continue
        _record(
            breach,
            actor=actor,
            target_id=target_id,
            label=label,
            category=category,
            undone=undone.get(breach.subject, ""),
            failure=failure,
        )


def _indexed_category(category_id: str) -> Category | None:
    try:
        return index.category(category_id)
    except ChatNotFound:
        return None


def _name_holder(key: str) -> str | None:
    """The room the index has holding a name (before this batch is applied)."""
    return RoomName.objects.filter(name_key=key).values_list("room_id", flat=True).first() or None


def _actor(breach: Breach, changed: Mapping[StateKey, str]) -> str:
    """The chat user whose change in this batch made the breach ("" for none: a breach
    that was there before, or that the portal's own change passes through)."""
    if breach.subject in changed:
        return changed[breach.subject]
    if breach.rule is Rule.CATEGORY:
        return link_changer(changed)
    return ""


def _record(
    breach: Breach,
    *,
    actor: str,
    target_id: str,
    label: str,
    category: Category,
    undone: str,
    failure: str,
) -> None:
    what = {"rule": str(breach.rule), "detail": breach.detail} | (
        {"person": breach.person} if breach.person else {}
    )
    where: dict[str, Any] = {
        "target_kind": "room",
        "target_id": target_id,
        "target_label": label,
        "category_id": category.id,
        "category_label": category.name,
    }
    audit_record(
        action="policy.breach",
        outcome=Outcome.UNDONE if undone else Outcome.FAILED,
        chat_actor=actor,
        after=what | {"source": "chat server"},
        error="" if undone else failure or "It cannot be undone from the portal.",
        **where,
    )
    if undone:
        audit_record(action="policy.enforced", before=what, after={"undone": undone}, **where)
    else:
        log.warning("A breach in %s could not be undone: %s", target_id, breach.detail)
    PolicyBreach.objects.create(
        target_id=target_id,
        target_label=label[:255],
        category_id=category.id,
        rule=str(breach.rule),
        detail=breach.detail,
        chat_actor=actor[:255],
        undone=undone,
        undone_at=timezone.now() if undone else None,
    )


def _close_resolved(target_id: str, found: list[Breach]) -> None:
    """Open breaches of this room that its state no longer holds are closed."""
    still = {(str(b.rule), b.detail) for b in found}
    for breach in PolicyBreach.objects.filter(target_id=target_id, undone_at__isnull=True):
        if (breach.rule, breach.detail) not in still:
            breach.undone = "no longer so on the chat server"
            breach.undone_at = timezone.now()
            breach.save(update_fields=["undone", "undone_at"])


def _enforce_category(
    server: MatrixChatBackend, category: Category, changed: Mapping[StateKey, str]
) -> None:
    """A category's links to its rooms are the portal's alone: links a chat user added or
    took away are put back as the index has them."""
    children = child_links(changed)
    if not children:
        return
    try:
        undone = server.undo_child_links(category, children)
        failure = ""
    except ChatBackendError as exc:
        undone, failure = {}, str(exc)
    for child, actor in children.items():
        if child not in undone and not failure:
            continue  # already as the portal made it (a batch read again)
        _record(
            child_link_breach(child),
            actor=actor,
            target_id=category.id,
            label=category.name,
            category=category,
            undone=undone.get(child, ""),
            failure=failure,
        )


def sweep(server: MatrixChatBackend, state: RoomState, room: Room, *, fix: bool) -> list[str]:
    """What a governed room's state breaks, whoever did it and whenever (for reconcile);
    with `fix`, put back as the service account and audited as `policy.enforced`."""
    category = _indexed_category(room.settings.category_id)
    if category is None:
        return []
    found = breaches(server.governed(state, category, name_holder=_name_holder))
    if not found:
        return []
    lines = [f"{b.rule.label}: {b.detail}" for b in found]
    if fix:
        try:
            held = index.held(room.id)  # the last the portal knew good, if it has one
            model = held if isinstance(held, Room) else None
            undone = server.undo(state, found, room=model, category=category)
            failure = ""
        except ChatBackendError as exc:
            undone, failure = {}, str(exc)
        for breach in found:
            _record(
                breach,
                actor="",
                target_id=room.id,
                label=room.name,
                category=category,
                undone=undone.get(breach.subject, ""),
                failure=failure,
            )
    return lines


def audit_refusal(report: Mapping[str, Any]) -> None:
    """A change the homeserver's module refused, in the audit log."""
    target_id = str(report.get("room_id", ""))
    category_id = str(report.get("category_id", ""))
    room = index.held(target_id)
    audit_record(
        action="policy.refused",
        outcome=Outcome.DENIED,
        chat_actor=str(report.get("sender", "")),
        target_kind="category" if isinstance(room, Category) else "room",
        target_id=target_id,
        target_label=room.name if room is not None else target_id,
        category_id=category_id,
        category_label=IndexedCategory.objects.filter(category_id=category_id)
        .values_list("name", flat=True)
        .first()
        or "",
        after={
            key: str(report.get(key, ""))
            for key in ("rule", "detail", "person", "type", "state_key")
            if report.get(key)
        }
        | {"source": "chat server"},
        error=str(report.get("detail", "")),
    )


def open_breaches() -> int:
    return PolicyBreach.objects.filter(undone_at__isnull=True).count()
