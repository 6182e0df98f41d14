"""Benchmark: what the portal's Synapse module costs the homeserver.

One embedded homeserver, one category whose scope holds `--scope` people, one Closed room
whose Manager works in a chat client. The same homeserver (same database, same rooms) is
measured in runs without and with the module (restarted between runs, in pairs of
mirrored order), and the median of each kept: messages, state changes (the topic) and
invitations of in-scope people (the same people each run, their invitations withdrawn
before it) sent one after another by the Manager, each as events per second and as the
homeserver's CPU time per event. Then the module's own decision (`policy.refusal`) is timed
in-process for one event. Chat-server calls are the events themselves: the module makes
no call to the portal; for a state event, an invitation or a join it reads the pieces of
the room's state the rules need (one query) and a membership or two (cached by the
homeserver); for a message it reads nothing.

    .venv/bin/python bench/chat_rules.py --scope 10000 --events 300 --runs 8
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rooms.backend.embedded import EmbeddedSynapse, free_port  # noqa: E402
from rooms.backend.records import Privacy, RoomSettings  # noqa: E402
from rooms.chatserver.policy import Governed, refusal  # noqa: E402

PASSWORD = "bench-pass-1"
SERVER_NAME = "bench.test"
ROOM_NAME = "Release train"
# Without (False) and with (True) the module, in pairs of mirrored order: a drift that
# slows later runs slows both alike.
ORDER = (False, True, True, False, False, True, True, False)


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used (user and system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate(count: int, pid: int, step: Callable[[int], httpx.Response]) -> tuple[float, float]:
    """Events per second, each sent after the one before was answered (and accepted),
    and the homeserver's CPU milliseconds per event (what other work on the machine
    does not change)."""
    started, cpu = time.perf_counter(), cpu_seconds(pid)
    for n in range(count):
        answer = step(n)
        if not answer.is_success:
            raise SystemExit(f"refused: {answer.status_code} {answer.text}")
    return count / (time.perf_counter() - started), (cpu_seconds(pid) - cpu) * 1000 / count


def measure(
    server: EmbeddedSynapse, manager: str, room_id: str, invitees: list[str], count: int
) -> dict[str, tuple[float, float]]:
    """Events per second and CPU per event from the Manager's chat client."""
    from tests.chat_users import ChatUser

    assert server.process is not None
    pid = server.process.pid
    carol = ChatUser.login(server.url, manager, PASSWORD)
    if not room_id:  # a reused set-up: the Manager's room of that name
        joined = carol.http.get("/_matrix/client/v3/joined_rooms").json()["joined_rooms"]
        room_id = next(r for r in joined if carol.state(r, "m.room.name").get("name") == ROOM_NAME)
    carol.join(room_id)
    for person in invitees:  # every run invites the same people into the same room
        carol.http.post(f"/_matrix/client/v3/rooms/{room_id}/kick", json={"user_id": person})
    return {
        "messages": rate(count, pid, lambda n: carol.send(room_id, f"m{n}")),
        "state": rate(
            count, pid, lambda n: carol.put_state(room_id, "m.room.topic", {"topic": f"t{n}"})
        ),
        "invites": rate(count, pid, lambda n: carol.invite(room_id, invitees[n])),
    }


