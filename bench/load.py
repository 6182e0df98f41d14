"""Load benchmark with wrk: the portal served as `make run` serves it (gunicorn, embedded
Synapse, SQLite) and scaled out (`manage.py scaleout`: Synapse on PostgreSQL with two
workers behind nginx, two portal processes behind nginx, PostgreSQL, Redis).

For each set-up, 60 s each (--duration): the room page, My rooms, the categories page,
and a write mix (20 Managers each disabling and enabling their own room). With --fault
(scaled only), a run of the room page during which one portal process, then one Synapse
worker, is killed.

    .venv/bin/python bench/load.py --setup single
    .venv/bin/python bench/load.py --setup scaled --fault

Needs wrk and nginx (Debian's packages) and, for the scaled set-up, PostgreSQL and Redis
on their usual local ports.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MANAGERS = 20

PREPARE = """
import json
from rooms.backend.records import Privacy, RoomSettings
from rooms.index import chat_backend
client = chat_backend()
category = next(c for c in client.list_categories() if c.name == "Engineering")
people = []
for n in range(%(count)d):
    person = client.ensure_user(f"loadmanager{n}", password="load-pass", display_name=f"M {n}")
    client.add_to_category_scope(category.id, [person.id])
    name = f"Load room {n}"
    held = [r for r in client.get_rooms(category.room_ids) if r.name == name]
    room = held[0] if held else client.create_room(
        RoomSettings(name, "Load benchmark", category.id, Privacy.CLOSED),
        managers=[person.id], members=[person.id])
    people.append({"user": f"loadmanager{n}", "password": "load-pass", "room": room.id})
