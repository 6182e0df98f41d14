"""Chat IDs and local usernames cannot collide: a local account named like a chat ID is
refused where it would be made, and a chat user whose ID a legacy local account took is
told why they cannot sign in (never a server error)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import User
from portal.models import AuditEntry, Outcome
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_createsuperuser_refuses_a_username_like_a_chat_id(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-enough-password-1")
    with pytest.raises(CommandError, match="cannot start with “@”"):
        call_command(
            "createsuperuser",
            "--no-input",
            "--username",
            "@carol:portal.test",
            "--email",
            "carol@example.org",
        )
    assert not User.objects.filter(username="@carol:portal.test").exists()


def test_grant_role_refuses_a_local_account_named_like_a_chat_id_and_a_malformed_id():
    User.objects.create_user("@carol:portal.test", password="x-long-password-1")
    with pytest.raises(CommandError, match="named like a chat ID"):
        call_command("grant_role", "@carol:portal.test", "administrator")
    with pytest.raises(CommandError, match="not a chat ID"):
        call_command("grant_role", "@no server", "auditor")
    assert not User.objects.get(username="@carol:portal.test").is_portal_admin


def test_a_chat_user_whose_id_a_local_account_took_is_told_and_audited(client, make_chat_user):
    person = make_chat_user("carol")
    User.objects.create_user(person.user_id, password="x-long-password-1")  # made before
    response = client.post(reverse("login"), {"username": person.user_id, "password": PASSWORD})
    assert response.status_code == 200
    assert "a local account has your chat ID as its name" in response.content.decode()
    entry = AuditEntry.objects.get(action="auth.login")
    assert (entry.outcome, entry.target_id) == (Outcome.DENIED, person.user_id)
    assert not User.objects.filter(chat_id=person.user_id).exists()
