"""A change to thousands of rooms through the API, as a script makes it, with the sync
worker killed part-way: does every room, and its audit entry, end up true?

Against the portal as `make run` serves it (gunicorn, embedded Synapse with the portal's
module, the supervised sync worker and job runner, SQLite), with a category of --rooms rooms:

1. the what-if (`POST /api/v1/rooms/bulk?dry_run=true&background=true`), polled to its
   end: every room "would change", none changed;
2. the change in the background (`background=true`), polled; once a third is done the
   job runner carrying it out is killed (SIGKILL) and `runportal` starts it again;
3. Retry (`POST /api/v1/operations/{id}/retry`) when it ended unfinished;
4. every room read back from the homeserver (not the index), and its `room.update` audit
   entries counted (once no room change cut off by the kill is left running): exactly one
   that succeeded for each room, none that says otherwise; the audit chain verified.

    .venv/bin/python bench/bulk_change.py --rooms 5000
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import manage, single  # the portal as `make run` serves it

MAKE_ROOMS = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from django.db import close_old_connections
from rooms.backend.records import Privacy, RoomSettings
from rooms.index import chat_backend
client = chat_backend()
category = next((c for c in client.list_categories() if c.name == "Bulk bench"), None)
if category is None:
    category = client.create_category(name="Bulk bench", description="bench/bulk_change.py")
have = {r.name for r in client.get_rooms(category.room_ids)}
def make(n):
    close_old_connections()
    name = f"Bulk room {n:05d}"
    if name not in have:
        chat_backend().create_room(RoomSettings(name, "Before", category.id, Privacy.CLOSED))
    return n
with ThreadPoolExecutor(4) as pool:
    for n in pool.map(make, range(%(rooms)d)):
        if n %% 250 == 0:
            print(f"  {n} rooms made", file=sys.stderr, flush=True)
print(json.dumps(sorted(chat_backend().get_category(category.id).room_ids)))
"""

