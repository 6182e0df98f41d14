"""Writing into the index what the chat server confirmed: categories and rooms, their
people and names, links, and the names claimed while a room is being made."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from rooms.backend.records import (
    Category,
    Role,
    Room,
)
from rooms.chatserver.policy import name_key
from rooms.index.records import sort_key
from rooms.models import (
    CategoryPerson,
    IndexDifference,
    IndexedCategory,
    IndexedRoom,
    RoomName,
    RoomPerson,
)

Standing = CategoryPerson.Standing


# Writes: what the server confirmed, put into the index.


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
