"""Benchmark: the cost of a room's page as its room and its category's scope grow.

The index alone (no homeserver: a page makes no chat-server call, which
`tests/rooms/test_index_to_show.py` and `bench/room_index.py` hold): a category whose
scope holds `--scope` people (20,000) and a Closed room of N Members, N from `--members`
(1, 100 and 10,000 by default), with display names for all. The room's page through the
full Django stack, as its Manager: the median of `--runs` views, and the database queries
of one. A role lists at most 100 people, so a page of 1 Member renders less than a page
of 100; from 100 on, the page should cost the same.

    .venv/bin/python bench/room_page.py
    .venv/bin/python bench/room_page.py --scope 20000 --members 1 100 10000 --db postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scope", type=int, default=20_000)
    parser.add_argument("--members", type=int, nargs="+", default=[1, 100, 10_000])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    if args.db == "sqlite":
        shm = Path("/dev/shm")
        workdir = Path(tempfile.mkdtemp(prefix="bench-page-", dir=shm if shm.is_dir() else None))
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'portal.sqlite3'}"
    else:
        os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/bench_room_page"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from accounts.models import User
    from rooms.models import CategoryPerson, IndexedCategory, IndexedRoom, RoomPerson

    if args.db == "postgres":
        _fresh_postgres()
    call_command("migrate", verbosity=0)
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    override_settings(STORAGES=settings.STORAGES | {"staticfiles": plain}).enable()

    people = [f"@person{i:06}:example.org" for i in range(max(args.scope, *args.members))]
    category = IndexedCategory.objects.create(
        category_id="!space:example.org", name="Everyone", name_key="everyone"
    )
    CategoryPerson.objects.bulk_create(
        (CategoryPerson(category=category, user_id=p, standing="allowed") for p in people),
        batch_size=5000,
    )
    manager = User.objects.create(username="manager", chat_id=people[0])
    browser = Client(HTTP_HOST="127.0.0.1")
    browser.force_login(manager)
    print(f"scope of {args.scope:,} people, {args.db}; the room's page as its Manager")
    print(f"{'Members':>10}{'median':>12}{'queries':>10}")
    for count in args.members:
        room_id = f"!room{count}:example.org"
        room = IndexedRoom.objects.create(
            room_id=room_id,
            category=category,
            name=f"Room of {count}",
            name_key=f"room of {count}",
            privacy="closed",
            invitations="inherit",
            names={p: f"Person {i}" for i, p in enumerate(people[:count])},
        )
        RoomPerson.objects.bulk_create(
            (RoomPerson(room=room, user_id=p, role="member") for p in people[:count]),
            batch_size=5000,
        )
        RoomPerson.objects.create(room=room, user_id=people[0], role="manager")
        url = reverse("rooms:detail", args=[room_id])
        assert browser.get(url).status_code == 200
        times = []
        for _ in range(args.runs):
            begun = time.perf_counter()
            browser.get(url)
            times.append(time.perf_counter() - begun)
        with CaptureQueriesContext(connection) as queries:
            browser.get(url)
        median = statistics.median(times) * 1000
        print(f"{count:>10,}{median:>10.1f} ms{len(queries):>10}")


def _fresh_postgres() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute("DROP DATABASE IF EXISTS bench_room_page")
        db.execute("CREATE DATABASE bench_room_page")


if __name__ == "__main__":
    main()
