"""The index: the portal's own copy of its categories and rooms.

Pages read the index, never the chat server; the chat server stays the source of truth.
Two things keep the index true:

- every change the portal makes: `chat_backend()` is the chat client with the index in
  front of it, and writes the server's confirmed state into the index as soon as a change
  is made (the person sees their change at once);
- the sync worker (rooms.sync), which follows the homeserver's event stream and applies
  what changed elsewhere (a chat client, another admin tool) through `refresh`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from rooms.backend import server_client
from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.matrix.adoption import RoomFit, SpaceFit
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.backend.matrix.moderation import ModerationOperations
from rooms.backend.matrix.state import RoomState, category_from_state, room_from_state
from rooms.backend.records import (
    DEFAULT_OPTIONS,
    AddIn,
    Category,
    ChatOptions,
    Invitations,
    Principal,
    Privacy,
    Role,
    Room,
    RoomSettings,
)
from rooms.chatserver.policy import name_key
from rooms.models import (
    CategoryPerson,
    IndexDifference,
    IndexedCategory,
    IndexedRoom,
    RoomName,
    RoomPerson,
)

Standing = CategoryPerson.Standing


# Records from rows.


def _category_record(row: IndexedCategory, people: Iterable[tuple[str, str]]) -> Category:
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


def _room_record(
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
    return _category_record(row, row.people.values_list("standing", "user_id"))


def categories(ids: Iterable[str] | None = None) -> list[Category]:
    """Categories by name: all of them, or these."""
    rows = IndexedCategory.objects.order_by("name_key", "category_id").prefetch_related("people")
    if ids is not None:
        rows = rows.filter(category_id__in=ids if isinstance(ids, QuerySet) else list(ids))
    return [
        _category_record(row, ((p.standing, p.user_id) for p in row.people.all())) for row in rows
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
    return _room_record(row, row.people.values_list("role", "user_id"))


def room_to_show(room_id: str) -> Room:
    """The room as a page shows it: its settings read now, its people and their names when
    asked (`PeopleWhenAsked`, `NamesWhenAsked`)."""
    row = _room_row(room_id, IndexedRoom.objects.defer("names"))
    people = RoomPerson.objects.filter(room_id=row.room_id).values_list("user_id", flat=True)
    return replace(
        _room_record(row, (), NamesWhenAsked(row.room_id)),
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
        _category_record(row, ()),
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
    return [_room_record(row, ((p.role, p.user_id) for p in row.people.all())) for row in rows]


def sort_key(name: str) -> str:
    """How a name is sorted and searched: letter case aside."""
    return name.strip().casefold()


def name_taken(name: str, *, exclude_room_id: str = "") -> bool:
    """Whether a portal room has this name (or it is being created), in any letter case
    and however alike the letters look."""
    held = RoomName.objects.filter(name_key=name_key(name))
    return held.exclude(Q(room_id=exclude_room_id) & ~Q(room_id="")).exists()


# Writes: what the server confirmed, put into the index.


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


def put_category(record: Category) -> None:
    with transaction.atomic():
        row, _ = IndexedCategory.objects.update_or_create(
            category_id=record.id,
            defaults={
                "name": record.name,
                "name_key": sort_key(record.name),
                "description": record.description,
                "invitations_allowed": record.invitations_allowed,
                **record.options.values(),
                "room_ids": list(record.room_ids),
            },
        )
        row.people.all().delete()
        CategoryPerson.objects.bulk_create(
            [
                CategoryPerson(category=row, user_id=user_id, standing=standing)
                for standing, people in (
                    (Standing.ALLOWED, record.allowed_members),
                    (Standing.DENIED, record.denied_members),
                    (Standing.CREATOR, record.creators),
                )
                for user_id in sorted(people)
            ]
        )
        IndexDifference.objects.filter(target_id=record.id).delete()


def put_room(record: Room) -> None:
    """Index a room as the server has it; a name another room holds is a difference."""
    key = name_key(record.name)  # the name's claim: look-alikes are one name
    holders = record.members | record.managers | record.presenters | record.knocking
    with transaction.atomic():
        # Names remembered for people the state names not (`remember_names`) are kept
        # while they hold a role; a name the state carries wins.
        known = IndexedRoom.objects.filter(room_id=record.id).values_list("names", flat=True)
        kept = {u: n for u, n in (known.first() or {}).items() if u in holders}
        row, _ = IndexedRoom.objects.update_or_create(
            room_id=record.id,
            defaults={
                "category_id": record.settings.category_id or None,
                "name": record.name,
                "name_key": sort_key(record.name),
                "description": record.settings.description,
                "privacy": str(record.settings.privacy),
                "auditorium": record.settings.auditorium,
                "invitations": str(record.settings.invitations),
                "disabled": record.disabled,
                **record.options.values(),
                "add_ins": [asdict(a) for a in record.add_ins],
                "names": kept | dict(record.names),
            },
        )
        row.people.all().delete()
        RoomPerson.objects.bulk_create(
            [
                RoomPerson(room=row, user_id=user_id, role=role)
                for role, people in (
                    (RoomPerson.Role.MEMBER, record.members),
                    (RoomPerson.Role.MANAGER, record.managers),
                    (RoomPerson.Role.PRESENTER, record.presenters),
                    (RoomPerson.Role.KNOCKING, record.knocking),
                )
                for user_id in sorted(people)
            ]
        )
        IndexDifference.objects.filter(target_id=record.id).delete()
        RoomName.objects.filter(room_id=record.id).exclude(name_key=key).delete()
        held, _ = RoomName.objects.get_or_create(name_key=key, defaults={"room_id": record.id})
        if not held.room_id:
            held.room_id = record.id  # a claim whose creation this is
            held.save(update_fields=["room_id"])
        elif held.room_id != record.id:
            note_difference(
                record.id,
                IndexDifference.NAME_HELD_TWICE,
                f"Another room ({held.room_id}) already has the name “{record.name}”.",
            )


def add_people(room_id: str, role: Role, user_ids: Iterable[str]) -> None:
    """Record people the server confirmed in a role. A Manager is never made a Presenter
    (a Manager already posts wherever a Presenter may); a Presenter made Manager is one."""
    people = set(user_ids)
    with transaction.atomic():
        row = IndexedRoom.objects.filter(room_id=room_id).first()
        if row is None or not people:
            return
        if role is Role.PRESENTER:
            people -= set(
                row.people.filter(role=RoomPerson.Role.MANAGER).values_list("user_id", flat=True)
            )
        if role is Role.MANAGER:
            row.people.filter(user_id__in=people, role=RoomPerson.Role.PRESENTER).delete()
        present = set(row.people.filter(role=str(role)).values_list("user_id", flat=True))
        RoomPerson.objects.bulk_create(
            [RoomPerson(room=row, user_id=u, role=str(role)) for u in sorted(people - present)]
        )


def add_to_scope(category_id: str, user_ids: Iterable[str]) -> None:
    """Record people the server confirmed in a category's scope (no read of the space's
    whole state: a scope of thousands grows a chunk at a time)."""
    with transaction.atomic():
        row = IndexedCategory.objects.filter(category_id=category_id).first()
        if row is None:
            return
        present = set(
            row.people.filter(standing=Standing.ALLOWED).values_list("user_id", flat=True)
        )
        CategoryPerson.objects.bulk_create(
            [
                CategoryPerson(category=row, user_id=u, standing=Standing.ALLOWED)
                for u in sorted(set(user_ids) - present)
            ]
        )


def remember_names(room_id: str, names: dict[str, str]) -> None:
    """Display names of people just given a role, for those the room's state does not
    name (a Manager has no member event; an invitation may carry no name): the panel
    shows them at once, and `put_room` keeps them while they hold a role."""
    with transaction.atomic():
        row = IndexedRoom.objects.select_for_update().filter(room_id=room_id).first()
        if row is None:
            return
        new = {u: n for u, n in names.items() if n and u not in row.names}
        if new:
            row.names = row.names | new
            row.save(update_fields=["names"])


def link_room(category_id: str, room_id: str, *, linked: bool) -> None:
    """Add a room to (or take it from) a category's child links, as the server now has."""
    with transaction.atomic():
        row = IndexedCategory.objects.select_for_update().filter(category_id=category_id).first()
        if row is None:
            return
        ids = [i for i in row.room_ids if i != room_id] + ([room_id] if linked else [])
        row.room_ids = sorted(ids)
        row.save(update_fields=["room_ids", "indexed_at"])


