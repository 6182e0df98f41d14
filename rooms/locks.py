"""One writer per room or category at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

from rooms.models import RoomLock


@contextmanager
def one_writer(target_id: str) -> Iterator[None]:
    """Hold the room's (or category's) lock while its change is read, checked and made.

    The transaction holds nothing but the lock: audit entries are written outside it, so
    a change that fails is still recorded. PostgreSQL: a row lock. SQLite: the lock is
    the database's write lock (transactions begin IMMEDIATE).
    """
    with transaction.atomic():
        RoomLock.objects.get_or_create(target_id=target_id[:255])
        RoomLock.objects.select_for_update().get(target_id=target_id[:255])
        yield
