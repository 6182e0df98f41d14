"""What changed: a room or space read from the chat server, put into the index, and told
as a before and after (the sync worker and the write-through backend call `refresh`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rooms.backend.errors import ChatNotFound
from rooms.backend.interface import ChatServer
from rooms.backend.records import (
    Category,
    Room,
)
from rooms.index.records import category_record, room_record
from rooms.index.writes import drop, note_difference, put_category, put_room
from rooms.models import (
    CategoryPerson,
    IndexedCategory,
    IndexedRoom,
)

Standing = CategoryPerson.Standing


# Snapshots, for telling what changed.


def category_snapshot(record: Category) -> dict[str, Any]:
    return {
        "name": record.name,
        "description": record.description,
        "invitations_allowed": record.invitations_allowed,
        **record.options.values(),
        "in_scope": sorted(record.allowed_members),
        "denied": sorted(record.denied_members),
        "creators": sorted(record.creators),
    }


def room_snapshot(record: Room) -> dict[str, Any]:
    settings = record.settings
    return {
        "name": settings.name,
        "description": settings.description,
        "category_id": settings.category_id,
        "privacy": str(settings.privacy),
        "auditorium": settings.auditorium,
        "invitations": str(settings.invitations),
        "disabled": record.disabled,
        **record.options.values(),
        "add_ins": [a.name for a in record.add_ins],
        "members": sorted(record.members),
        "managers": sorted(record.managers),
        "presenters": sorted(record.presenters),
        "asking_to_join": sorted(record.knocking),
    }


@dataclass(frozen=True)
class Change:
    """What one refresh did to the index: the kind of target, and before and after
    (None where the index did not hold it, or holds it no more)."""

    target_id: str
    kind: str  # "room" or "category"
    label: str
    category_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def changed(self) -> dict[str, tuple[Any, Any]]:
        before, after = self.before or {}, self.after or {}
        return {
            key: (before.get(key), after.get(key))
            for key in sorted(set(before) | set(after))
            if before.get(key) != after.get(key)
        }


def snapshot_of(record: Room | Category | None) -> dict[str, Any] | None:
    if isinstance(record, Room):
        return room_snapshot(record)
    if isinstance(record, Category):
        return category_snapshot(record)
    return None


def held(target_id: str) -> Room | Category | None:
    """What the index holds for this ID."""
    row = IndexedRoom.objects.filter(room_id=target_id).first()
    if row is not None:
        return room_record(row, row.people.values_list("role", "user_id"))
    crow = IndexedCategory.objects.filter(category_id=target_id).first()
    if crow is not None:
        return category_record(crow, crow.people.values_list("standing", "user_id"))
    return None


def describe(
    target_id: str, before: Room | Category | None, after: Room | Category | None
) -> Change:
    """What changed from one record of a room or category to another."""
    shown = after or before
    return Change(
        target_id,
        "category" if isinstance(shown, Category) else "room",
        shown.name if shown is not None else target_id,
        shown.settings.category_id if isinstance(shown, Room) else target_id if shown else "",
        snapshot_of(before),
        snapshot_of(after),
    )


def apply(target_id: str, after: Room | Category | None) -> Change:
    """Put one room's or space's current record into the index (None: it is not the
    portal's), and say what changed.

    Anything that is not the portal's is not indexed: if the index held it, it is dropped
    and listed as a difference (a room whose category link was broken).
    """
    before = held(target_id)
    if isinstance(after, Category):
        put_category(after)
    elif isinstance(after, Room):
        put_room(after)
    else:
        drop(target_id)
        if before is not None:
            note_difference(
                target_id,
                "not readable",
                f"“{before.name}” is no longer one the portal can read "
                "(its category link is gone, or it is no longer a portal space).",
            )
    return describe(target_id, before, after)


def refresh(server: ChatServer, target_id: str) -> Change:
    """Read one room or space from the server and put it into the index."""
    try:
        record = server.read(target_id)
    except ChatNotFound:
        before = held(target_id)
        drop(target_id)
        return describe(target_id, before, None)
    return apply(target_id, record)
