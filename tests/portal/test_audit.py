"""The audit log is append-only, in the model and in the database."""

from __future__ import annotations

import pytest
from django.conf import settings
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


if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Only PostgreSQL refuses DELETE in the database: see migration 0002 for why.
    def test_database_refuses_delete(entry):
        run_raw("DELETE FROM portal_auditentry WHERE id = %s", entry)
        assert AuditEntry.objects.filter(pk=entry.pk).exists()
