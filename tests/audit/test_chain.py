"""The hash chain finds edited, removed and inserted rows; retention keeps it verifiable."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from portal.audit import audit_record
from portal.audit.chain import (
    CHECKPOINT_ACTION,
    HASHED_FIELDS,
    LEGACY_SEAL_ACTION,
    entry_hash,
    verify_chain,
)
from portal.audit.retention import remove_older_than
from portal.models import AuditEntry
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
GUARDS = importlib.import_module("portal.migrations.0003_keyed_chain_and_retention_guard")


@pytest.fixture
def entries():
    user = UserFactory()
    return [
        audit_record(
            action="room.update",
            actor=user,
            target_id=f"!r{n}",
            before={"n": n},
            after={"n": n + 1, "name": "Ünïcode <b>"},
        )
        for n in range(6)
    ]


def raw(sql: str, params: list) -> None:
    """What someone with database access could do behind the portal's back."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("ALTER TABLE portal_auditentry DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS portal_audit_no_update")
            cursor.execute("DROP TRIGGER IF EXISTS portal_audit_no_delete")
        try:
            cursor.execute(sql, params)
        finally:
            if postgres:
                cursor.execute("ALTER TABLE portal_auditentry ENABLE TRIGGER USER")
            else:
                for statement in GUARDS.SQLITE_UP:
                    cursor.execute(statement)


def test_an_untouched_chain_verifies(entries):
    report = verify_chain()
    assert report.intact
    assert report.checked == len(entries)
    assert entries[1].prev_hash == entries[0].hash


def test_an_edited_row_is_found(entries):
    raw(
        "UPDATE portal_auditentry SET outcome = 'succeeded', error = 'x' WHERE id = %s",
        [entries[2].pk],
    )
    report = verify_chain()
    assert [(b.entry_id, "changed" in b.reason) for b in report.breaks] == [(entries[2].pk, True)]


def test_an_edited_json_value_is_found(entries):
    raw(
        "UPDATE portal_auditentry SET after = %s WHERE id = %s",
        [json.dumps({"n": 99}), entries[4].pk],
    )
    assert [b.entry_id for b in verify_chain().breaks] == [entries[4].pk]


def test_a_deleted_row_is_found_at_the_next_one(entries):
    raw("DELETE FROM portal_auditentry WHERE id = %s", [entries[3].pk])
    report = verify_chain()
    assert [b.entry_id for b in report.breaks] == [entries[4].pk]
    assert "removed or inserted" in report.breaks[0].reason


def test_the_command_names_the_break_and_fails(entries, capsys):
    call_command("verify_audit_chain")
    assert "Intact: 6 entries checked." in capsys.readouterr().out
    raw("UPDATE portal_auditentry SET action = 'forged' WHERE id = %s", [entries[0].pk])
    with pytest.raises(CommandError, match="broken"):
        call_command("verify_audit_chain")
    assert f"entry {entries[0].pk}:" in capsys.readouterr().out


def test_retention_exports_removes_and_leaves_a_verifiable_chain(entries, tmp_path):
    old = timezone.now() + timedelta(seconds=1)  # everything so far counts as old
    removed = remove_older_than(old, export_to=tmp_path / "old.jsonl")
    assert removed == len(entries) - 1  # the newest entry always stays
    exported = [json.loads(line) for line in (tmp_path / "old.jsonl").read_text().splitlines()]
    assert [row["id"] for row in exported] == [e.pk for e in entries[:-1]]
    assert AuditEntry.objects.filter(action=CHECKPOINT_ACTION).count() == 1
    audit_record(action="room.create")
    assert verify_chain().intact
    # A second retention supersedes the first checkpoint, and the chain still holds.
    remove_older_than(timezone.now() + timedelta(seconds=1), export_to=tmp_path / "again.jsonl")
    assert verify_chain().intact


def test_retention_command(entries, tmp_path, capsys):
    call_command("audit_retention", "--days", "30", "--export-dir", str(tmp_path))
    assert "Nothing older than 30 days." in capsys.readouterr().out


def test_removing_the_newest_entries_is_found_by_the_anchor(entries):
    raw("DELETE FROM portal_auditentry WHERE id >= %s", [entries[4].pk])
    report = verify_chain()
    assert not report.intact
    assert report.anchor is not None
    assert report.anchor.entry_id == entries[-1].pk
    assert [b.entry_id for b in report.breaks] == [entries[-1].pk]
    assert "truncated" in report.breaks[0].reason


def rehash_from(start: int, *, key_id: str, key: str | None) -> None:
    """Link every entry from `start` on again, as someone with database access would."""
    rows = list(AuditEntry.objects.filter(id__gte=start).order_by("id").values())
    prev = AuditEntry.objects.filter(id__lt=start).order_by("-id").values_list("hash", flat=True)
    prev_hash = prev.first() or ""
    for values in rows:
        record = {field: values[field] for field in HASHED_FIELDS}
        record = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in record.items()}
        record["prev_hash"] = prev_hash
        if key_id:
            record["key_id"] = key_id
        text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = (
            hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()
            if key
            else hashlib.sha256(text.encode()).hexdigest()
        )
        raw(
            "UPDATE portal_auditentry SET prev_hash = %s, hash = %s, key_id = %s WHERE id = %s",
            [prev_hash, digest, key_id, values["id"]],
        )
        prev_hash = digest


