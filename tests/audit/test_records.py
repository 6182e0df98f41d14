"""The audit log is append-only, in the model and in the database."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory

from accounts.models import User
from portal.audit import audit_record
from portal.models import AppendOnlyError, AuditEntry, Outcome
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry():
    return audit_record(action="room.create", target_kind="room", target_id="!r:portal.test")


def test_record_copies_who_acted_and_the_request(rf: RequestFactory):
    user = UserFactory()
    request = rf.post("/rooms/", HTTP_USER_AGENT="Firefox", REMOTE_ADDR="10.1.2.3")
    request.user = user
    request.request_id = "abc123"
    entry = audit_record(
        action="room.update",
        request=request,
        outcome=Outcome.FAILED,
        before={"name": "Old"},
        after={"name": "New"},
        error="The chat server is not available right now.",
    )
    entry.refresh_from_db()
    assert (entry.actor, entry.actor_chat_id, entry.actor_username) == (
        user,
        user.chat_id,
        user.username,
    )
    assert (entry.request_id, entry.client_ip, entry.user_agent) == (
        "abc123",
        "10.1.2.3",
        "Firefox",
    )
    assert (entry.before, entry.after) == ({"name": "Old"}, {"name": "New"})


def test_actor_copy_survives_deleting_the_user():
    user = UserFactory()
    entry = audit_record(action="room.create", actor=user)
    user.delete()
    entry = AuditEntry.objects.get(pk=entry.pk)
    assert not User.objects.filter(pk=entry.actor_id).exists()
    assert (entry.actor_chat_id, entry.actor_username) == (user.chat_id, user.username)


def test_model_refuses_update_and_delete(entry):
    entry.action = "something.else"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()


def run_raw(statement: str, entry: AuditEntry) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [entry.pk])


def test_database_refuses_update(entry):
    run_raw("UPDATE portal_auditentry SET action = 'forged' WHERE id = %s", entry)
    assert AuditEntry.objects.get(pk=entry.pk).action == "room.create"


def test_database_refuses_delete(entry):
    run_raw("DELETE FROM portal_auditentry WHERE id = %s", entry)
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_the_old_retention_flag_opens_nothing(entry):
    """PostgreSQL once let any session that set portal.audit.retention delete."""
    flag = "SET LOCAL portal.audit.retention = 'on'; " if connection.vendor == "postgresql" else ""
    run_raw(flag + "DELETE FROM portal_auditentry WHERE id = %s", entry)
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_another_program_cannot_delete_from_a_sqlite_log(tmp_path):
    """Outside the portal's own connections the guard function does not exist at all."""
    import sqlite3

    from portal.audit.retention import SQLITE_GUARD_FUNCTION

    database = sqlite3.connect(tmp_path / "log.sqlite3")
    database.execute("CREATE TABLE portal_auditentry (id INTEGER PRIMARY KEY)")
    database.execute("INSERT INTO portal_auditentry VALUES (1)")
    guards = __import__(
        "portal.migrations.0003_keyed_chain_and_retention_guard", fromlist=["SQLITE_UP"]
    )
    for statement in guards.SQLITE_UP:
        database.execute(statement)
    with pytest.raises(sqlite3.OperationalError, match=SQLITE_GUARD_FUNCTION):
        database.execute("DELETE FROM portal_auditentry")
    assert database.execute("SELECT count(*) FROM portal_auditentry").fetchone() == (1,)


def test_what_the_database_cannot_hold_is_made_storable():
    """NUL characters (PostgreSQL refuses them) and overlong IDs, from anyone's input."""
    entry = audit_record(
        action="room.create",
        target_label="nul\x00here",
        category_id="!" + "c" * 400,
        before={"name\x00": ["a\x00b"]},
        error="e\x00",
    )
    entry.refresh_from_db()
    assert entry.target_label == "nul\ufffdhere"
    assert len(entry.category_id) == 255
    assert entry.before == {"name\ufffd": ["a\ufffdb"]}
    assert entry.error == "e\ufffd"
