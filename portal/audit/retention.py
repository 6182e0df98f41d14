"""Retention: the one way audit entries are ever removed.

Old entries are exported, then removed, and a checkpoint entry names the last removed
hash so the rest still verifies. The database refuses every other DELETE:
- PostgreSQL lets a row go only when the DELETE runs as the role
  `portal_audit_retention`, which only the SECURITY DEFINER function
  `portal_audit_remove_through` (owned by that role) does; no setting a session can
  change opens the table.
- SQLite asks the function `portal_audit_retention_allowed()`, which exists only on
  the portal's own connections and answers yes only inside `retention_permitted()`;
  any other program's DELETE fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from portal.audit import audit_record
from portal.audit.chain import CHECKPOINT_ACTION
from portal.audit.export import jsonl_lines
from portal.models import AuditEntry

SQLITE_GUARD_FUNCTION = "portal_audit_retention_allowed"
_permitted: ContextVar[bool] = ContextVar("audit_retention_permitted", default=False)


@contextlib.contextmanager
def retention_permitted() -> Iterator[None]:
    """Inside this block, this thread's SQLite DELETEs of audit entries are let through."""
    token = _permitted.set(True)
    try:
        yield
    finally:
        _permitted.reset(token)


def register_sqlite_guard(sender: Any, connection: Any, **kwargs: Any) -> None:
    """On each new SQLite connection of the portal: the function the DELETE trigger asks."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            SQLITE_GUARD_FUNCTION, 0, lambda: int(_permitted.get()), deterministic=False
        )


def _remove_through(through_id: int) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT portal_audit_remove_through(%s)", [through_id])
            return int(cursor.fetchone()[0])
        with retention_permitted():
            cursor.execute("DELETE FROM portal_auditentry WHERE id <= %s", [through_id])
            return int(cursor.rowcount)


def remove_older_than(cutoff: datetime, *, export_to: Path) -> int:
    """Export entries older than the cutoff to a JSON Lines file, remove them, checkpoint.

    Returns how many were removed. The export is written and flushed before anything is
    removed; nothing is removed when nothing is older than the cutoff.
    """
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
    removed = _remove_through(through["id"])
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
