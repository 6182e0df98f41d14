"""Benchmark: a category's scope of `--groups` groups (50) over `--people` people (20,000)
of a real directory (slapd), through the portal's own services.

One embedded homeserver with the portal's module, one directory filled at its start
(`slapadd`), each person in one group. Measured, each with its chat-server calls:

- reading the whole directory (what the job runner does every DIRECTORY_POLL_SECONDS);
- naming the groups in the scope, one after another (the people come into the scope,
  each with a chat account made first): people per second;
- following one person's change: they leave their group in the directory, and the job
  runner's next round takes them out of the scope (the time from the change in the
  directory to the chat server's, without the wait for the round);
- with `--room-group N`: a group of the first N people made the Members of a Closed room
  (people per second), one of them leaving the group (followed by the next round), and
  the room's page (time, database queries, chat calls) with one Member and with N; and,
  for the floor, the homeserver's own rate straight through the Matrix client, with no
  index, audit or rules of the portal's: 100 of the room's Members taken out and joined
  again, then taken out and invited again (each costs the homeserver more as the room
  grows), N/10 people into a scope, and N/10 invited to another room.

Targets on this machine (issue 27): 20 people/s or better applied, one person's change on
the chat server within 60 s of the directory's, a room page's cost the same with a group
of 10,000 Members as with one person.

    .venv/bin/python bench/directory.py --people 20000 --groups 50 --room-group 10000

`--homeserver-db postgres://postgres@127.0.0.1:5432` keeps the homeserver's data in
PostgreSQL, as a homeserver in service does, where the embedded one keeps a SQLite file.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOMESERVER_DB = "bench_directory_homeserver"
sys.path.insert(0, str(ROOT))


class Rows(list[tuple[str, str, int]]):
    """The results, each printed as it is measured (a long run that stops part-way has
    told what it measured)."""

    def append(self, row: tuple[str, str, int]) -> None:
        what, result, spent = row
        print(f"{what:<44}{result:>22}{spent:>12}", flush=True)
        super().append(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--room-group", type=int, default=0, help="a group of N as Members")
    parser.add_argument(
        "--event-cache", default="", help="the homeserver's event_cache_size (its own default)"
    )
    parser.add_argument(
        "--homeserver-db",
        default="",
        metavar="POSTGRES_URL",
        help=f"keep the homeserver's data on this PostgreSQL server (database {HOMESERVER_DB}, "
        "made for the run and dropped after) instead of its own SQLite file",
    )
    args = parser.parse_args()
    shm = Path("/dev/shm")
    workdir = Path(tempfile.mkdtemp(prefix="bench-directory-", dir=shm if shm.is_dir() else None))
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'portal.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command
    from django.test import override_settings
    from ldap3 import MODIFY_DELETE, Connection, Server

    import accounts.directory as directory
    from accounts.directory.server import (
        Group,
        Person,
        Seed,
        embedded_directory,
        group_dn,
        person_dn,
    )
    from accounts.models import User
    from rooms.backend.embedded import EmbeddedSynapse, free_port
    from rooms.index import chat_backend
    from rooms.services import directory as directory_services
    from rooms.services import directory_roles

    call_command("migrate", verbosity=0)
    # The page is served with static files by their plain names: no `collectstatic` needed.
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    override_settings(STORAGES=settings.STORAGES | {"staticfiles": plain}).enable()
    people = [
        Person(f"p{n:06d}", f"Person {n}", (f"Site {n % 5}",), "") for n in range(args.people)
    ]
    groups = [
        Group(f"Team {g:03d}", people=tuple(p.username for p in people[g :: args.groups]))
        for g in range(args.groups)
    ]
    big = Group("Everyone here", people=tuple(p.username for p in people[: args.room_group]))
    started = time.perf_counter()
    found = embedded_directory(
        workdir / "directory",
        Seed(people=people, groups=[*groups, big] if args.room_group else groups),
    )
    with (
        found as connection,
        homeserver_database(args.homeserver_db) as database,
        EmbeddedSynapse(
            workdir / "synapse",
            port=free_port(),
            server_name="bench.test",
            bcrypt_rounds=4,
            database=database,
            **({"event_cache_size": args.event_cache} if args.event_cache else {}),
        ) as server,
    ):
        print(f"set up: directory of {args.people} in {time.perf_counter() - started:.1f} s")
        chat = server.bootstrap()
        settings.CHAT_SERVER_URL = chat.url
        settings.CHAT_SERVER_NAME = chat.server_name
        settings.CHAT_SERVICE_TOKEN = chat.token
        settings.DIRECTORY_URL = connection.url
        settings.DIRECTORY_BIND_DN = connection.bind_dn
        settings.DIRECTORY_BIND_PASSWORD = connection.password
        settings.DIRECTORY_BASE = connection.base
        backend = chat_backend()
        category = backend.create_category(name="Everyone", description="", creators=[])
        admin = User.objects.create(username="admin", is_portal_admin=True)

        def calls() -> int:
            return int(backend.server.http.calls)

        print(f"{'':<44}{'result':>22}{'chat calls':>12}")
        rows = Rows()
        reads = []
        for _ in range(3):
            begun = time.perf_counter()
            snapshot = directory.read()
            reads.append(time.perf_counter() - begun)
        rows.append((f"read the directory ({len(snapshot.people)})", f"{min(reads):.2f} s", 0))

        before, begun = calls(), time.perf_counter()
        added = 0
        for group in groups:
            change = directory_services.principal_add(
                actor=admin, category_id=category.id, dn=group_dn(group.name)
            )
            added += len(change.added)
        seconds = time.perf_counter() - begun
        rows.append(
            (
                f"{args.groups} groups named, {added} people in",
                f"{added / seconds:.1f} people/s",
                calls() - before,
            )
        )

        leaver = people[0]
        with Connection(
            Server(connection.url), connection.bind_dn, connection.password, auto_bind=True
        ) as ldap:
            ldap.modify(
                group_dn(groups[0].name), {"member": [(MODIFY_DELETE, [person_dn(leaver)])]}
            )
        before, begun = calls(), time.perf_counter()
        followed = directory_roles.keep_in_step(force=True)
        rows.append(
            (
                f"one person leaves a group ({followed} change)",
                f"{time.perf_counter() - begun:.2f} s",
                calls() - before,
            )
        )
        if args.room_group:
            _room_group(args.room_group, category, people, connection, calls, rows)


@contextlib.contextmanager
def homeserver_database(url: str) -> Iterator[dict[str, Any] | None]:
    """The homeserver's database on the PostgreSQL server at `url`, dropped after the run
    (and before, if a run that was stopped left it); None without `url`."""
    if not url:
        yield None
        return
    import psycopg
    from psycopg import sql

    from rooms.backend.embedded import postgres_database

    def drop() -> None:
        with psycopg.connect(f"{url.rstrip('/')}/postgres", autocommit=True) as db:
            gone = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            db.execute(gone.format(sql.Identifier(HOMESERVER_DB)))

    drop()
    try:
        yield postgres_database(url, HOMESERVER_DB)
    finally:
        drop()


def _room_group(
    size: int, category: Any, people: list[Any], connection: Any, calls: Any, rows: Rows
) -> None:
    """The room's part: a group of `size` as a Closed room's Members, its page, a leaver,
    and the homeserver's own invite rate."""
    from django.db import connection as database
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse
    from ldap3 import MODIFY_DELETE, Connection, Server

    from accounts.directory.server import group_dn, person_dn
    from accounts.models import User
    from rooms.backend.records import Privacy, Role, RoomSettings
    from rooms.index import chat_backend
    from rooms.services import directory_roles

    backend = chat_backend()
    manager = backend.user_id_for(people[-1].username)
    owner = User.objects.create(username="manager", chat_id=manager)
    room = backend.create_room(
        RoomSettings("Everyone here", "", category.id, Privacy.CLOSED), managers=[manager]
    )
    backend.add_to_role(room.id, Role.MEMBER, [manager])
    browser = Client(HTTP_HOST="127.0.0.1")
    browser.force_login(owner)

    def page() -> tuple[float, int, int]:
        browser.get(reverse("rooms:detail", args=[room.id]))  # warm
        before, times = calls(), []
        with CaptureQueriesContext(database) as queries:
            for _ in range(5):
                begun = time.perf_counter()
                assert browser.get(reverse("rooms:detail", args=[room.id])).status_code == 200
                times.append(time.perf_counter() - begun)
        return sorted(times)[2], len(queries) // 5, (calls() - before) // 5

    seconds, queries, spent = page()
    rows.append(("room page, 1 Member", f"{seconds * 1000:.0f} ms, {queries} queries", spent))

    before, begun = calls(), time.perf_counter()
    change = directory_roles.principal_add(
        actor=owner, room_id=room.id, role=Role.MEMBER, dn=group_dn("Everyone here")
    )
    rate = len(change.added) / (time.perf_counter() - begun)
    how = "invited" if category.invitations_allowed else "joined"
    rows.append(
        (f"a group of {size} made Members ({how})", f"{rate:.1f} people/s", calls() - before)
    )

    seconds, queries, spent = page()
    rows.append(
        (
            f"room page, {len(change.added) + 1} Members",
            f"{seconds * 1000:.0f} ms, {queries} queries",
            spent,
        )
    )

    with Connection(
        Server(connection.url), connection.bind_dn, connection.password, auto_bind=True
    ) as ldap:
        ldap.modify(
            group_dn("Everyone here"), {"member": [(MODIFY_DELETE, [person_dn(people[1])])]}
        )
    before, begun = calls(), time.perf_counter()
    followed = directory_roles.keep_in_step(force=True)
    rows.append(
        (
            f"one Member leaves the group ({followed} change)",
            f"{time.perf_counter() - begun:.2f} s",
            calls() - before,
        )
    )

    # The homeserver's own rate at the room's size: 100 of its Members taken out and
    # added again straight through the Matrix client, joined and then invited (each is a
    # state event of a room of `size` people, which costs the homeserver more as it grows).
    again = [backend.user_id_for(p.username) for p in people[2:102]]
    for invite, how in ((False, "joined to"), (True, "invited to")):
        backend.server.remove_from_role(room.id, Role.MEMBER, again)
        before, begun = calls(), time.perf_counter()
        backend.server.add_to_role(room.id, Role.MEMBER, again, invite=invite)
        rate = len(again) / (time.perf_counter() - begun)
        rows.append(
            (
                f"the homeserver alone: {len(again)} {how} it",
                f"{rate:.1f} people/s",
                calls() - before,
            )
        )

    floor = max(size // 10, 1)
    space = backend.create_category(name="The floor", description="", creators=[])
    joined = [backend.user_id_for(p.username) for p in people[-floor:]]
    before, begun = calls(), time.perf_counter()
    for person in joined:  # what the scope's part asks of the homeserver, person by person
        backend.server.provision_user(person[1:].split(":")[0], display_name=person)
    backend.server.add_to_category_scope(space.id, joined)
    rate = floor / (time.perf_counter() - begun)
    rows.append(
        (f"the homeserver alone: {floor} into a scope", f"{rate:.1f} people/s", calls() - before)
    )
    other = backend.create_room(
        RoomSettings("The floor", "", category.id, Privacy.CLOSED), managers=[manager]
    )
    invited = [backend.user_id_for(p.username) for p in people[:floor]]
    before, begun = calls(), time.perf_counter()
    backend.server.add_to_role(other.id, Role.MEMBER, invited, invite=True)
    rate = floor / (time.perf_counter() - begun)
    rows.append(
        (f"the homeserver alone: {floor} invited", f"{rate:.1f} people/s", calls() - before)
    )


if __name__ == "__main__":
    main()
