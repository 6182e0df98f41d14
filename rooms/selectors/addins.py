"""Reads of the add-ins area: the register, with the categories each add-in is for."""

from __future__ import annotations

from dataclasses import dataclass

from rooms import index
from rooms.backend.records import Room
from rooms.models import AddInEntry


@dataclass(frozen=True)
class Registered:
    entry: AddInEntry
    categories: list[str]  # their names
    rooms: int  # how many rooms show it now


def register() -> list[Registered]:
    """Every add-in of the register, by name (the index read once: category names, and
    the rooms showing add-ins)."""
    names = dict(category_choices())
    showing = index.add_in_room_counts()
    return [
        Registered(
            entry,
            sorted(names.get(c, c) for c in entry.category_ids),
            showing.get(str(entry.pk), 0),
        )
        for entry in AddInEntry.objects.all()
    ]


def attachable(room: Room) -> list[AddInEntry]:
    """The add-ins of the register the room's category may use, not yet attached."""
    attached = {a.id for a in room.add_ins}
    return [
        entry
        for entry in AddInEntry.objects.all()
        if room.settings.category_id in entry.category_ids and str(entry.pk) not in attached
    ]


def category_choices() -> list[tuple[str, str]]:
    """The categories an add-in may be registered for (their IDs and names only, not
    their scopes)."""
    return index.category_names()