def drop(target_id: str) -> None:
    """Forget a room or category the server no longer has (or no longer is the portal's)."""
    with transaction.atomic():
        IndexedRoom.objects.filter(room_id=target_id).delete()
        IndexedCategory.objects.filter(category_id=target_id).delete()
        RoomName.objects.filter(room_id=target_id).delete()
        IndexDifference.objects.filter(target_id=target_id).delete()


def note_difference(target_id: str, kind: str, detail: str) -> None:
    IndexDifference.objects.update_or_create(
        target_id=target_id, kind=kind, defaults={"detail": detail}
    )


# Names: claimed before a room is made, so two creations of one name cannot both win.


def claim_name(name: str) -> bool:
    """Hold a name for a room about to be created; False when it is taken."""
    try:
        with transaction.atomic():
            RoomName.objects.create(name_key=name_key(name))
    except IntegrityError:
        return False
    return True


def release_claim(name: str) -> None:
    """Give back a name claimed for a room that was not made."""
    RoomName.objects.filter(name_key=name_key(name), room_id="").delete()


# No creation or rename takes this long: a name claimed this long ago and held by no room
# was claimed by a process that died part-way (the job runner gives it back).
CLAIM_STALE = timedelta(minutes=10)


def give_back_stale_claims() -> int:
    """Give back the names claimed for a room being created or renamed whose change never
    finished; how many. A room that got the name on the chat server holds it by its ID by
    then (indexing it gives the claim its room)."""
    stale = RoomName.objects.filter(room_id="", claimed_at__lt=timezone.now() - CLAIM_STALE)
    given, _ = stale.delete()
    return given


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


