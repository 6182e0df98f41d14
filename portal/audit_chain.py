"""Tamper evidence for the audit log: a hash chain, its verification, and retention.

Each entry's hash is SHA-256 over a canonical JSON of all its recorded fields and the
previous entry's hash. Editing a row changes its hash; deleting or inserting one breaks
the link to its neighbour. Retention removes old entries only after exporting them,
and leaves a checkpoint entry naming the last removed hash, so the rest still verifies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from portal.models import AuditEntry

# Every recorded field but the id and the hashes. The id needs no hash: the chain runs in
# id order, so moving a row breaks its links to its neighbours.
HASHED_FIELDS = (
    "created_at",
    "actor_id",
    "actor_username",
    "actor_chat_id",
    "action",
    "target_kind",
    "target_id",
    "target_label",
    "category_id",
    "category_label",
    "before",
    "after",
    "outcome",
    "error",
    "request_id",
    "client_ip",
    "user_agent",
)
CHECKPOINT_ACTION = "audit.checkpoint"
_ADVISORY_LOCK_KEY = 0x617564697400  # "audit": one writer extends the chain at a time
_local_lock = threading.Lock()


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def entry_hash(values: dict[str, Any], prev_hash: str) -> str:
    """The hash of one entry, from its field values and its predecessor's hash."""
    record = {field: _plain(values.get(field)) for field in HASHED_FIELDS}
    record["prev_hash"] = prev_hash
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@contextlib.contextmanager
def chain_writer() -> Iterator[str]:
    """Hold the chain for one append; yields the hash of the newest entry."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
            last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
            yield last or ""
        else:
            # SQLite serialises writers per database; this orders the threads of one
            # process between reading the last hash and appending.
            with _local_lock:
                last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
                yield last or ""


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    checked: int
    breaks: list[ChainBreak]

    @property
    def intact(self) -> bool:
        return not self.breaks


def _iter_values(batch: int) -> Iterator[dict[str, Any]]:
    last_id = 0
    fields = ("id", *HASHED_FIELDS, "prev_hash", "hash")
    while True:
        rows = list(
            AuditEntry.objects.filter(id__gt=last_id).order_by("id").values(*fields)[:batch]
        )
        if not rows:
            return
        yield from rows
        last_id = rows[-1]["id"]


def verify_chain(*, batch: int = 5000, limit_breaks: int = 20) -> ChainReport:
    """Walk the whole log in order and report where the chain breaks, and how."""
    checkpoint = (
        AuditEntry.objects.filter(action=CHECKPOINT_ACTION).order_by("-id").values("after").first()
    )
    # After retention the oldest remaining entry links to the last removed one.
    expected_prev = (checkpoint or {}).get("after", {}).get("through_hash", "") or ""
    breaks: list[ChainBreak] = []
    checked = 0
    for values in _iter_values(batch):
        checked += 1
        if values["prev_hash"] != expected_prev:
            breaks.append(
                ChainBreak(
                    values["id"],
                    "Does not follow the entry before it: an entry was removed or inserted "
                    "just before this one.",
                )
            )
        if entry_hash(values, values["prev_hash"]) != values["hash"]:
            breaks.append(
                ChainBreak(values["id"], "Its contents were changed after it was written.")
            )
        expected_prev = values["hash"]
        if len(breaks) >= limit_breaks:
            break
    return ChainReport(checked, breaks)


def remove_older_than(cutoff: datetime, *, export_to: Path) -> int:
    """Export entries older than the cutoff to a JSON Lines file, remove them, checkpoint.

    Returns how many were removed. The export is written and flushed before anything is
    removed; nothing is removed when nothing is older than the cutoff.
    """
    from portal.audit import audit_record
    from portal.audit_export import jsonl_lines

    newest = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first()
    # The newest entry always stays, so the checkpoint written next links to it.
    old = AuditEntry.objects.filter(created_at__lt=cutoff, id__lt=newest or 0)
    through = old.order_by("-id").values("id", "hash").first()
    if through is None:
        return 0
    # Earlier checkpoints go too (they are in the export): the new one supersedes them.
    selected = AuditEntry.objects.filter(id__lte=through["id"])
    with export_to.open("wb") as out:
        for chunk in jsonl_lines(selected.order_by("id")):
            out.write(chunk if isinstance(chunk, bytes) else chunk.encode())
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL portal.audit_retention = 'on'")
        cursor.execute("DELETE FROM portal_auditentry WHERE id <= %s", [through["id"]])
        removed = cursor.rowcount
    audit_record(
        action=CHECKPOINT_ACTION,
        target_kind="audit log",
        target_label=f"Entries up to {through['id']} removed by retention",
        after={
            "through_id": through["id"],
            "through_hash": through["hash"],
            "removed": removed,
            "cutoff": cutoff.isoformat(),
            "exported_to": str(export_to),
        },
    )
    return removed