def set_up(workdir: Path, port: int, scope: int) -> tuple[str, str, list[str]]:
    """A homeserver with a category of `scope` people, a Closed room in it and its
    Manager: their IDs, and the people's."""
    server = EmbeddedSynapse(
        workdir, port=port, server_name=SERVER_NAME, bcrypt_rounds=4, rules=False
    )
    with server:
        connection = server.bootstrap()
        chat = connection.client(timeout=60)
        started = time.perf_counter()
        manager = chat.ensure_user("manager", password=PASSWORD, display_name="Manager")
        # The Manager sends hundreds of events a second: lift their rate limits.
        chat.http.request(
            "POST",
            f"/_synapse/admin/v1/users/{manager.id}/override_ratelimit",
            json={"messages_per_second": 0, "burst_count": 0},
        )
        with ThreadPoolExecutor(4) as pool:  # a client of its own per task
            people = list(
                pool.map(
                    lambda n: (
                        connection.client(timeout=60)
                        .ensure_user(f"p{n}", password=PASSWORD, display_name=f"P{n}")
                        .id
                    ),
                    range(scope),
                )
            )
        category = chat.create_category(name="Engineering", description="", creators=[manager.id])
        with ThreadPoolExecutor(4) as pool:
            chunks = [people[i : i + 250] for i in range(0, len(people), 250)]
            list(
                pool.map(
                    lambda c: connection.client(timeout=60).add_to_category_scope(category.id, c),
                    chunks,
                )
            )
        chat.add_to_category_scope(category.id, [manager.id])
        room = chat.create_room(
            RoomSettings(ROOM_NAME, "", category.id, Privacy.CLOSED),
            managers=[manager.id],
            members=[manager.id],
        )
        print(f"set up: {scope} people in scope in {time.perf_counter() - started:.0f} s")
    return manager.id, room.id, people


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scope", type=int, default=2000, help="people in the category")
    parser.add_argument("--events", type=int, default=300, help="events of each kind")
    parser.add_argument("--runs", type=int, default=8, help="runs, half with the module")
    parser.add_argument(
        "--reuse", default="", help="the folder of an earlier set-up (it prints it): measure again"
    )
    parser.epilog = "--scope must be at least --events (the people invited in each run)."
    args = parser.parse_args()
    port = free_port()
    if args.reuse:
        workdir = Path(args.reuse)
        manager_id, room_id = f"@manager:{SERVER_NAME}", ""
        people = [f"@p{n}:{SERVER_NAME}" for n in range(args.events)]
    else:
        # On tmpfs where there is one, as the tests do: no disk flush in what is measured.
        shm = Path("/dev/shm")
        workdir = Path(tempfile.mkdtemp(prefix="bench-rules-", dir=shm if shm.is_dir() else None))
        manager_id, room_id, people = set_up(workdir, port, args.scope)
        print(f"(--reuse {workdir} measures the same homeserver again, without the set-up)")
    runs: dict[bool, dict[str, list[tuple[float, float]]]] = {False: {}, True: {}}
    for rules in ORDER[: args.runs]:
        server = EmbeddedSynapse(
            workdir, port=port, server_name=SERVER_NAME, bcrypt_rounds=4, rules=rules
        )
        with server:
            invitees = people[: args.events]
            measured = measure(server, manager_id, room_id, invitees, args.events)
            for kind, value in measured.items():
                runs[rules].setdefault(kind, []).append(value)
    print(
        f"{'median of ' + str(len(runs[True]['messages'])) + ' runs':<24}"
        f"{'events/s':>20}{'ratio':>7}{'homeserver CPU ms/event':>30}{'ratio':>7}"
    )
    print(f"{'':<24}{'without':>10}{'with':>10}{'':>7}{'without':>15}{'with':>15}")
    for kind in ("messages", "state", "invites"):
        rates = [median(r for r, _ in runs[rules][kind]) for rules in (False, True)]
        cpu = [median(c for _, c in runs[rules][kind]) for rules in (False, True)]
        print(
            f"{kind:<24}{rates[0]:>10.1f}{rates[1]:>10.1f}{rates[0] / rates[1]:>7.2f}"
            f"{cpu[0]:>15.2f}{cpu[1]:>15.2f}{cpu[1] / cpu[0]:>7.2f}"
        )

    # The decision itself, in-process: a Manager-level change in a room of 100 members.
    state: dict[tuple[str, str], dict[str, Any]] = {
        ("m.room.member", f"@p{n}:bench.test"): {"membership": "join"} for n in range(100)
    }
    state |= {
        ("m.room.power_levels", ""): {"users": {"@manager:bench.test": 100}, "events": {}},
        ("m.space.parent", "!c:bench.test"): {"via": ["bench.test"]},
        ("m.room.name", ""): {"name": "Release train"},
        ("m.room.join_rules", ""): {"join_rule": "knock"},
    }
    view = Governed(
        "!r:bench.test", state, "@roomportal:bench.test", "!c:bench.test", "Engineering",
        in_scope=lambda user_id: True,
    )  # fmt: skip
    decisions = 2000
    started = time.perf_counter()
    for n in range(decisions):
        refusal(
            view,
            event_type="m.room.member",
            state_key=f"@x{n}:bench.test",
            content={"membership": "invite"},
            sender="@manager:bench.test",
        )
    each = (time.perf_counter() - started) / decisions
    print(f"the module's decision for one state event: {each * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