def project(state: RoomState, *, service_user: str) -> Room | Category | None:
    """What one room's or space's state is to the portal: a category (a space the service
    account created), a room (whose canonical parent is a category), or nothing."""
    if state.is_space and service_user in state.creators:
        return category_from_state(state, service_user=service_user)
    room_record = room_from_state(state, service_user=service_user)
    if not state.is_space and room_record.settings.category_id:
        return room_record
    return None


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
        return _room_record(row, row.people.values_list("role", "user_id"))
    crow = IndexedCategory.objects.filter(category_id=target_id).first()
    if crow is not None:
        return _category_record(crow, crow.people.values_list("standing", "user_id"))
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


def apply_state(state: RoomState, *, service_user: str) -> Change:
    """Put one room's or space's current state into the index, and say what changed.

    Anything that is not the portal's is not indexed: if the index held it, it is dropped
    and listed as a difference (a room whose category link was broken).
    """
    before = held(state.room_id)
    after = project(state, service_user=service_user)
    if isinstance(after, Category):
        put_category(after)
    elif isinstance(after, Room):
        put_room(after)
    else:
        drop(state.room_id)
        if before is not None:
            note_difference(
                state.room_id,
                "not readable",
                f"“{before.name}” is no longer one the portal can read "
                "(its category link is gone, or it is no longer a portal space).",
            )
    return describe(state.room_id, before, after)


def refresh(server: MatrixChatBackend, target_id: str) -> Change:
    """Read one room or space from the server and put it into the index."""
    try:
        state = server.read_state(target_id)
    except ChatNotFound:
        before = held(target_id)
        drop(target_id)
        return describe(target_id, before, None)
    return apply_state(state, service_user=server.service_user)