CHECK = """
import json
from collections import Counter
from portal.models import AuditEntry
from rooms.index import chat_backend
rooms = json.load(open(%(rooms_file)r))
wanted = %(description)r
server = chat_backend().server
on_server = Counter(server.get_room(r).settings.description == wanted for r in rooms)
entries = AuditEntry.objects.filter(action="room.update", target_id__in=rooms)
def described(after):
    # A change made by the page's path, or finished by the job runner (its operation's
    # change: the settings it sets).
    after = after or {}
    return after.get("description", (after.get("settings") or {}).get("description"))
succeeded = Counter(
    e.target_id for e in entries if e.outcome == "succeeded" and described(e.after) == wanted
)
other = Counter(f"{e.outcome}" for e in entries if e.outcome != "succeeded")
print(json.dumps({
    "changed on the homeserver": on_server[True],
    "not changed on the homeserver": on_server[False],
    "rooms with one succeeded entry": sum(1 for r in rooms if succeeded[r] == 1),
    "rooms with none": sum(1 for r in rooms if succeeded[r] == 0),
    "rooms with more than one": sum(1 for r in rooms if succeeded[r] > 1),
    "entries with another outcome": dict(other),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rooms", type=int, default=5000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-bulk-change-"))
    with single(workdir) as (url, env, procs):
        started = time.monotonic()
        print(f"Making {args.rooms} rooms in the category “Bulk bench”…", flush=True)
        made = manage(env, "shell", "-c", MAKE_ROOMS % {"rooms": args.rooms})
        rooms = json.loads(made.strip().splitlines()[-1])
        print(f"{len(rooms)} rooms made in {time.monotonic() - started:.0f} s", flush=True)
        rooms_file = workdir / "rooms.json"
        rooms_file.write_text(json.dumps(rooms))
        token = manage(
            env, "create_token", "admin", "--name", "bench", "--scope", "write", "--days", "1"
        ).split()[-1]
        description = f"Changed by the bench at {time.time():.0f}"
        body = {"rooms": rooms, "change": {"description": description}}
        with httpx.Client(
            base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120
        ) as api:
            what_if = api.post(
                "/rooms/bulk", params={"dry_run": "true", "background": "true"}, json=body
            )
            assert what_if.status_code == 202, what_if.text[:500]
            op, took = follow(api, what_if.json()["operation"])
            results = every_result(api, op["id"])
            print(
                f"what-if: {took:.0f} s, {count(results)}; on the homeserver now: "
                f"{check(env, rooms_file, description)['changed on the homeserver']} changed",
                flush=True,
            )

            change = api.post("/rooms/bulk", params={"background": "true"}, json=body)
            assert change.status_code == 202, change.text[:500]
            operation = change.json()["operation"]
            op, took = follow(api, operation, kill_at=len(rooms) // 3, runportal=procs["runportal"])
            print(f"change: {took:.0f} s, {op['status']}, {op['error'] or 'no error'}", flush=True)
            if op["status"] == "unfinished":
                retried = api.post(f"/operations/{operation}/retry")
                assert retried.status_code == 200, retried.text
                op, took = follow(api, operation)
                print(f"retry: {took:.0f} s, {op['status']}", flush=True)
            print(f"results: {count(every_result(api, operation))}", flush=True)
            # A room whose change the kill cut off after the homeserver took it is finished,
            # and audited, by the job runner once left for 90 s (operations.ABANDONED_AFTER).
            started = time.monotonic()
            while running := api.get(
                "/operations", params={"status": "running", "kind": "room.update"}
            ).json()["count"]:
                print(f"  {running} room changes cut off by the kill, waiting", flush=True)
                time.sleep(10)
            print(f"no room change left running after {time.monotonic() - started:.0f} s")
        print(json.dumps(check(env, rooms_file, description), indent=2), flush=True)
        print(manage(env, "verify_audit_chain").strip().splitlines()[-1], flush=True)


def follow(
    api: httpx.Client, operation: str, *, kill_at: int = 0, runportal: int = 0
) -> tuple[dict[str, Any], float]:
    """Poll an operation to its end (results not read: `results_limit=1`); with
    `kill_at`, kill the job runner once that many rooms are done."""
    started, last = time.monotonic(), -1
    while True:
        op = api.get(f"/operations/{operation}", params={"results_limit": 1}).json()
        if op["done"] != last and op["done"] % 500 < 20:
            print(f"  {op['done']} of {op['total']} at {time.monotonic() - started:.0f} s")
            last = op["done"]
        if kill_at and op["done"] >= kill_at:
            worker = job_runner(runportal)
            os.kill(worker, signal.SIGKILL)
            print(f"  job runner {worker} killed at {op['done']} of {op['total']}", flush=True)
            kill_at = 0
        if op["status"] != "running":
            return op, time.monotonic() - started
        time.sleep(1)


def job_runner(runportal: int) -> int:
    children = subprocess.run(["pgrep", "-P", str(runportal)], capture_output=True, text=True)
    for pid in children.stdout.split():
        if "run_jobs" in Path(f"/proc/{pid}/cmdline").read_text():
            return int(pid)
    raise SystemExit("No job runner is running under runportal.")


def every_result(api: httpx.Client, operation: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    while True:
        page = api.get(
            f"/operations/{operation}",
            params={"results_from": len(results), "results_limit": 1000},
        ).json()["results"]
        if not page:
            return results
        results += page


def count(results: list[dict[str, Any]]) -> str:
    tally: dict[str, int] = {}
    for result in results:
        tally[result["result"]] = tally.get(result["result"], 0) + 1
    return ", ".join(f"{n} {what}" for what, n in sorted(tally.items()))


def check(env: dict[str, str], rooms_file: Path, description: str) -> dict[str, Any]:
    found = manage(
        env, "shell", "-c", CHECK % {"rooms_file": str(rooms_file), "description": description}
    )
    return dict(json.loads(found.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
