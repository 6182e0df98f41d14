"""Streaming the audit log out as CSV or JSON Lines.

The database writes each line (PostgreSQL with COPY, SQLite with string and JSON
functions), several times faster than Python's csv and json modules; memory stays flat
whatever the size, and entries come oldest first, as a file is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.models import QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.text import slugify

from portal.audit import audit_record
from portal.audit.filters import AuditFilterForm
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
BATCH = 10_000
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP's CSV
# injection): such CSV cells get a leading apostrophe. JSON Lines stay exact.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _neutralised(value: str, char_function: str) -> str:
    """SQL for a text value that a spreadsheet shows as text, never runs as a formula."""
    starts = ", ".join(
        f"{char_function}({ord(c)})" if c in "\t\r" else f"'{c}'" for c in FORMULA_STARTS
    )
    apostrophe = "''''"  # SQL for the one-character string '
    return (
        f"CASE WHEN substr({value}, 1, 1) IN ({starts}) "
        f"THEN {apostrophe} || {value} ELSE {value} END"
    )


def csv_lines(entries: QuerySet[AuditEntry]) -> Iterator[str | bytes]:
    if connection.vendor == "postgresql":
        yield from _postgres_csv(entries)
    else:
        yield ",".join(COLUMNS) + "\r\n"
        yield from _sqlite_lines(entries, _sqlite_csv_line(), "\r\n")


def jsonl_lines(entries: QuerySet[AuditEntry]) -> Iterator[str | bytes]:
    if connection.vendor == "postgresql":
        yield from _postgres_jsonl(entries)
    else:
        yield from _sqlite_lines(entries, _sqlite_json_line(), "\n")


# --- SQLite ------------------------------------------------------------------------------

# SQLite keeps UTC timestamps as "YYYY-MM-DD HH:MM:SS[.ffffff]"; exported as ISO 8601.
SQLITE_ISO = "replace(t.created_text, ' ', 'T') || '+00:00'"
SQLITE_RENAMED = {"created_at": "created_text", "before": "before_json", "after": "after_json"}


def _sqlite_csv_line() -> str:
    def field(column: str) -> str:
        if column == "id":
            return "t.id"
        value = SQLITE_ISO if column == "created_at" else f"t.{SQLITE_RENAMED.get(column, column)}"
        value = _neutralised(f"coalesce({value}, '')", "char")
        return f"""'"' || replace({value}, '"', '""') || '"'"""

    return " || ',' || ".join(field(c) for c in COLUMNS)


def _sqlite_json_line() -> str:
    def pair(column: str) -> str:
        if column == "created_at":
            return f"'created_at', {SQLITE_ISO}"
        if column in ("before", "after"):
            return f"'{column}', json(t.{column}_json)"
        return f"'{column}', t.{column}"

    return f"json_object({', '.join(pair(c) for c in COLUMNS)})"


def _sqlite_lines(entries: QuerySet[AuditEntry], line: str, end: str) -> Iterator[str]:
    """Lines built by SQLite over the filtered entries, a keyset batch at a time."""
    exported = (
        entries.order_by()
        .annotate(
            created_text=Cast("created_at", TextField()),
            before_json=Cast("before", TextField()),
            after_json=Cast("after", TextField()),
        )
        .values_list(*[SQLITE_RENAMED.get(c, c) for c in COLUMNS])
    )
    sql, params = exported.query.sql_with_params()
    statement = f"SELECT t.id, {line} FROM ({sql}) AS t WHERE t.id > %s ORDER BY t.id LIMIT %s"
    last_id = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(statement, (*params, last_id, BATCH))
            batch = cursor.fetchall()
            if not batch:
                return
            yield end.join(text for _, text in batch) + end
            last_id = batch[-1][0]


# --- PostgreSQL --------------------------------------------------------------------------


POSTGRES_RENAMED = {"created_at": "created_iso", "before": "before_json", "after": "after_json"}


def _postgres_select(
    entries: QuerySet[AuditEntry], *, json_as_text: bool
) -> tuple[str, tuple[Any, ...]]:
    """The export's SELECT, with ISO timestamps, for COPY to stream."""
    annotations: dict[str, RawSQL | Cast] = {
        "created_iso": RawSQL("to_json(created_at) #>> '{}'", [])
    }
    renamed = {"created_at": "created_iso"}
    if json_as_text:
        annotations |= {
            "before_json": Cast("before", TextField()),
            "after_json": Cast("after", TextField()),
        }
        renamed = POSTGRES_RENAMED
    exported = (
        entries.order_by("id")
        .annotate(**annotations)
        .values_list(*[renamed.get(c, c) for c in COLUMNS])
    )
    return exported.query.sql_with_params()


def _copy(statement: str, params: tuple[Any, ...]) -> Iterator[bytes]:
    with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
        for data in copy:
            yield bytes(data)


def _postgres_csv(entries: QuerySet[AuditEntry]) -> Iterator[str | bytes]:
    """PostgreSQL writes the CSV itself (COPY), several times faster than Python's csv."""
    sql, params = _postgres_select(entries, json_as_text=True)
    cells = ", ".join(
        "t.id" if c == "id" else _neutralised(f"t.{POSTGRES_RENAMED.get(c, c)}::text", "chr")
        for c in COLUMNS
    )
    yield ",".join(COLUMNS) + "\r\n"
    yield from _copy(
        f"COPY (SELECT {cells} FROM ({sql}) AS t ORDER BY t.id) TO STDOUT WITH (FORMAT csv)",
        params,
    )


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


def export_response(
    entries: QuerySet[AuditEntry], *, form: AuditFilterForm, fmt: str
) -> StreamingHttpResponse:
    """The entries as a streamed file named after its filters; the export is recorded."""
    content_type, lines = EXPORTS[fmt]
    audit_record(
        action="audit.export",
        target_kind="audit log",
        target_label=f"Export as {fmt.upper()}",
        after={"format": fmt, "filters": form.active},
    )
    parts = [f"{key}-{slugify(value)[:40]}" for key, value in sorted(form.active.items())]
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    filename = "_".join(["audit", stamp, *parts]) + f".{fmt}"
    response = StreamingHttpResponse(lines(entries), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


EXPORTS = {
    "csv": ("text/csv; charset=utf-8", csv_lines),
    "jsonl": ("application/x-ndjson; charset=utf-8", jsonl_lines),
}