class IndexedChatBackend:
    """The chat client with the index in front: reads come from the index, and every
    change is made on the server and then written into the index as the server confirmed
    it. People (accounts, logins, search) are asked of the server, which holds them."""

    def __init__(self, server: MatrixChatBackend | Callable[[], MatrixChatBackend]) -> None:
        self._server = server

    @property
    def server(self) -> MatrixChatBackend:
        """The homeserver's client alone, with no index in front (the sync worker, which
        keeps the index, and what is measured or arranged in benchmarks and tests); looked
        up only when something asks the server: pages that read the index answer even when
        the chat server is not there."""
        if not isinstance(self._server, MatrixChatBackend):
            self._server = self._server()
        return self._server

    @property
    def moderation(self) -> ModerationOperations:
        """What is said in rooms (messages, reports, history), asked of the chat server:
        the index holds rooms and people, never messages."""
        return self.server

    def room_on_server(self, room_id: str) -> Room:
        """The room as the chat server has it now, not as indexed: after a failure part-way
        through a change, the index may not know what was applied."""
        return self.server.get_room(room_id)

    def unlink_room(self, room_id: str, category_id: str) -> None:
        """Take the room from the category's child links (a move's other end), and index
        the category as the server then has it."""
        if self.server.unlink_room(room_id, category_id):
            self.refresh(category_id)

    # Reads from the index.

    def get_category(self, category_id: str) -> Category:
        return category(category_id)

    def list_categories(self) -> list[Category]:
        return categories()

    def get_categories(self, category_ids: Iterable[str]) -> list[Category]:
        return categories(category_ids)

    def find_categories_with_create_rights(self, user_id: str) -> list[Category]:
        return categories_for_creator(user_id)

    def get_room(self, room_id: str) -> Room:
        return room(room_id)

    def get_rooms(self, room_ids: Iterable[str]) -> list[Room]:
        return rooms(room_ids)

    def room_name_taken(self, name: str, *, exclude_room_id: str = "") -> bool:
        return name_taken(name, exclude_room_id=exclude_room_id)

    # Changes: made on the server, then indexed.

    def refresh(self, target_id: str) -> Change:
        return refresh(self.server, target_id)

    def create_category(
        self,
        *,
        name: str,
        description: str,
        invitations_allowed: bool = True,
        creators: Iterable[str] = (),
        options: ChatOptions = DEFAULT_OPTIONS,
    ) -> Category:
        made = self.server.create_category(
            name=name,
            description=description,
            invitations_allowed=invitations_allowed,
            creators=creators,
            options=options,
        )
        put_category(made)
        return made

    def update_category(
        self,
        category_id: str,
        *,
        name: str,
        description: str,
        invitations_allowed: bool,
        options: ChatOptions | None = None,
    ) -> Category:
        changed = self.server.update_category(
            category_id,
            name=name,
            description=description,
            invitations_allowed=invitations_allowed,
            options=options,
        )
        put_category(changed)
        return changed

    def set_category_creators(self, category_id: str, creators: Iterable[str]) -> Category:
        changed = self.server.set_category_creators(category_id, creators)
        put_category(changed)
        return changed

    def delete_category(self, category_id: str) -> None:
        self.server.delete_category(category_id)
        drop(category_id)

    def _then_refresh(self, target_id: str, change: Callable[[], None]) -> None:
        try:
            change()
        finally:
            # Part of a change may have been made before a failure: index what is there.
            self._refresh_quietly(target_id)

    def _refresh_quietly(self, target_id: str) -> None:
        try:
            self.refresh(target_id)
        except ChatBackendError:
            note_difference(target_id, "stale", "Changed, but not read back: the sync worker will.")

    def find_adoptable(self, term: str) -> list[tuple[str, str, int, bool]]:
        """Spaces and rooms on the server matching the term that are not the portal's."""
        return [s for s in self.server.find_adoptable(term) if not self.held_by_portal(s[0])]

    def room_fit(self, room_id: str, category_id: str) -> RoomFit:
        """How a room made outside the portal maps into this category."""
        category = self.get_category(category_id)
        fit = self.server.room_fit(room_id, frozenset(category.allowed_members))
        if not fit.impossible and self.held_by_portal(room_id):
            return replace(fit, impossible="It is a portal room already.")
        return fit

    def held_by_portal(self, target_id: str) -> bool:
        """Whether this is one of the portal's categories or rooms (as indexed)."""
        return (
            IndexedCategory.objects.filter(category_id=target_id).exists()
            or IndexedRoom.objects.filter(room_id=target_id).exists()
        )

    def adoption_fit(self, space_id: str) -> SpaceFit:
        """How the space maps; its rooms that are the portal's already are not adopted."""
        fit = self.server.adoption_fit(space_id)
        rooms = tuple(
            replace(room, impossible="It is a portal room already.")
            if not room.impossible and self.held_by_portal(room.room_id)
            else room
            for room in fit.rooms
        )
        return replace(fit, rooms=rooms)

    def adopt_room(self, fit: RoomFit, category_id: str) -> None:
        try:
            self._then_refresh(fit.room_id, lambda: self.server.adopt_room(fit, category_id))
        finally:
            self._refresh_quietly(category_id)

    def add_to_category_scope(self, category_id: str, user_ids: Iterable[str]) -> None:
        """Into the scope on the server, then into the index as confirmed (after a failure
        part-way, the category is read back instead)."""
        people = list(user_ids)
        try:
            self.server.add_to_category_scope(category_id, people)
        except ChatBackendError:
            self._refresh_quietly(category_id)
            raise
        add_to_scope(category_id, people)

    def remove_from_category_scope(self, category_id: str, user_ids: Iterable[str]) -> None:
        people = list(user_ids)
        self._then_refresh(
            category_id, lambda: self.server.remove_from_category_scope(category_id, people)
        )

    def deny_in_category(self, category_id: str, user_ids: Iterable[str]) -> None:
        people = list(user_ids)
        self._then_refresh(category_id, lambda: self.server.deny_in_category(category_id, people))

    def undeny_in_category(self, category_id: str, user_ids: Iterable[str]) -> None:
        people = list(user_ids)
        self._then_refresh(category_id, lambda: self.server.undeny_in_category(category_id, people))

    def create_room(
        self, settings: RoomSettings, *, managers: Iterable[str] = (), members: Iterable[str] = ()
    ) -> Room:
        made = self.server.create_room(
            settings,
            managers=managers,
            members=members,
            category=self.get_category(settings.category_id),
        )
        put_room(made)
        link_room(made.settings.category_id, made.id, linked=True)
        return made

    def update_room(
        self, room_id: str, settings: RoomSettings, *, current: Room | None = None
    ) -> Room:
        """`current`: the room as the caller read it from the server (the index's, if not)."""
        before = current or self.get_room(room_id)
        try:
            changed = self.server.update_room(room_id, settings, current=before)
        except ChatBackendError:
            self._refresh_quietly(room_id)
            raise
        put_room(changed)
        if changed.settings.category_id != before.settings.category_id:
            link_room(before.settings.category_id, room_id, linked=False)
            link_room(changed.settings.category_id, room_id, linked=True)
        return changed

    def attach_add_in(self, room_id: str, add_in: AddIn) -> Room:
        changed = self.server.attach_add_in(room_id, add_in)
        put_room(changed)
        return changed

    def detach_add_in(self, room_id: str, add_in_id: str) -> Room:
        changed = self.server.detach_add_in(room_id, add_in_id)
        put_room(changed)
        return changed

    def set_room_options(self, room_id: str, options: ChatOptions) -> Room:
        try:
            changed = self.server.set_room_options(room_id, options)
        except ChatBackendError:
            self._refresh_quietly(room_id)
            raise
        put_room(changed)
        return changed

    def set_room_disabled(self, room_id: str, disabled: bool) -> Room:
        try:
            changed = self.server.set_room_disabled(room_id, disabled)
        except ChatBackendError:
            self._refresh_quietly(room_id)
            raise
        put_room(changed)
        return changed

    def delete_room(self, room_id: str) -> None:
        held = IndexedRoom.objects.filter(room_id=room_id).first()
        try:
            self.server.delete_room(room_id)
        except ChatBackendError as failure:
            # The server may have deleted it and lost the answer: ask before saying no.
            try:
                gone = not self.server.room_exists(room_id, settle=2.0)
            except ChatBackendError:
                raise failure from None
            if not gone:
                raise
        drop(room_id)
        if held is not None and held.category_id:
            link_room(held.category_id, room_id, linked=False)

    def add_to_role(
        self,
        room_id: str,
        role: Role,
        user_ids: Iterable[str],
        *,
        on_added: Callable[[str], None] | None = None,
        invite: bool | None = None,
    ) -> None:
        """Members are invited or joined as the room's invitations say (read from the
        index), unless `invite` says (someone joining on their own is joined); what the
        server confirmed is written into the index as it is confirmed."""
        people = list(user_ids)
        if invite is None:
            held = self.get_room(room_id)
            invite = (
                held.settings.invitations is Invitations.INHERIT
                and self.get_category(held.settings.category_id).invitations_allowed
            )
        done: list[str] = []

        def confirmed(user_id: str) -> None:
            done.append(user_id)
            if on_added:
                on_added(user_id)

        try:
            self.server.add_to_role(room_id, role, people, on_added=confirmed, invite=invite)
        except ChatBackendError:
            self._refresh_quietly(room_id)
            raise
        add_people(room_id, role, done)

    def remove_from_role(self, room_id: str, role: Role, user_ids: Iterable[str]) -> None:
        people = list(user_ids)
        self._then_refresh(room_id, lambda: self.server.remove_from_role(room_id, role, people))

    # People: the server holds them.

    @property
    def service_user(self) -> str:
        return self.server.service_user

    def whoami(self) -> str:
        return self.server.whoami()

    def get_user(self, user_id: str) -> Principal:
        return self.server.get_user(user_id)

    def search_users(self, term: str, *, limit: int = 20) -> list[Principal]:
        return self.server.search_users(term, limit=limit)

    def user_id_for(self, name: str) -> str:
        return self.server.user_id_for(name)

    def provision_user(self, localpart: str, *, display_name: str) -> Principal:
        return self.server.provision_user(localpart, display_name=display_name)

    def ensure_user(
        self, localpart: str, *, password: str, display_name: str, email: str = ""
    ) -> Principal:
        return self.server.ensure_user(
            localpart, password=password, display_name=display_name, email=email
        )


def chat_backend() -> IndexedChatBackend:
    """The portal's chat client: the configured homeserver, with the index in front."""
    return IndexedChatBackend(server_client)
