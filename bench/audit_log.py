"""Benchmark: the audit log with a million entries, on SQLite or PostgreSQL.

Seeds N chained entries, then measures through the whole Django stack (test client:
middleware, view, template) the median time of the first page, a deep page and a
filtered page, and, in a fresh process, the CSV export's rows per second and peak
memory. Targets: pages under 50 ms, export at least 100,000 rows/s under 150 MB.

    .venv/bin/python bench/audit_log.py --db sqlite --rows 1000000
    .venv/bin/python bench/audit_log.py --db postgres --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
POSTGRES_ADMIN = "postgres://postgres@127.0.0.1:5432/test"
POSTGRES_BENCH = "postgres://postgres@127.0.0.1:5432/bench_audit"


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", "benchmark-only")
    import django

    django.setup()


def seed(rows: int) -> None:
    from django.utils import timezone

    from portal.audit.chain import seal
    from portal.models import AuditEntry

    actions = ["room.update", "room.create", "role.add.member", "auth.login", "room.privacy"]
    outcomes = ["succeeded"] * 17 + ["denied", "failed", "failed"]
    start = timezone.now() - timedelta(days=365)
    prev_hash, batch = "", []
    began = time.perf_counter()
    for n in range(rows):
        entry = AuditEntry(
            created_at=start + timedelta(seconds=n * 30),
            actor_username=f"@user{n % 500}:example.org",
            actor_chat_id=f"@user{n % 500}:example.org",
            action=actions[n % len(actions)],
            outcome=outcomes[n % len(outcomes)],
            target_kind="room",
            target_id=f"!room{n % 5000}:example.org",
            target_label=f"Room number {n % 5000}",
            category_id=f"!category{n % 20}:example.org",
            category_label=f"Category {n % 20}",
            before={"name": f"Room number {n % 5000}", "privacy": "closed"},
            after={"name": f"Room number {n % 5000}", "privacy": "open"},
            request_id=f"{n:032x}",
            client_ip="10.0.0.1",
            user_agent="Mozilla/5.0 (bench)",
        )
        seal(entry, prev_hash)
        prev_hash = entry.hash
        batch.append(entry)
        if len(batch) == 10_000:
            AuditEntry.objects.bulk_create(batch)
            batch = []
    if batch:
        AuditEntry.objects.bulk_create(batch)
    print(f"seeded {rows} entries in {time.perf_counter() - began:.0f} s", flush=True)


def median_ms(client: Any, url: str, params: dict[str, Any], repeat: int = 20) -> float:
    timings = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.get(url, params)
        timings.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.status_code
        assert b"<tbody>" in response.content, "the page is empty"
    return statistics.median(timings)


def measure_pages() -> dict[str, float]:
    from django.test import Client

    from accounts.models import User
    from portal.models import AuditEntry

    auditor, _ = User.objects.get_or_create(username="bench-auditor", defaults={"is_auditor": True})
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(auditor)
    oldest = AuditEntry.objects.order_by("id").values_list("id", flat=True).first() or 0
    return {
        "first page": median_ms(client, "/audit/", {}),
        "deep page": median_ms(client, "/audit/", {"before": oldest + 1_000}),
        "filtered page": median_ms(
            client, "/audit/", {"outcome": "failed", "action": "room.privacy"}
        ),
        "filtered deep page": median_ms(
            client, "/audit/", {"outcome": "denied", "before": oldest + 50_000}
        ),
    }


def export_child() -> None:
    """Runs in a fresh process: stream the whole log as CSV, report speed and peak memory."""
    import resource

    from portal.audit.export import csv_lines, jsonl_lines
    from portal.models import AuditEntry

    rows, results = AuditEntry.objects.count(), {}
    for name, lines in (("csv", csv_lines), ("jsonl", jsonl_lines)):
        began, size = time.perf_counter(), 0
        for chunk in lines(AuditEntry.objects.all()):
            size += len(chunk)
        results[name] = {"rows": rows, "seconds": time.perf_counter() - began, "bytes": size}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"formats": results, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--export-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.export_child:
        setup_django(args.database_url)
        export_child()
        return

    if args.db == "postgres":
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS bench_audit")
            admin.execute("CREATE DATABASE bench_audit")
        database_url = POSTGRES_BENCH
    else:
        database_url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-audit-')) / 'audit.db'}"
    setup_django(database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    seed(args.rows)
    if args.db == "postgres":
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE portal_auditentry")

    print(f"\n{args.db}, {args.rows} entries (median of 20, test client, full stack)")
    for name, ms in measure_pages().items():
        print(f"  {name:<20} {ms:7.1f} ms   (target < 50 ms)")
    child = subprocess.run(
        [sys.executable, __file__, "--export-child", "--database-url", database_url],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    for name, run in result["formats"].items():
        rate = run["rows"] / run["seconds"]
        print(
            f"  export {name:<13} {rate:9.0f} rows/s (target >= 100000), "
            f"{run['bytes'] / 1e6:.0f} MB in {run['seconds']:.1f} s"
        )
    print(f"  export peak memory   {result['peak_mb']:.0f} MB for both (target < 150 MB)")


if __name__ == "__main__":
    main()
