"""Benchmark: moderation and compliance on a room of `--messages` messages (100,000).

One embedded homeserver with the portal's module, one category, one room in which a
member sent the messages (one in ten says the phrase). Through the portal's own services
(permission checks and audit entries included, as the pages and the API run them):

- a page of history (50 messages, newest first), and a page filtered by the phrase;
- the preview of a removal by the phrase (how many match, with a sample);
- the removal of `--remove` (10,000) of them by the job runner's steps;
- the export of the month as JSON Lines and as RSMF, with the memory it holds (Python's
  allocations, tracemalloc) for 1,000 messages and for all of them.

Each with its time and its chat-server calls. Targets on this machine: a page under
300 ms, a phrase preview under 2 s, removal at 50 messages/s or better, export at 5,000
messages/s or better with memory flat from 1,000 to 100,000 messages.

    .venv/bin/python bench/moderation.py --messages 100000 --remove 10000
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-pass-1"
PHRASE = "quarterly numbers"
SMALL = 1000  # messages of the room whose export's memory is the baseline


def timed(step: Callable[[], Any], calls: Callable[[], int]) -> tuple[float, int, Any]:
    """Seconds, chat-server calls, and what the step gave."""
    before, started = calls(), time.perf_counter()
    result = step()
    return time.perf_counter() - started, calls() - before, result


def send_all(url: str, room_id: str, sender: Any, count: int) -> float:
    """`count` messages from the member (8 at once); messages per second."""
    from tests.chat_users import ChatUser

    def send(part: range) -> None:
        person = ChatUser.login(url, sender.id, PASSWORD)
        for n in part:
            text = f"Note {n}: the {PHRASE} look fine" if n % 10 == 0 else f"Note {n}: on track"
            answer = person.send(room_id, text)
            if not answer.is_success:
                raise SystemExit(f"refused: {answer.status_code} {answer.text}")

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, [range(k, count, 8) for k in range(8)]))
    return count / (time.perf_counter() - started)


def read_through(lines: Iterable[Any]) -> float:
    """Read an export to its end: seconds."""
    started = time.perf_counter()
    for _ in lines:
        pass
    return time.perf_counter() - started


def held(lines: Iterable[Any]) -> int:
    """Read an export to its end again: the most memory Python held meanwhile (bytes;
    tracemalloc slows Python down, so this read is not the one timed)."""
    tracemalloc.start()
    for _ in lines:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--remove", type=int, default=10_000, help="how many to remove")
    parser.add_argument("--samples", type=int, default=10, help="history pages timed")
    args = parser.parse_args()
    shm = Path("/dev/shm")
    workdir = Path(tempfile.mkdtemp(prefix="bench-moderation-", dir=shm if shm.is_dir() else None))
    database = f"sqlite:///{workdir / 'portal.sqlite3'}"
    os.environ["DATABASE_URL"] = database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

    import django

    django.setup()
    logging.disable(logging.WARNING)  # the portal's own log lines are not the report
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import User
    from rooms import index
    from rooms.backend.embedded import EmbeddedSynapse, free_port
    from rooms.backend.records import Privacy, RoomSettings
    from rooms.chatserver import statistics
    from rooms.index import chat_backend
    from rooms.models import Operation
    from rooms.services import moderation
    from tests.chat_users import ChatUser

    call_command("migrate", verbosity=0)
    server = EmbeddedSynapse(
        workdir / "synapse", port=free_port(), server_name="bench.test", bcrypt_rounds=4
    )
    with server:
        connection = server.bootstrap()
        settings.CHAT_SERVER_URL = connection.url
        settings.CHAT_SERVER_NAME = connection.server_name
        settings.CHAT_SERVICE_TOKEN = connection.token
        chat = connection.client(timeout=60)
        member = chat.ensure_user("member", password=PASSWORD, display_name="Member")
        chat.http.request(
            "POST",
            f"/_synapse/admin/v1/users/{member.id}/override_ratelimit",
            json={"messages_per_second": 0, "burst_count": 0},
        )
        category = chat.create_category(name="Finance", description="", creators=[])
        chat.add_to_category_scope(category.id, [member.id])
        room = chat.create_room(
            RoomSettings("Quarter close", "", category.id, Privacy.CLOSED),
            managers=[],
            members=[member.id],
        )
        small = chat.create_room(
            RoomSettings("Quarter close (small)", "", category.id, Privacy.CLOSED),
            managers=[],
            members=[member.id],
        )
        talker = ChatUser.login(connection.url, member.id, PASSWORD)
        talker.join(room.id)
        talker.join(small.id)
        start = timezone.now() - timedelta(minutes=1)
        rate = send_all(connection.url, room.id, member, args.messages)
        send_all(connection.url, small.id, member, SMALL)
        print(f"set up: {args.messages} messages sent at {rate:.0f}/s")
        # The homeserver's module gathers SQLite's planner statistics as events grow, as
        # it does on a homeserver in use: one round of it before measuring.
        time.sleep(statistics.CHECK_MS / 1000 + 5)
        index.put_category(chat.get_category(category.id))
        index.put_room(chat.get_room(room.id))
        index.put_room(chat.get_room(small.id))
        admin = User.objects.create(username="admin", is_portal_admin=True)
        backend = chat_backend()

        def calls() -> int:
            return int(backend.server.http.calls)

        rows: list[tuple[str, str, int]] = []
        pages = [
            timed(lambda: moderation.history_read(actor=admin, room_id=room.id), calls)
            for _ in range(args.samples)
        ]
        rows.append(
            ("a page of history (50)", f"{median(p[0] for p in pages) * 1000:.0f} ms", pages[0][1])
        )
        pages = [
            timed(lambda: moderation.history_read(actor=admin, room_id=room.id, text=PHRASE), calls)
            for _ in range(args.samples)
        ]
        rows.append(
            ("a page with the phrase", f"{median(p[0] for p in pages) * 1000:.0f} ms", pages[0][1])
        )
        matching = moderation.Matching(text=PHRASE)
        seconds, spent, preview = timed(
            lambda: moderation.sweep_preview(actor=admin, matching=matching, room_id=room.id),
            calls,
        )
        rows.append((f"phrase preview ({preview.count} match)", f"{seconds:.2f} s", spent))

        op = moderation.sweep_start(
            actor=admin, matching=matching, reason="Bench", notice=False, room_id=room.id
        )
        removed, spent_calls, started = 0, calls(), time.perf_counter()
        while removed < args.remove:
            removed += moderation.sweep_step()
            op.refresh_from_db()
            if op.status != Operation.Status.RUNNING:
                break
        seconds = time.perf_counter() - started
        rows.append(
            (f"removal of {removed}", f"{removed / seconds:.0f} msg/s", calls() - spent_calls)
        )
        Operation.objects.filter(pk=op.pk).update(status=Operation.Status.SUCCEEDED)

        exports = (("JSON Lines", moderation.export_lines), ("RSMF", moderation.export_rsmf))
        for fmt, export in exports:
            for size, room_id in ((SMALL, small.id), (args.messages, room.id)):
                before = calls()
                seconds = read_through(
                    export(actor=admin, room_id=room_id, since=start, until=None)
                )
                spent = calls() - before
                peak = held(export(actor=admin, room_id=room_id, since=start, until=None))
                rows.append(
                    (
                        f"export, {fmt}, {size} messages",
                        f"{size / seconds:.0f} msg/s, {peak / 1e6:.1f} MB held",
                        spent,
                    )
                )
        print(f"{'':<40}{'result':>34}{'chat calls':>12}")
        for what, result, spent in rows:
            print(f"{what:<40}{result:>34}{spent:>12}")


if __name__ == "__main__":
    main()
