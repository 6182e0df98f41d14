"""Benchmark: 20 writers at once, on 20 rooms and on one room, SQLite and PostgreSQL.

One embedded homeserver; the portal's own services in one process, 20 threads (each a
portal administrator with its own database connection, as a web worker's thread has),
each disabling and enabling a room in turn for `--seconds` (30): first each thread its
own room, then all of them one room. Each change takes its room's lock for its
chat-server calls (three or so) and writes the index and the audit log. Printed: changes
per second, p50 and p99 of a change. On 20 rooms, a change should not wait for another
room's; on one room, the changes wait for each other by design (one writer a room).

    .venv/bin/python bench/writers.py --db sqlite
    .venv/bin/python bench/writers.py --db postgres   # PostgreSQL on 127.0.0.1:5432
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WRITERS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    shm = Path("/dev/shm")
    workdir = Path(tempfile.mkdtemp(prefix="bench-writers-", dir=shm if shm.is_dir() else None))
    if args.db == "sqlite":
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'portal.sqlite3'}"
    else:
        _fresh_postgres()
        os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/bench_writers"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User
    from rooms import index
    from rooms.backend.embedded import EmbeddedSynapse, free_port
    from rooms.backend.records import Privacy, RoomSettings
    from rooms.services import rooms as room_services

    call_command("migrate", verbosity=0)
    server = EmbeddedSynapse(
        workdir / "synapse", port=free_port(), server_name="bench.test", bcrypt_rounds=4
    )
    with server:
        chat = server.bootstrap()
        settings.CHAT_SERVER_URL = chat.url
        settings.CHAT_SERVER_NAME = chat.server_name
        settings.CHAT_SERVICE_TOKEN = chat.token
        client = chat.client(timeout=60)
        category = client.create_category(name="Writers", description="", creators=[])
        index.put_category(category)
        rooms = []
        for n in range(WRITERS):
            room = client.create_room(
                RoomSettings(f"Room {n}", "", category.id, Privacy.CLOSED), managers=[]
            )
            index.put_room(room)
            rooms.append(room.id)
        admins = [
            User.objects.create(username=f"admin{n}", is_portal_admin=True) for n in range(WRITERS)
        ]
        print(f"{args.db}: {WRITERS} writers for {args.seconds:.0f} s each run")
        print(f"{'':<16}{'changes/s':>12}{'p50':>10}{'p99':>10}{'failed':>8}")
        for label, targets in (("20 rooms", rooms), ("one room", [rooms[0]] * WRITERS)):
            took, failed = _run(
                admins,
                targets,
                args.seconds,
                lambda admin, room_id, disabled: room_services.room_set_disabled(
                    actor=admin, room_id=room_id, disabled=disabled
                ),
            )
            rate = len(took) / args.seconds
            p50 = statistics.median(took) * 1000
            p99 = statistics.quantiles(took, n=100)[98] * 1000
            print(f"{label:<16}{rate:>12.1f}{p50:>8.0f}ms{p99:>8.0f}ms{failed:>8}")
        connection.close()


def _run(
    admins: list[Any], targets: list[str], seconds: float, change: Callable[[Any, str, bool], Any]
) -> tuple[list[float], int]:
    """Each writer changes its target until the time is up (disabling it, enabling it):
    how long each change took, and how many failed."""
    from django.db import connection

    took: list[float] = []
    failed: list[BaseException] = []
    deadline = time.monotonic() + seconds
    start = threading.Barrier(len(admins))

    def writer(admin: Any, room_id: str) -> None:
        disabled = True
        start.wait()
        while time.monotonic() < deadline:
            begun = time.perf_counter()
            try:
                change(admin, room_id, disabled)
            except Exception as exc:  # counted, and the writer goes on
                failed.append(exc)
            took.append(time.perf_counter() - begun)
            disabled = not disabled
        connection.close()

    threads = [
        threading.Thread(target=writer, args=pair) for pair in zip(admins, targets, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return took, len(failed)


def _fresh_postgres() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute("DROP DATABASE IF EXISTS bench_writers WITH (FORCE)")
        db.execute("CREATE DATABASE bench_writers")


if __name__ == "__main__":
    main()
