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

from django.db import connection

_held = threading.local()  # SQLite: the targets this thread holds (a writer within a writer)


# The key space of rooms' and categories' locks among PostgreSQL's advisory locks (the
# two-number form, which never meets the one-number form the audit chain takes).
ROOM_LOCKS = 0x524F4F4D  # "ROOM"


@contextmanager
def one_writer(target_id: str) -> Iterator[None]:
    """Hold the room's (or category's) lock while its change is read, checked and made.

    No database transaction is held across the change: the chat server may take seconds
    (a timeout's worth, tries over), and a transaction that long would keep others
    waiting. Each write of the change is its own short transaction, and what a change
    claims before its chat-server calls it gives back itself if they fail (a new name:
    `rooms.services.rooms.room_update`). The lock is the room's own, on either engine,
    and a thread may take it again within itself:

    - PostgreSQL: an advisory lock of the session (the database connection), released
      when the change ends or the connection closes;
    - SQLite: a file lock beside the database. SQLite has one write lock for the whole
      database, which a transaction around the change would hold: every other room's
      change, the sync worker's included, waited behind it, or failed with "database is
      locked".
    """
    if connection.vendor == "postgresql":
        key = [ROOM_LOCKS, _key(target_id)]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", key)
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)
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


def _key(target_id: str) -> int:
    """The target's advisory lock number (a 32-bit signed integer of its hash)."""
    return int.from_bytes(hashlib.sha256(target_id.encode()).digest()[:4], "big", signed=True)


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
