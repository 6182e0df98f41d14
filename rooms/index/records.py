"""Reading the index into records: a category or room read at once (what services
compare before and after a change), or "to be shown" (pages: people read when asked),
and the questions pages and rules ask of it (names taken, scopes, counts)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from rooms.backend.errors import ChatNotFound
from rooms.backend.records import (
    AddIn,
    Category,
    ChatOptions,
    Invitations,
    Privacy,
    Room,
    RoomSettings,
)
from rooms.chatserver.policy import name_key
from rooms.models import (
    CategoryPerson,
    IndexedCategory,
    IndexedRoom,
    RoomName,
    RoomPerson,
)

Standing = CategoryPerson.Standing


# Records from rows.


def category_record(row: IndexedCategory, people: Iterable[tuple[str, str]]) -> Category:
    """The category as indexed, with its people as (standing, chat ID) pairs."""
    by_standing: dict[str, set[str]] = {s: set() for s in Standing.values}
    for standing, user_id in people:
        by_standing[standing].add(user_id)
    return Category(
        id=row.category_id,
        name=row.name,
        description=row.description,
        invitations_allowed=row.invitations_allowed,
        allowed_members=frozenset(by_standing[Standing.ALLOWED]),
        denied_members=frozenset(by_standing[Standing.DENIED]),
        creators=frozenset(by_standing[Standing.CREATOR]),
        room_ids=tuple(row.room_ids),
        options=_options(row),
    )


def _options(row: IndexedRoom | IndexedCategory) -> ChatOptions:
    return ChatOptions(
        chat_history=row.chat_history,
        file_uploads=row.file_uploads,
        keep_days=row.keep_days,
        managers_read=row.managers_read,
    )


def room_record(
    row: IndexedRoom, people: Iterable[tuple[str, str]], names: Mapping[str, str] | None = None
) -> Room:
    """The room as indexed, with its people as (role, chat ID) pairs (and its names, when
    read apart)."""
    by_role: dict[str, set[str]] = {r: set() for r in RoomPerson.Role.values}
    for role, user_id in people:
        by_role[role].add(user_id)
    return Room(
        id=row.room_id,
        settings=RoomSettings(
            name=row.name,
            description=row.description,
            category_id=row.category_id or "",
            privacy=Privacy(row.privacy),
            auditorium=row.auditorium,
            invitations=Invitations(row.invitations),
        ),
        disabled=row.disabled,
        members=frozenset(by_role[RoomPerson.Role.MEMBER]),
        managers=frozenset(by_role[RoomPerson.Role.MANAGER]),
        presenters=frozenset(by_role[RoomPerson.Role.PRESENTER]),
        knocking=frozenset(by_role[RoomPerson.Role.KNOCKING]),
        names=dict(row.names) if names is None else names,
        options=_options(row),
        add_ins=tuple(AddIn(**a) for a in row.add_ins),
    )


class PeopleWhenAsked(AbstractSet[str]):
    """One role's people in a room, or one standing's in a category, read from the index
    when asked rather than all at once: whether a person is in, how many, and the first
    few by chat ID are one query each, whatever the number; iterating reads them all
    (once). A page that shows a room of 10,000 Members costs what it costs with 100.

    Read as late as asked: a record holding these is for reading and showing, not for
    comparing a before with an after (`room()` and `category()` give those, read at once).
    """

    def __init__(self, rows: QuerySet[Any, str]) -> None:
        self._rows = rows
        self._held: frozenset[str] | None = None
        self._asked: dict[str, bool] = {}

    def _all(self) -> frozenset[str]:
        if self._held is None:
            self._held = frozenset(self._rows)
        return self._held

    def __contains__(self, person: object) -> bool:
        if self._held is not None:
            return person in self._held
        if not isinstance(person, str):
            return False
        if person not in self._asked:
            self._asked[person] = self._rows.filter(user_id=person).exists()
        return self._asked[person]

    def __len__(self) -> int:
        return len(self._held) if self._held is not None else self._rows.count()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def first(self, count: int) -> list[str]:
        """The first `count` by chat ID."""
        if self._held is not None:
            return sorted(self._held)[:count]
        return list(self._rows.order_by("user_id")[:count])

    @classmethod
    def _from_iterable(cls, it: Iterable[str]) -> frozenset[str]:
        return frozenset(it)

    __hash__ = AbstractSet._hash


class NamesWhenAsked(Mapping[str, str]):
    """A room's display names by chat ID, read from the index when asked: the names of
    the people a page shows (`read`) in one query, all of them only when iterated."""

    def __init__(self, room_id: str) -> None:
        self._room_id = room_id
        self._held: dict[str, str] | None = None
        self._known: dict[str, str] = {}

    def _all(self) -> dict[str, str]:
        if self._held is None:
            row = IndexedRoom.objects.filter(room_id=self._room_id).values_list("names", flat=True)
            self._held = dict(row.first() or {})
        return self._held

    def read(self, people: Iterable[str]) -> None:
        """Read these people's names, in one query (the database walks the room's names
        once, in its own JSON functions)."""
        wanted = [p for p in people if p not in self._known] if self._held is None else []
        if not wanted:
            return
        each = "jsonb_each_text" if connection.vendor == "postgresql" else "json_each"
        marks = ", ".join(["%s"] * len(wanted))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT e.key, e.value FROM {IndexedRoom._meta.db_table} r, {each}(r.names) e"
                f" WHERE r.room_id = %s AND e.key IN ({marks})",
                [self._room_id, *wanted],
            )
            found = dict(cursor.fetchall())
        for person in wanted:
            self._known[person] = found.get(person) or ""

    def __getitem__(self, person: str) -> str:
        if self._held is None:
            self.read([person])
            if self._known.get(person):
                return self._known[person]
            raise KeyError(person)
        return self._held[person]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


# Reads.


def _an_id(value: str) -> bool:
    """Whether this could be a room's or space's ID at all (an address typed by hand may
    hold anything, a NUL included, which some databases refuse to compare)."""
    return 0 < len(value) <= 255 and "\x00" not in value


def _category_row(category_id: str) -> IndexedCategory:
    row = (
        IndexedCategory.objects.filter(category_id=category_id).first()
        if _an_id(category_id)
        else None
    )
    if row is None:
        raise ChatNotFound("There is no such category.")
    return row


def _room_row(room_id: str, rows: QuerySet[IndexedRoom]) -> IndexedRoom:
    row = rows.filter(room_id=room_id).first() if _an_id(room_id) else None
    if row is None:
        raise ChatNotFound("There is no such room.")
    return row


def category(category_id: str) -> Category:
    row = _category_row(category_id)
    # Pairs, not model instances: a scope of 20,000 people is read in a few milliseconds.
    return category_record(row, row.people.values_list("standing", "user_id"))


def categories(ids: Iterable[str] | None = None) -> list[Category]:
    """Categories by name: all of them, or these."""
    rows = IndexedCategory.objects.order_by("name_key", "category_id").prefetch_related("people")
    if ids is not None:
        rows = rows.filter(category_id__in=ids if isinstance(ids, QuerySet) else list(ids))
    return [
        category_record(row, ((p.standing, p.user_id) for p in row.people.all())) for row in rows
    ]


def category_ids_in_scope(user_id: str) -> QuerySet[CategoryPerson, str]:
    """The IDs of the categories whose scope holds this person (allowed, not denied), as
    a subquery: a person's standing is read through the index by person, whatever the
    number of categories."""
    mine = CategoryPerson.objects.filter(user_id=user_id)
    return (
        mine.filter(standing=Standing.ALLOWED)
        .exclude(category__in=mine.filter(standing=Standing.DENIED).values("category"))
        .values_list("category", flat=True)
    )


def category_ids_with_create_rights(user_id: str) -> QuerySet[CategoryPerson, str]:
    """The IDs of the categories where this person is a Creator and in scope (Lync's
    FindCategoriesWithCreateRights), as a subquery."""
    return CategoryPerson.objects.filter(
        user_id=user_id,
        standing=Standing.CREATOR,
        category__in=category_ids_in_scope(user_id),
    ).values_list("category", flat=True)


def categories_for_creator(user_id: str) -> list[Category]:
    """The categories in which this person may create rooms."""
    return categories(category_ids_with_create_rights(user_id))


def room(room_id: str) -> Room:
    row = _room_row(room_id, IndexedRoom.objects.all())
    # Pairs, not model instances: a room of 10,000 Members is read in a few milliseconds.
    return room_record(row, row.people.values_list("role", "user_id"))


def room_to_show(room_id: str) -> Room:
    """The room as a page shows it: its settings read now, its people and their names when
    asked (`PeopleWhenAsked`, `NamesWhenAsked`)."""
    row = _room_row(room_id, IndexedRoom.objects.defer("names"))
    people = RoomPerson.objects.filter(room_id=row.room_id).values_list("user_id", flat=True)
    return replace(
        room_record(row, (), NamesWhenAsked(row.room_id)),
        members=PeopleWhenAsked(people.filter(role=RoomPerson.Role.MEMBER)),
        managers=PeopleWhenAsked(people.filter(role=RoomPerson.Role.MANAGER)),
        presenters=PeopleWhenAsked(people.filter(role=RoomPerson.Role.PRESENTER)),
        knocking=PeopleWhenAsked(people.filter(role=RoomPerson.Role.KNOCKING)),
    )


def category_to_show(category_id: str) -> Category:
    """The category as a page shows it: its scope and Creators read when asked."""
    row = _category_row(category_id)
    people = CategoryPerson.objects.filter(category_id=row.category_id).values_list(
        "user_id", flat=True
    )
    return replace(
        category_record(row, ()),
        allowed_members=PeopleWhenAsked(people.filter(standing=Standing.ALLOWED)),
        denied_members=PeopleWhenAsked(people.filter(standing=Standing.DENIED)),
        creators=PeopleWhenAsked(people.filter(standing=Standing.CREATOR)),
    )


def rooms(ids: Iterable[str]) -> list[Room]:
    """These rooms, by name; IDs the index does not hold are skipped."""
    rows = (
        IndexedRoom.objects.filter(room_id__in=list(ids))
        .order_by("name_key", "room_id")
        .prefetch_related("people")
    )
    return [room_record(row, ((p.role, p.user_id) for p in row.people.all())) for row in rows]


def sort_key(name: str) -> str:
    """How a name is sorted and searched: letter case aside."""
    return name.strip().casefold()


def name_taken(name: str, *, exclude_room_id: str = "") -> bool:
    """Whether a portal room has this name (or it is being created), in any letter case
    and however alike the letters look."""
    held = RoomName.objects.filter(name_key=name_key(name))
    return held.exclude(Q(room_id=exclude_room_id) & ~Q(room_id="")).exists()


def rooms_with_other_options(category_id: str, options: ChatOptions) -> list[str]:
    """The category's rooms whose chat options are not these (as indexed)."""
    rows = IndexedRoom.objects.filter(category_id=category_id).exclude(
        chat_history=options.chat_history,
        file_uploads=options.file_uploads,
        keep_days=options.keep_days,
        managers_read=options.managers_read,
    )
    return sorted(rows.values_list("room_id", flat=True))


def add_in_room_counts() -> dict[str, int]:
    """How many rooms the index has showing each add-in, by its ID."""
    counts: dict[str, int] = {}
    for held in IndexedRoom.objects.exclude(add_ins=[]).values_list("add_ins", flat=True):
        for add_in in held:
            counts[add_in["id"]] = counts.get(add_in["id"], 0) + 1
    return counts


def category_names() -> list[tuple[str, str]]:
    """Every category's ID and name, by name."""
    rows = IndexedCategory.objects.order_by("name_key", "category_id")
    return list(rows.values_list("category_id", "name"))


def rooms_with_add_in(add_in_id: str) -> list[str]:
    """The rooms the index has showing this add-in."""
    rows = IndexedRoom.objects.exclude(add_ins=[]).values_list("room_id", "add_ins")
    return sorted(room_id for room_id, held in rows if any(a["id"] == add_in_id for a in held))
