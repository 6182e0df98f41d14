"""Benchmark: pages read the room index, whatever the size of the homeserver.

Builds a small world (10 categories, 10 rooms) and measures every page, then grows it on
the same embedded Synapse to the large world (by default 500 categories, 2,000 portal
rooms, a person holding roles in 200 of them, 5,000 rooms and direct messages that are
not the portal's) and measures again: chat-server calls per page view, the median time
through the full Django stack, and the large/small ratio. Then the calls of the common
changes, how fast a change made in a chat client reaches the index (the sync worker in its
own process), the time of a full rebuild, and the worker's memory over many events.

    .venv/bin/python bench/room_index.py                       # the full world (~15 min)
    .venv/bin/python bench/room_index.py --categories 50 --rooms 200 --held 50 \
        --foreign 300 --events 1000                             # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
THREADS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--categories", type=int, default=500)
    parser.add_argument("--rooms", type=int, default=2000)
    parser.add_argument("--held", type=int, default=200)
    parser.add_argument("--foreign", type=int, default=5000)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-index-"))
    database = f"sqlite:///{workdir / 'portal.sqlite3'}"
    os.environ["DATABASE_URL"] = database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)  # the portal's own log lines are not the report
    from django.conf import settings
    from django.core.management import call_command

    from rooms.backend.embedded import EmbeddedSynapse, free_port

    call_command("migrate", verbosity=0)
    server = EmbeddedSynapse(
        workdir / "synapse", port=free_port(), server_name="bench.test", bcrypt_rounds=4
    )
    with server:
        connection = server.bootstrap()
        settings.CHAT_SERVER_URL = connection.url
        settings.CHAT_SERVER_NAME = connection.server_name
        settings.CHAT_SERVICE_TOKEN = connection.token
        settings.ALLOWED_HOSTS = ["*"]
        env = os.environ | {
            "DATABASE_URL": database,
            "CHAT_SERVER_URL": connection.url,
            "CHAT_SERVER_NAME": connection.server_name,
            "CHAT_SERVICE_TOKEN": connection.token,
        }
        Bench(args, connection, env).run()


class Bench:
    def __init__(self, args: argparse.Namespace, connection: Any, env: dict[str, str]) -> None:
        from rooms.backend import server_client
        from rooms.index import IndexedChatBackend

        self.args, self.connection, self.env = args, connection, env
        # The portal's own shared client: its call counter sees every page and service.
        self.client = IndexedChatBackend(server_client)
        self.server = self.client.server
        self.categories: list[str] = []
        self.rooms: list[str] = []
        self.held: list[str] = []
        self.stranger_ids: list[str] = []
        self.stranger_tokens: list[str] = []
        self.foreign_made = 0

    # --- the world ----------------------------------------------------------------------

    def parallel(self, work: Callable[[Any, int], Any], count: int) -> list[Any]:
        """Run work(client, n) for n in range(count) on a few threads, a client each."""
        import threading

        from django.db import connection as db

        from rooms.index import IndexedChatBackend

        local = threading.local()

        def one(n: int) -> Any:
            if not hasattr(local, "client"):
                client = self.connection.client(timeout=60)
                local.client = IndexedChatBackend(lambda: client)
            try:
                return work(local.client, n)
            finally:
                db.close()

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            return list(pool.map(one, range(count)))

    def grow(self, categories: int, rooms: int, held: int, foreign: int) -> None:
        from rooms.backend.records import Privacy, RoomSettings

        pat, other = self.pat, self.other
        new = self.parallel(
            lambda c, n: (
                c.create_category(
                    name=f"Category {len(self.categories) + n:04d}",
                    description="Benchmark",
                    creators=[pat],
                ).id
            ),
            categories - len(self.categories),
        )
        self.parallel(lambda c, n: c.add_to_category_scope(new[n], [pat, other]), len(new))
        self.categories += new
        start = len(self.rooms)

        def room(c: Any, n: int) -> str:
            number = start + n
            mine = number < held
            made = c.create_room(
                RoomSettings(
                    f"Room {number:05d}",
                    "Benchmark room",
                    self.categories[number % len(self.categories)],
                    [Privacy.OPEN, Privacy.CLOSED, Privacy.SECRET][number % 3],
                ),
                managers=[pat if mine else other],
                members=[] if number % 3 == 0 else [pat if mine else other],
            )
            return str(made.id)

        made = self.parallel(room, rooms - start)
        self.rooms += made
        self.held += [r for n, r in enumerate(made) if start + n < held]
        self.foreign_rooms(foreign)

    def foreign_rooms(self, count: int) -> None:
        """Rooms and direct messages other people made, which the portal never sees."""
        have = self.foreign_made
        if count <= have:
            return
        tokens = self.strangers()

        def make(c: Any, n: int) -> None:
            token = tokens[n % len(tokens)]
            body: dict[str, Any] = {"name": f"Elsewhere {have + n}", "preset": "private_chat"}
            if n % 2:
                body = {"is_direct": True, "preset": "trusted_private_chat"}
                body["invite"] = [self.stranger_ids[(n + 1) % len(self.stranger_ids)]]
            httpx.post(
                f"{self.connection.url}/_matrix/client/v3/createRoom",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            ).raise_for_status()

        self.parallel(make, count - have)
        self.foreign_made = count

    def strangers(self) -> list[str]:
        if self.stranger_tokens:
            return self.stranger_tokens
        for n in range(20):
            user_id = self.server.ensure_user(
                f"stranger{n}", password="bench-pass", display_name=f"Stranger {n}"
            ).id
            self.server.http.request(
                "POST",
                f"/_synapse/admin/v1/users/{user_id}/override_ratelimit",
                json={"messages_per_second": 0, "burst_count": 0},
            )
            token = self.server.http.request(
                "POST", f"/_synapse/admin/v1/users/{user_id}/login", json={}
            )["access_token"]
            self.stranger_ids.append(user_id)
            self.stranger_tokens.append(token)
        return self.stranger_tokens

    # --- measuring ----------------------------------------------------------------------

    def pages(self) -> dict[str, tuple[str, Any]]:
        from django.urls import reverse

        from rooms.models import RoomRequest

        room, category = self.held[0], self.categories[0]
        asked = RoomRequest.objects.get(status="pending")
        return {
            "categories page": ("pat", reverse("categories:list")),
            "My rooms": ("pat", reverse("rooms:list")),
            "My rooms, searched": ("pat", reverse("rooms:list") + "?q=room+00&privacy=closed"),
            "room page": ("pat", reverse("rooms:detail", args=[room])),
            "roles panel (htmx)": ("pat", reverse("roles:panel", args=[room])),
            "explainer": ("pat", reverse("roles:explain", args=[room]) + f"?person={self.other}"),
            "approval queue": ("pat", reverse("requests:queue")),
            "request form": ("paul", reverse("requests:new")),
            "category list (admin)": ("admin", reverse("categories:manage")),
            "category detail (admin)": ("admin", reverse("categories:detail", args=[category])),
            "request (approver)": ("pat", reverse("requests:detail", args=[asked.pk])),
        }

    def measure(self) -> dict[str, tuple[float, int]]:
        from django.test import Client

        clients = {}
        for who, user in self.users.items():
            clients[who] = Client()
            clients[who].force_login(user)
        found = {}
        for name, (who, url) in self.pages().items():
            client = clients[who]
            headers = {"HX-Request": "true"} if "htmx" in name else {}
            assert client.get(url, headers=headers).status_code == 200, (name, url)
            times, calls = [], []
            for _ in range(self.args.samples):
                before = self.server.http.calls
                started = time.perf_counter()
                response = client.get(url, headers=headers)
                times.append((time.perf_counter() - started) * 1000)
                calls.append(self.server.http.calls - before)
                assert response.status_code == 200, (name, url, response.status_code)
            found[name] = (statistics.median(times), max(calls))
        return found

    def calls_of(self, change: Callable[[], Any]) -> int:
        before = self.server.http.calls
        change()
        return self.server.http.calls - before

    def writes(self) -> dict[str, int]:
        from rooms.backend.records import Privacy, Role, RoomSettings
        from rooms.services import roles as role_services
        from rooms.services import rooms as room_services

        pat = self.users["pat"]
        room_id = self.held[1]
        return {
            "create a room": self.calls_of(
                lambda: room_services.room_create(
                    actor=pat,
                    settings=RoomSettings(
                        f"Fresh {uuid.uuid4().hex[:6]}", "", self.categories[0], Privacy.CLOSED
                    ),
                    submission=uuid.uuid4(),
                )
            ),
            "add one member": self.calls_of(
                lambda: role_services.role_add(
                    actor=pat, room_id=room_id, role=Role.MEMBER, user_id=self.other
                )
            ),
            "change privacy": self.calls_of(
                lambda: room_services.room_set_privacy(
                    actor=pat, room_id=room_id, privacy=Privacy.SECRET
                )
            ),
        }

    def worker(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "manage.py", "index_sync"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def external_latency(self, samples: int = 40) -> list[float]:
        """A Manager changes the topic in their chat client; how long until the index has it."""
        from rooms.models import IndexedRoom

        token = self.server.http.request(
            "POST", f"/_synapse/admin/v1/users/{self.pat}/login", json={}
        )["access_token"]
        room_id = self.held[2]
        httpx.post(
            f"{self.connection.url}/_matrix/client/v3/join/{room_id}",
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )
        latencies = []
        for n in range(samples):
            topic = f"From a chat client {n}"
            started = time.perf_counter()
            httpx.put(
                f"{self.connection.url}/_matrix/client/v3/rooms/{room_id}/state/m.room.topic/",
                json={"topic": topic},
                headers={"Authorization": f"Bearer {token}"},
            ).raise_for_status()
            while not IndexedRoom.objects.filter(room_id=room_id, description=topic).exists():
                if time.perf_counter() - started > 30:
                    raise SystemExit("A change did not reach the index in 30 s.")
                time.sleep(0.01)
            latencies.append(time.perf_counter() - started)
        return latencies

    def worker_memory(self, worker: subprocess.Popen[bytes], events: int) -> tuple[int, int, float]:
        """The worker's RSS before and after `events` state changes, and how long it took
        to take them in."""
        from rooms.backend.matrix.transport import segment
        from rooms.models import IndexedRoom

        start = rss(worker.pid)
        rooms = self.rooms
        started = time.perf_counter()

        def change(c: Any, n: int) -> None:
            room_id = rooms[n % len(rooms)]
            c.server.http.request(
                "PUT",
                f"/_matrix/client/v3/rooms/{segment(room_id)}/state/m.room.topic/",
                json={"topic": f"Event {n}"},
            )

        self.parallel(change, events)
        last = rooms[(events - 1) % len(rooms)]
        while not IndexedRoom.objects.filter(room_id=last, description=f"Event {events - 1}"):
            time.sleep(0.1)
        return start, rss(worker.pid), time.perf_counter() - started

    # --- the run ------------------------------------------------------------------------

    def run(self) -> None:
        from accounts.models import User
        from rooms import sync
        from rooms.models import RoomRequest

        args = self.args
        self.pat = self.server.ensure_user("pat", password="bench-pass", display_name="Pat").id
        self.other = self.server.ensure_user("olga", password="bench-pass", display_name="Olga").id
        paul = self.server.ensure_user("paul", password="bench-pass", display_name="Paul").id
        self.users = {
            "pat": User.objects.create(username=self.pat, chat_id=self.pat),
            "paul": User.objects.create(username=paul, chat_id=paul),
            "admin": User.objects.create(username="admin", is_portal_admin=True),
        }
        sync.resync(self.server, reason="benchmark start")
        _ = self.server.service_user  # asked of the server once per process, as in the portal

        print("Small world: 10 categories, 10 rooms...", flush=True)
        self.grow(10, 10, 10, 0)
        RoomRequest.objects.create(
            requester=self.users["paul"],
            category_id=self.categories[0],
            category_label="Category 0000",
            name="Asked for",
            privacy="closed",
            invitations="inherit",
            justification="Benchmark",
        )
        small = self.measure()

        print(
            f"Large world: {args.categories} categories, {args.rooms} rooms "
            f"({args.held} held), {args.foreign} rooms that are not the portal's...",
            flush=True,
        )
        started = time.perf_counter()
        self.grow(args.categories, args.rooms, args.held, args.foreign)
        print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
        large = self.measure()
        writes = self.writes()

        started = time.perf_counter()
        read = sync.rebuild(self.server)
        rebuilt = time.perf_counter() - started

        worker = self.worker()
        try:
            time.sleep(3)
            latencies = self.external_latency()
            rss_start, rss_end, took = self.worker_memory(worker, args.events)
        finally:
            worker.terminate()
            worker.wait(timeout=30)

        print()
        print("| page | calls (small / large) | median ms (small / large) | ratio |")
        print("| --- | --- | --- | --- |")
        for name in small:
            (ms_small, calls_small), (ms_large, calls_large) = small[name], large[name]
            print(
                f"| {name} | {calls_small} / {calls_large} | {ms_small:.1f} / {ms_large:.1f} "
                f"| {ms_large / ms_small:.2f} |"
            )
        print()
        for name, calls in writes.items():
            print(f"{name}: {calls} chat-server calls")
        latencies.sort()
        p95 = latencies[int(len(latencies) * 0.95) - 1]
        print(
            f"external change reaches the index: median {statistics.median(latencies):.2f} s, "
            f"p95 {p95:.2f} s ({len(latencies)} changes)"
        )
        print(f"full rebuild: {read} rooms and spaces read in {rebuilt:.1f} s")
        print(
            f"sync worker RSS: {rss_start / 1024:.0f} MB at start, {rss_end / 1024:.0f} MB after "
            f"{args.events} events (taken in over {took:.0f} s)"
        )


def rss(pid: int) -> int:
    """Resident memory of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main()
