"""Tamper evidence for the audit log: a keyed hash chain, anchors kept outside the table,
and verification against both.

Each entry's hash is an HMAC-SHA-256, with a key kept outside the database (settings,
named by a key ID so keys can be rotated), over a canonical JSON of all its recorded
fields and the previous entry's hash. Editing a row changes its hash; deleting or
inserting one breaks the link to its neighbour; and without the key nobody can
re-hash the rest to hide it. After each committed entry the head of the chain is
*anchored*: a signed line in a file an operator can ship elsewhere, and in the log.
Verify checks the chain against the newest anchor, so removing the newest entries
(truncation) is found too.

Entries written before keys existed (empty key ID) were hashed with plain SHA-256;
they still verify, but an unkeyed entry after a keyed one is a break (a downgrade).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from portal.models import AuditEntry

log = logging.getLogger("portal.audit.anchor")

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
# Hashed when set, so entries written before it existed keep their hashes.
OPTIONAL_FIELDS = ("via",)
CHECKPOINT_ACTION = "audit.checkpoint"
_ADVISORY_LOCK_KEY = 0x617564697400  # "audit": one writer extends the chain at a time


class UnknownChainKey(Exception):
    """An entry or anchor names a key ID that is not configured."""


def _key(key_id: str) -> bytes:
    try:
        return settings.AUDIT_CHAIN_KEYS[key_id].encode()
    except KeyError:
        raise UnknownChainKey(key_id) from None


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def entry_hash(values: dict[str, Any], prev_hash: str, key_id: str = "") -> str:
    """The hash of one entry, from its field values, its predecessor's hash and its key."""
    record = {field: _plain(values.get(field)) for field in HASHED_FIELDS}
    record |= {field: values[field] for field in OPTIONAL_FIELDS if values.get(field)}
    record["prev_hash"] = prev_hash
    if key_id:
        record["key_id"] = key_id
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if not key_id:
        return hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(_key(key_id), canonical.encode(), hashlib.sha256).hexdigest()


def seal(entry: AuditEntry, prev_hash: str) -> None:
    """Link a new entry to the chain with the current key."""
    entry.prev_hash = prev_hash
    entry.key_id = settings.AUDIT_CHAIN_KEY_ID
    values = {f: getattr(entry, f) for f in (*HASHED_FIELDS, *OPTIONAL_FIELDS)}
    entry.hash = entry_hash(values, prev_hash, entry.key_id)


@contextlib.contextmanager
def chain_writer() -> Iterator[str]:
    """Hold the chain for one append; yields the hash of the newest entry.

    The new head is anchored once the append is committed.
    """
    with transaction.atomic():
        # The lock is held until the transaction commits, so no other writer reads the
        # same last hash. PostgreSQL: an advisory lock for the transaction. SQLite: its
        # transactions begin IMMEDIATE (settings), taking the database's write lock.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
        last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
        yield last or ""


