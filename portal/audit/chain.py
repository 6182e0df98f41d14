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

Every entry must be keyed: one without a key was written (or rewritten) by someone
without it. Entries from before keys existed (plain SHA-256, empty key ID) verify only
up to the head a keyed `audit.legacy_sealed` entry names (`manage.py audit_seal_legacy`,
which re-signs them as a whole: their own SHA-256 chain ends in that head). Checkpoints
(retention's, and that seal) are relied on only when sealed with a chain key, so a
database writer without the key can forge neither. And verify says when it had no
anchor to check the head against: it never calls such a chain intact.
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
LEGACY_SEAL_ACTION = "audit.legacy_sealed"
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
        """No break, and the head checked against an anchor (a log with no anchor may
        have lost its newest entries: it is never called intact)."""
        return not self.breaks and (self.anchor is not None or self.checked == 0)

    @property
    def unanchored(self) -> bool:
        return not self.breaks and self.anchor is None and self.checked > 0


def _iter_values(batch: int) -> Iterator[dict[str, Any]]:
    last_id = 0
    while True:
        rows = list(
            AuditEntry.objects.filter(id__gt=last_id).order_by("id").values(*_FIELDS)[:batch]
        )
        if not rows:
            return
        yield from rows
        last_id = rows[-1]["id"]


def _hash_problem(values: dict[str, Any], legacy_through: int) -> str:
    if not values["key_id"] and values["id"] > legacy_through:
        return (
            "It has no chain key: it was written or rewritten by someone without the key "
            "(entries from before keys existed verify once sealed by "
            "`manage.py audit_seal_legacy`)."
        )
    try:
        expected = entry_hash(values, values["prev_hash"], values["key_id"])
    except UnknownChainKey:
        return f"It was sealed with the key “{values['key_id']}”, which is not configured."
    if not hmac.compare_digest(expected, values["hash"]):
        return "Its contents were changed after it was written."
    return ""


_FIELDS = ("id", *HASHED_FIELDS, *OPTIONAL_FIELDS, "prev_hash", "hash", "key_id")


def trusted(action: str) -> dict[str, Any]:
    """The `after` of the newest entry of this action that is sealed with a chain key and
    unchanged (empty if none): a checkpoint anyone without the key wrote is not relied
    on (the walk reports it as an entry without a key)."""
    for values in AuditEntry.objects.filter(action=action).order_by("-id").values(*_FIELDS):
        if values["key_id"] and not _hash_problem(values, 0):
            after = values["after"]
            return after if isinstance(after, dict) else {}
    return {}


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
    after = trusted(CHECKPOINT_ACTION)
    # After retention the oldest remaining entry links to the last removed one.
    expected_prev = after.get("through_hash", "") or ""
    through_id = int(after.get("through_id", 0) or 0)
    legacy = trusted(LEGACY_SEAL_ACTION)
    legacy_through = int(legacy.get("through_id", 0) or 0)
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
        problem = _hash_problem(values, legacy_through) or _legacy_problem(values, legacy)
        if problem:
            breaks.append(ChainBreak(values["id"], problem))
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


def _legacy_problem(values: dict[str, Any], seal: dict[str, Any]) -> str:
    """The last entry from before keys existed is the one the keyed seal names."""
    if not seal or values["id"] != int(seal.get("through_id", 0) or 0):
        return ""
    if hmac.compare_digest(values["hash"], str(seal.get("through_hash", ""))):
        return ""
    return "It differs from the entries sealed as they were before keys existed."


def legacy_head() -> tuple[int, str, int]:
    """The entries from before keys existed (the unkeyed ones at the start of the log):
    the ID and hash of the last, and how many. Refused unless they still verify as they
    were written (their own SHA-256 chain), so sealing cannot bless a changed one."""
    last_id, last_hash, count, prev = 0, "", 0, None
    for values in _iter_values(5000):
        if values["key_id"]:
            break
        if (prev is not None and values["prev_hash"] != prev) or _hash_problem(
            values, values["id"]
        ):
            raise ValueError(f"Entry {values['id']} does not verify as it was written.")
        last_id, last_hash, count, prev = values["id"], values["hash"], count + 1, values["hash"]
    return last_id, last_hash, count