@pytest.mark.parametrize(
    ("key_id", "key"),
    [("", None), ("local", "a guess at the key, which is kept outside the database")],
)
def test_deleting_one_entry_and_rehashing_the_rest_is_found(entries, key_id, key):
    raw("DELETE FROM portal_auditentry WHERE id = %s", [entries[2].pk])
    rehash_from(entries[3].pk, key_id=key_id, key=key)
    report = verify_chain()
    assert not report.intact
    broken = {b.entry_id for b in report.breaks}
    assert entries[3].pk in broken  # the first re-hashed entry fails its key
    assert entries[-1].pk in broken  # and the anchored head no longer matches


def test_even_with_the_key_a_rehash_is_found_by_the_anchor(entries, settings):
    raw("DELETE FROM portal_auditentry WHERE id = %s", [entries[2].pk])
    rehash_from(entries[3].pk, key_id=settings.AUDIT_CHAIN_KEY_ID, key=settings_key(settings))
    report = verify_chain()
    assert [b.entry_id for b in report.breaks] == [entries[-1].pk]
    assert "re-hashed" in report.breaks[0].reason


def settings_key(settings) -> str:
    return settings.AUDIT_CHAIN_KEYS[settings.AUDIT_CHAIN_KEY_ID]


def test_a_forged_anchor_line_is_reported(entries, settings):
    with open(settings.AUDIT_ANCHOR_FILE, "a") as anchors:
        anchors.write(
            json.dumps(
                {
                    "entry_id": 999999,
                    "hash": "0" * 64,
                    "at": "now",
                    "key_id": "local",
                    "signature": "f" * 64,
                }
            )
            + "\n"
        )
    report = verify_chain()
    assert [b.reason for b in report.breaks] == [
        "Line 7 of the anchor file is not signed with a chain key."
    ]
    assert report.anchor.entry_id == entries[-1].pk  # the genuine anchor still counts


def test_entries_are_keyed_and_a_rotated_key_still_verifies(entries, settings):
    assert {e.key_id for e in entries} == {settings.AUDIT_CHAIN_KEY_ID}
    settings.AUDIT_CHAIN_KEYS = {"next": "n" * 40, **settings.AUDIT_CHAIN_KEYS}
    settings.AUDIT_CHAIN_KEY_ID = "next"
    newer = audit_record(action="room.create")
    assert newer.key_id == "next"
    assert verify_chain().intact


def test_a_keyless_rewrite_behind_a_forged_checkpoint_is_found(entries, capsys):
    """Someone with database access but not the key rewrites every entry without a key,
    from the first, and forges a checkpoint claiming all before it was retired."""
    rehash_from(entries[0].pk, key_id="", key=None)
    last = AuditEntry.objects.order_by("-id").first()
    forged = AuditEntry(
        created_at=timezone.now(),
        action=CHECKPOINT_ACTION,
        outcome="succeeded",
        after={"through_id": 1_000_000_000, "through_hash": ""},
        prev_hash=last.hash,
        key_id="",
    )
    values = {field: getattr(forged, field) for field in HASHED_FIELDS}
    forged.hash = entry_hash(values, last.hash, "")
    forged.save()
    report = verify_chain()
    assert not report.intact
    broken = {b.entry_id for b in report.breaks}
    assert {e.pk for e in entries} | {forged.pk} <= broken
    with pytest.raises(CommandError, match="broken"):
        call_command("verify_audit_chain")


def test_without_an_anchor_verify_does_not_say_intact(entries, settings, capsys):
    Path(settings.AUDIT_ANCHOR_FILE).unlink()
    raw("DELETE FROM portal_auditentry WHERE id = %s", [entries[-1].pk])  # the newest
    report = verify_chain()
    assert report.breaks == []
    assert report.unanchored
    assert not report.intact
    with pytest.raises(CommandError, match="Not confirmed"):
        call_command("verify_audit_chain")
    assert "Intact" not in capsys.readouterr().out


def test_entries_from_before_keys_verify_once_sealed_and_not_after_a_change(entries, settings):
    Path(settings.AUDIT_ANCHOR_FILE).unlink()  # a log from before keys had no anchors
    rehash_from(entries[0].pk, key_id="", key=None)
    assert not verify_chain().intact  # unkeyed entries are not taken on trust
    call_command("audit_seal_legacy")
    seal = AuditEntry.objects.get(action=LEGACY_SEAL_ACTION)
    assert seal.key_id == settings.AUDIT_CHAIN_KEY_ID
    assert seal.after["through_id"] == entries[-1].pk
    assert verify_chain().intact
    # A legacy entry changed and its prefix re-chained without the key: found at the seal.
    raw("UPDATE portal_auditentry SET action = 'forged' WHERE id = %s", [entries[1].pk])
    rehash_from(entries[1].pk, key_id="", key=None)
    report = verify_chain()
    assert not report.intact
    assert any("sealed" in b.reason for b in report.breaks)


def test_sealing_refuses_entries_that_no_longer_verify(entries, settings):
    rehash_from(entries[0].pk, key_id="", key=None)
    raw("UPDATE portal_auditentry SET action = 'forged' WHERE id = %s", [entries[2].pk])
    with pytest.raises(CommandError, match="does not verify"):
        call_command("audit_seal_legacy")
    assert not AuditEntry.objects.filter(action=LEGACY_SEAL_ACTION).exists()
