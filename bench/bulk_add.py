"""Benchmark: add N members to a room in one bulk action, against the embedded Synapse.

Runs the portal's own path (preview, then the operation applied a chunk at a time, as
the job runner does, each person audited) and reports the time and the number of
chat-server calls. Run it with `make bench` or `.venv/bin/python bench/bulk_add.py
--people 500`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=500)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'portal.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from accounts.models import User
    from rooms.backend.embedded import EmbeddedSynapse, free_port
    from rooms.backend.records import Privacy, Role, RoomSettings
    from rooms.index import chat_backend
    from rooms.services import roles as role_services

    call_command("migrate", verbosity=0)
    server = EmbeddedSynapse(
        workdir / "synapse", port=free_port(), server_name="bench.test", bcrypt_rounds=4
    )
    with server:
        connection = server.bootstrap()
        settings.CHAT_SERVER_URL = connection.url
        settings.CHAT_SERVER_NAME = connection.server_name
        settings.CHAT_SERVICE_TOKEN = connection.token
        client = chat_backend()

        print(f"Setting up {args.people} people in a category...", flush=True)
        manager = client.ensure_user("manager", password="bench-pass", display_name="Manager")
        with ThreadPoolExecutor(max_workers=8) as pool:
            people = list(
                pool.map(
                    lambda n: (
                        client.ensure_user(
                            f"p{n}", password="bench-pass", display_name=f"Person {n}"
                        ).id
                    ),
                    range(args.people),
                )
            )
        category = client.create_category(name="Bench", description="", creators=[manager.id])
        client.add_to_category_scope(category.id, [manager.id, *people])
        room = client.create_room(
            RoomSettings(
                name="Bench room", description="", category_id=category.id, privacy=Privacy.CLOSED
            ),
            managers=[manager.id],
            members=[manager.id],
        )
        actor = User.objects.create(username=manager.id, chat_id=manager.id)

        calls_before = client.server.http.calls
        started = time.perf_counter()
        op = role_services.bulk_start(
            actor=actor, room_id=room.id, role=Role.MEMBER, text="\n".join(people)
        )
        previewed = time.perf_counter()
        steps = 0
        while op.status == op.Status.RUNNING:
            role_services.role_changes_step(op)
            steps += 1
        finished = time.perf_counter()
        calls = client.server.http.calls - calls_before

        members = client.get_room(room.id).members
        added = len(set(people) & members)
        print(f"people:               {args.people}")
        print(f"added:                {added} ({op.status})")
        print(f"preview + start:      {previewed - started:.1f} s")
        print(f"apply ({steps} steps):    {finished - previewed:.1f} s")
        print(f"total:                {finished - started:.1f} s  (target: under 30 s for 500)")
        print(f"chat-server calls:    {calls} ({calls / max(args.people, 1):.2f} per person)")
        if added != args.people:
            sys.exit("Not everyone was added.")


if __name__ == "__main__":
    main()
