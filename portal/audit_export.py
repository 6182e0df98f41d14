"""Streaming the audit log out as CSV or JSON Lines, a batch at a time."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from django.db.models import QuerySet

from portal.models import AuditEntry

COLUMNS = (
    "id",
    "created_at",
    "actor_username",
    "actor_chat_id",
    "action",
    "outcome",
    "target_kind",
    "target_id",
    "target_label",
    "category_id",
    "category_label",
    "before",
    "after",
    "error",
    "request_id",
    "client_ip",
    "user_agent",
    "prev_hash",
    "hash",
)
BATCH = 5000


def _rows(entries: QuerySet[AuditEntry]) -> Iterator[tuple]:
    """Every matching entry, oldest first, read by keyset so memory stays flat."""
    last_id = 0
    entries = entries.order_by()
    while True:
        batch = list(entries.filter(id__gt=last_id).order_by("id").values_list(*COLUMNS)[:BATCH])
        if not batch:
            return
        yield from batch
        last_id = batch[-1][0]


def csv_lines(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for count, row in enumerate(_rows(entries), start=1):
        values = list(row)
        values[1] = values[1].isoformat()
        values[11] = json.dumps(values[11]) if values[11] is not None else ""
        values[12] = json.dumps(values[12]) if values[12] is not None else ""
        writer.writerow(values)
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def jsonl_lines(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    chunk = []
    for row in _rows(entries):
        record = dict(zip(COLUMNS, row, strict=True))
        record["created_at"] = record["created_at"].isoformat()
        chunk.append(json.dumps(record, ensure_ascii=False))
        if len(chunk) == 500:
            yield "\n".join(chunk) + "\n"
            chunk = []
    if chunk:
        yield "\n".join(chunk) + "\n"
