"""Audit writes are never lost: several processes appending at once all get in, and the
chain they build verifies. Run on a file database of the suite's own kind (SQLite, or a
scratch database on the suite's PostgreSQL server)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

PROCESSES, WRITES = 4, 200

WRITER = """
import django, sys
django.setup()
from portal.audit import audit_record
for n in range(int(sys.argv[1])):
    audit_record(action="room.update", target_kind="room", target_id=f"!r{n}",
                 before={"n": n}, after={"n": n + 1})
"""
CHECKER = """
import django, json
django.setup()
from portal.audit.chain import verify_chain
from portal.models import AuditEntry
report = verify_chain()
print(json.dumps({"entries": AuditEntry.objects.count(), "intact": report.intact,
                  "breaks": [b.reason for b in report.breaks]}))
"""


def run(script: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_writers_lose_nothing_and_the_chain_holds(scratch_portal):
    writers = [run(WRITER, str(WRITES), env=scratch_portal) for _ in range(PROCESSES)]
    for writer in writers:
        _, errors = writer.communicate(timeout=300)
        assert writer.returncode == 0, errors
    checker = run(CHECKER, env=scratch_portal)
    out, errors = checker.communicate(timeout=120)
    assert checker.returncode == 0, errors
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"entries": PROCESSES * WRITES, "intact": True, "breaks": []}