print(json.dumps(people))
"""

WRITE_MIX = """
-- Each wrk thread is one Manager, disabling and enabling their own room in turn.
local managers = %(managers)s
local counter = 0
local me = nil
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  me = managers[id]
end
function request()
  counter = counter + 1
  local body = "csrfmiddlewaretoken=" .. me.csrf
  if counter %% 2 == 0 then body = body .. "&enable=on" end
  return wrk.format("POST", "/rooms/" .. me.room .. "/disable/", {
    ["Cookie"] = "sessionid=" .. me.session .. "; csrftoken=" .. me.csrf,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, body)
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--setup", choices=["single", "scaled"], required=True)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--fault", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-load-{args.setup}-"))
    with single(workdir) if args.setup == "single" else scaled(workdir) as (url, env, procs):
        managers = json.loads(
            manage(env, "shell", "-c", PREPARE % {"count": MANAGERS}).strip().splitlines()[-1]
        )
        carol = login(url, "carol", "carol-demo-pass")
        room = managers[0]["room"]
        sessions = [login(url, m["user"], m["password"]) | {"room": m["room"]} for m in managers]
        cookie = f"sessionid={carol['session']}"
        pages = [
            ("room page", f"/rooms/{room}/"),
            ("My rooms", "/rooms/"),
            ("categories page", "/categories/"),
        ]
        # Unmeasured: every worker process and thread opens its database connection and
        # compiles the templates once, which the first scenario would otherwise pay for.
        for _, path in pages:
            wrk(url + path, argparse.Namespace(**vars(args) | {"duration": 5}), cookie=cookie)
        print(f"| {args.setup} | requests/s | p50 ms | p99 ms | errors |")
        print("| --- | --- | --- | --- | --- |")
        for name, path in pages:
            print(report(name, wrk(url + path, args, cookie=cookie)), flush=True)
        script = workdir / "writes.lua"
        script.write_text(WRITE_MIX % {"managers": lua_table(sessions)})
        writes = wrk(url + "/", args, script=script, threads=MANAGERS, connections=MANAGERS)
        print(report("write mix (20 Managers)", writes), flush=True)
        if args.fault and args.setup == "scaled":
            faults, takeover = fault_run(url + f"/rooms/{room}/", args, cookie, procs, env)
            print(report("room page, one portal process and one Synapse worker killed", faults))
            print(f"The surviving sync worker led {takeover:.1f} s after the leader was killed.")


def manage(env: dict[str, str], *command: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(done.stderr)
    return done.stdout


@contextmanager
def single(workdir: Path) -> Iterator[tuple[str, dict[str, str], dict[str, Any]]]:
    port = free_port()
    env = clean_env() | {
        "PORTAL_STATE_DIR": str(workdir / "state"),
        "CHAT_EMBEDDED_PORT": str(free_port()),
        "STATIC_ROOT": str(workdir / "static"),
    }
    manage(env, "migrate", "--no-input", "-v0")
    log = workdir / "portal.log"  # what the errors counted were: read it after the run
    print(f"The portal's log: {log}", flush=True)
    process = subprocess.Popen(
        [PYTHON, "manage.py", "runportal", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_live(url)
        yield url, env, {"runportal": process.pid}
    finally:
        process.terminate()
        process.wait(timeout=60)


@contextmanager
def scaled(workdir: Path) -> Iterator[tuple[str, dict[str, str], dict[str, Any]]]:
    name = f"load_{uuid.uuid4().hex[:6]}"
    port, a, b = free_port(), free_port(), free_port()
    synapse_port = free_port() + 20
    process = subprocess.Popen(
        [
            PYTHON,
            "manage.py",
            "scaleout",
            "--dir",
            str(workdir / "scaleout"),
            "--name",
            name,
            "--port",
            str(port),
            "--portal-ports",
            f"{a},{b}",
            "--synapse-port",
            str(synapse_port),
            "--seed",
        ],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        while process.stdout is not None:
            line = process.stdout.readline()
            if "Scaled-out set-up running" in line:
                break
            if not line and process.poll() is not None:
                sys.exit("The scaled-out set-up did not start.")
        env = clean_env() | dict(
            line.split("=", 1)
            for line in (workdir / "scaleout" / "portal1.env").read_text().splitlines()
        )
        # Keep reading its output, so it never blocks on a full pipe.
        subprocess.Popen(["cat"], stdin=process.stdout, stdout=subprocess.DEVNULL)
        yield f"http://127.0.0.1:{port}", env, {"portal": a}
    finally:
        process.terminate()
        process.wait(timeout=60)
        import psycopg

        with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            for database in (f"{name}_portal", f"{name}_synapse"):
                c.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def fault_run(
    url: str, args: argparse.Namespace, cookie: str, procs: dict[str, Any], env: dict[str, str]
) -> tuple[dict[str, Any], float]:
    """The room page under load; a third of the way in, portal process A (its gunicorn)
    and the sync worker that leads are killed; two thirds in, a Synapse generic worker.
    Returns wrk's result and how long the surviving sync worker took to lead."""
    run = subprocess.Popen(wrk_command(url, args, cookie=cookie), stdout=subprocess.PIPE, text=True)
    time.sleep(args.duration / 3)
    master = pid_listening(procs["portal"])
    if master:
        kill_tree(master)
    leader = current_leader(env)
    os.kill(int(leader.rsplit(":", 1)[1]), signal.SIGKILL)
    killed = time.monotonic()
    while current_leader(env) in ("", leader) and time.monotonic() - killed < 60:
        time.sleep(0.2)
    takeover = time.monotonic() - killed
    time.sleep(max(0.0, args.duration / 3 - takeover))
    worker = pid_of("generic1.yaml")
    if worker:
        os.kill(worker, signal.SIGKILL)
    out, _ = run.communicate()
    return parse(out), takeover


def current_leader(env: dict[str, str]) -> str:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        row = conn.execute(
            "SELECT leader FROM rooms_indexstream WHERE lease_until > now()"
        ).fetchone()
    return row[0] if row else ""


def kill_tree(pid: int) -> None:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    for child in [int(p) for p in children.stdout.split()]:
        os.kill(child, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


def pid_listening(port: int) -> int:
    found = subprocess.run(
        ["pgrep", "-f", f"gunicorn portal.wsgi --bind 127.0.0.1:{port}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    return min(int(p) for p in found) if found else 0


def pid_of(pattern: str) -> int:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return int(found.stdout.split()[0]) if found.stdout.split() else 0


def wrk_command(
    url: str,
    args: argparse.Namespace,
    *,
    cookie: str = "",
    script: Path | None = None,
    threads: int = 2,
    connections: int | None = None,
) -> list[str]:
    command = [
        "wrk",
        "--latency",
        "-t",
        str(threads),
        "-c",
        str(connections or args.connections),
        "-d",
        f"{args.duration}s",
        "--timeout",
        "10s",
    ]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    if script:
        command += ["-s", str(script)]
    return [*command, url]


def wrk(url: str, args: argparse.Namespace, **options: Any) -> dict[str, Any]:
    done = subprocess.run(wrk_command(url, args, **options), capture_output=True, text=True)
    return parse(done.stdout)


def parse(out: str) -> dict[str, Any]:
    def number(pattern: str) -> float:
        found = re.search(pattern, out)
        return float(found.group(1)) if found else 0.0

    def millis(label: str) -> float:
        found = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        if not found:
            return 0.0
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = number(r"Non-2xx or 3xx responses: (\d+)")
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket:
        errors += sum(int(g) for g in socket.groups())
    return {
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "p50": millis("50"),
        "p99": millis("99"),
        "errors": int(errors),
        "requests": int(number(r"(\d+) requests in")),
    }


def report(name: str, result: dict[str, Any]) -> str:
    return (
        f"| {name} | {result['rps']:.0f} | {result['p50']:.1f} | {result['p99']:.1f} | "
        f"{result['errors']} of {result['requests']} |"
    )


def login(url: str, username: str, password: str) -> dict[str, str]:
    with httpx.Client(base_url=url, timeout=30) as http:
        page = http.get("/accounts/login/").text
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if found is None:
            sys.exit("The login page has no CSRF token.")
        token = found.group(1)
        answer = http.post(
            "/accounts/login/",
            data={"csrfmiddlewaretoken": token, "username": username, "password": password},
        )
        if answer.status_code != 302:
            sys.exit(f"{username} could not log in: {answer.status_code}")
        http.get("/rooms/")  # a fresh CSRF cookie for the session
        return {"session": http.cookies["sessionid"], "csrf": http.cookies["csrftoken"]}


def lua_table(sessions: list[dict[str, str]]) -> str:
    rows = ", ".join(
        "{{session={}, csrf={}, room={}}}".format(
            json.dumps(s["session"]), json.dumps(s["csrf"]), json.dumps(s["room"])
        )
        for s in sessions
    )
    return "{" + rows + "}"


def clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHAT_", "DEBUG", "DATABASE_URL", "PORTAL_STATE_DIR"))
    } | {"LOG_LEVEL": "WARNING"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_live(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/live", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit(f"{url} did not start.")


if __name__ == "__main__":
    main()
