"""One writer per room or category at a time."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection, transaction

from rooms.models import RoomLock

_held = threading.local()  # the targets this thread holds, for a writer within a writer


@contextmanager
def one_writer(target_id: str) -> Iterator[None]:
    """Hold the room's (or category's) lock while its change is read, checked and made.

    PostgreSQL: a row lock, in a transaction that holds nothing but the lock (audit
    entries are written outside it, so a change that fails is still recorded).

    SQLite: a file lock of the room's own, and no transaction around the change. SQLite
    has one write lock for the whole database, and a transaction around a change would
    hold it while the chat server works (seconds, or a timeout's worth): every other
    room's change, the sync worker's included, would wait behind it or fail with
    "database is locked". Each write of the change is its own short transaction instead,
    and what a change claims before its chat-server calls it gives back itself if they
    fail (a new name: `rooms.services.rooms.room_update`).
    """
    if connection.vendor != "sqlite":
        with transaction.atomic():
            RoomLock.objects.get_or_create(target_id=target_id[:255])
            RoomLock.objects.select_for_update().get(target_id=target_id[:255])
            yield
        return
    held: set[str] = _held.__dict__.setdefault("targets", set())
    if target_id in held:
        yield
        return
    with open(_lock_file(target_id), "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        held.add(target_id)
        try:
            yield
        finally:
            held.discard(target_id)
            fcntl.flock(file, fcntl.LOCK_UN)


def _lock_file(target_id: str) -> Path:
    """The file whose lock is the target's, beside the database (one folder a database:
    every process that writes it finds the same files)."""
    name = str(connection.settings_dict["NAME"])
    database = Path(name)
    if database.is_absolute() and database.parent.is_dir():
        folder = database.parent / f"{database.name}.locks"
    else:  # an in-memory database: one process's threads
        digest = hashlib.sha256(f"{os.getpid()}:{name}".encode()).hexdigest()[:16]
        folder = Path(tempfile.gettempdir()) / f"portal-locks-{digest}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / (hashlib.sha256(target_id.encode()).hexdigest()[:32] + ".lock")
