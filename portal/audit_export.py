"""Streaming the audit log out as CSV or JSON Lines, a batch at a time."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

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


def _batches(entries: QuerySet[AuditEntry]) -> Iterator[list[tuple]]:
    """Every matching entry, oldest first, read by keyset so memory stays flat.

    The ORM writes the SQL, but rows come straight from the cursor: Django's per-row
    converters (decoding JSON only to encode it again, parsing timestamps) were most of
    the export's time. `before` and `after` are exported as the JSON text stored.
    """
    entries = entries.order_by().annotate(
        before_json=Cast("before", TextField()), after_json=Cast("after", TextField())
    )
    raw_columns = {"before": "before_json", "after": "after_json"}
    if connection.vendor == "sqlite":
        # SQLite keeps timestamps as text already: read it as text, skip the parsing.
        entries = entries.annotate(created_text=Cast("created_at", TextField()))
        raw_columns["created_at"] = "created_text"
    fields = [raw_columns.get(c, c) for c in COLUMNS]
    last_id = 0
    with connection.cursor() as cursor:
        while True:
            page = entries.filter(id__gt=last_id).order_by("id").values_list(*fields)[:BATCH]
            sql, params = page.query.sql_with_params()
            cursor.execute(sql, params)
            batch = cursor.fetchall()
            if not batch:
                return
            yield [(row[0], _iso(row[1]), *row[2:]) for row in batch]
            last_id = batch[-1][0]


def _iso(value: datetime | str) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    # SQLite keeps UTC timestamps as "YYYY-MM-DD HH:MM:SS[.ffffff]".
    return value.replace(" ", "T") + "+00:00"


def csv_lines(entries: QuerySet[AuditEntry]) -> Iterator[str | bytes]:
    if connection.vendor == "postgresql":
        yield from _postgres_csv(entries)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for batch in _batches(entries):
        writer.writerows(batch)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _postgres_select(entries: QuerySet[AuditEntry], *, json_as_text: bool) -> tuple[str, tuple]:
    """The export's SELECT, with ISO timestamps, for COPY to stream."""
    annotations = {"created_iso": RawSQL("to_json(created_at) #>> '{}'", [])}
    renamed = {"created_at": "created_iso"}
    if json_as_text:
        annotations |= {
            "before_json": Cast("before", TextField()),
            "after_json": Cast("after", TextField()),
        }
        renamed |= {"before": "before_json", "after": "after_json"}
    exported = (
        entries.order_by("id")
        .annotate(**annotations)
        .values_list(*[renamed.get(c, c) for c in COLUMNS])
    )
    return exported.query.sql_with_params()


def _copy(statement: str, params: tuple) -> Iterator[bytes]:
    with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
        for data in copy:
            yield bytes(data)


def _postgres_csv(entries: QuerySet[AuditEntry]) -> Iterator[str | bytes]:
    """PostgreSQL writes the CSV itself (COPY), several times faster than Python's csv."""
    sql, params = _postgres_select(entries, json_as_text=True)
    yield ",".join(COLUMNS) + "\r\n"
    yield from _copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params)


def _postgres_jsonl(entries: QuerySet[AuditEntry]) -> Iterator[bytes]:
    """PostgreSQL builds each JSON line. COPY's CSV mode, with control characters as
    quote and delimiter (JSON text never holds them raw), passes each line unchanged."""
    sql, params = _postgres_select(entries, json_as_text=False)
    fields = ", ".join(f"'{c}', t.{'created_iso' if c == 'created_at' else c}" for c in COLUMNS)
    yield from _copy(
        f"COPY (SELECT json_build_object({fields}) FROM ({sql}) AS t) TO STDOUT "
        "WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')",
        params,
    )


def jsonl_lines(entries: QuerySet[AuditEntry]) -> Iterator[str | bytes]:
    if connection.vendor == "postgresql":
        yield from _postgres_jsonl(entries)
        return
    scalars = [i for i, c in enumerate(COLUMNS) if c not in ("before", "after")]
    names = [COLUMNS[i] for i in scalars]
    before, after, ip = COLUMNS.index("before"), COLUMNS.index("after"), COLUMNS.index("client_ip")
    for batch in _batches(entries):
        lines = []
        for row in batch:
            values = [row[i] for i in scalars]
            if row[ip] is not None:
                values[names.index("client_ip")] = str(row[ip])
            encoded = json.dumps(dict(zip(names, values, strict=True)), ensure_ascii=False)
            # The stored JSON values are spliced in as they are.
            lines.append(
                f'{encoded[:-1]}, "before": {row[before] or "null"}, '
                f'"after": {row[after] or "null"}}}\n'
            )
        yield "".join(lines)
