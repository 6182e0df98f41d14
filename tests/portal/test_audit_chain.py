"""The hash chain finds edited, removed and inserted rows; retention keeps it verifiable."""

from __future__ import annotations

import importlib
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from portal.audit import audit_record
from portal.audit_chain import CHECKPOINT_ACTION, verify_chain
from portal.audit_retention import remove_older_than
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