# --- anchors -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """The head of the chain at one moment, signed with a chain key."""

    entry_id: int
    hash: str
    at: str
    key_id: str
    signature: str = ""

    def _message(self) -> bytes:
        return f"anchor:{self.entry_id}:{self.hash}:{self.at}:{self.key_id}".encode()

    def signed(self) -> Anchor:
        signature = hmac.new(_key(self.key_id), self._message(), hashlib.sha256).hexdigest()
        return Anchor(self.entry_id, self.hash, self.at, self.key_id, signature)

    @property
    def genuine(self) -> bool:
        try:
            return hmac.compare_digest(self.signed().signature, self.signature)
        except UnknownChainKey:
            return False

    def line(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def anchor(entry: AuditEntry) -> Anchor:
    """Write the chain's head, as of this committed entry, to the anchor file and the log."""
    mark = Anchor(
        entry.pk, entry.hash, timezone.now().isoformat(), settings.AUDIT_CHAIN_KEY_ID
    ).signed()
    path = Path(settings.AUDIT_ANCHOR_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as out:
        out.write(mark.line() + "\n")
    log.info("audit anchor %s", mark.line())
    return mark


def anchor_on_commit(entry: AuditEntry) -> None:
    """Anchor the entry once its transaction commits (never an entry rolled back)."""
    transaction.on_commit(lambda: anchor(entry))


def read_anchors(path: Path | None = None) -> tuple[Anchor | None, list[int]]:
    """The newest genuine anchor in the file, and the line numbers of forged ones."""
    path = Path(path or settings.AUDIT_ANCHOR_FILE)
    newest: Anchor | None = None
    forged: list[int] = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return None, []
    for number, line in enumerate(lines, start=1):
        try:
            mark = Anchor(**json.loads(line))
        except (ValueError, TypeError):
            forged.append(number)
            continue
        if not mark.genuine:
            forged.append(number)
        elif newest is None or mark.entry_id > newest.entry_id:
            newest = mark
    return newest, forged


# --- verification ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    checked: int
    breaks: list[ChainBreak]
    anchor: Anchor | None = None

    @property
    def intact(self) -> bool:
        return not self.breaks


def _iter_values(batch: int) -> Iterator[dict[str, Any]]:
    last_id = 0
    fields = ("id", *HASHED_FIELDS, *OPTIONAL_FIELDS, "prev_hash", "hash", "key_id")
    while True:
        rows = list(
            AuditEntry.objects.filter(id__gt=last_id).order_by("id").values(*fields)[:batch]
        )
        if not rows:
            return
        yield from rows
        last_id = rows[-1]["id"]


def _hash_problem(values: dict[str, Any], keyed_before: bool) -> str:
    if keyed_before and not values["key_id"]:
        return "It has no chain key although entries before it have one: it was re-hashed."
    try:
        expected = entry_hash(values, values["prev_hash"], values["key_id"])
    except UnknownChainKey:
        return f"It was sealed with the key “{values['key_id']}”, which is not configured."
    if not hmac.compare_digest(expected, values["hash"]):
        return "Its contents were changed after it was written."
    return ""


def _anchor_problems(mark: Anchor, through_id: int) -> list[ChainBreak]:
    """Whether the anchored head is still there, unchanged."""
    if mark.entry_id <= through_id:
        return []  # removed by retention, which the checkpoint accounts for
    row = AuditEntry.objects.filter(id=mark.entry_id).values("hash").first()
    if row is None:
        return [
            ChainBreak(
                mark.entry_id,
                f"It was anchored at {mark.at} but is missing: the log was truncated or "
                "the entry removed.",
            )
        ]
    if not hmac.compare_digest(row["hash"], mark.hash):
        return [
            ChainBreak(
                mark.entry_id,
                f"Its hash differs from the one anchored at {mark.at}: the chain was re-hashed.",
            )
        ]
    return []


def verify_chain(*, batch: int = 5000, limit_breaks: int = 20) -> ChainReport:
    """Walk the whole log in order and report where the chain breaks, and how; then
    check the newest anchor, so that entries removed from the end are found too."""
    checkpoint = (
        AuditEntry.objects.filter(action=CHECKPOINT_ACTION).order_by("-id").values("after").first()
    )
    after = (checkpoint or {}).get("after") or {}
    # After retention the oldest remaining entry links to the last removed one.
    expected_prev = after.get("through_hash", "") or ""
    through_id = int(after.get("through_id", 0) or 0)
    breaks: list[ChainBreak] = []
    checked = 0
    keyed_before = False
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
        problem = _hash_problem(values, keyed_before)
        if problem:
            breaks.append(ChainBreak(values["id"], problem))
        keyed_before = keyed_before or bool(values["key_id"])
        expected_prev = values["hash"]
        if len(breaks) >= limit_breaks:
            return ChainReport(checked, breaks)
    mark, forged = read_anchors()
    breaks += [
        ChainBreak(0, f"Line {n} of the anchor file is not signed with a chain key.")
        for n in forged
    ]
    if mark is not None:
        breaks += _anchor_problems(mark, through_id)
    return ChainReport(checked, breaks, mark)
