"""Making a token with no browser: signing in through the API (what `roomctl login` does),
with the login page's failure limit and audit entries, and `manage.py create_token`."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from accounts.models import ApiToken
from portal.models import AuditEntry, Outcome
from tests.api.test_api import call
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def sign_in(client, username: str, password: str, **extra):
    body = {"username": username, "password": password, "name": "laptop"} | extra
    return client.post("/api/v1/tokens", json.dumps(body), content_type="application/json")


def test_a_chat_user_signs_in_for_a_token_that_works_at_once(client, category_world):
    person = category_world["member"]
    made = sign_in(client, person.user_id, PASSWORD, scope="write", days=7)
    assert made.status_code == 201, made.json()
    secret = made.json()["secret"]
    assert (made.json()["name"], made.json()["scope"]) == ("laptop", "write")
    assert call(client, "GET", "/rooms", secret).status_code == 200
    assert ApiToken.objects.get(name="laptop").digest != secret  # kept as a hash only
    assert AuditEntry.objects.filter(action="auth.login", outcome=Outcome.SUCCEEDED).exists()
    assert AuditEntry.objects.filter(action="token.create", target_label="laptop").exists()


def test_a_wrong_password_is_refused_audited_and_limited_like_the_login_page(
    client, category_world
):
    person = category_world["member"]
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        wrong = sign_in(client, person.user_id, "wrong")
        assert wrong.status_code == 401
        assert wrong["Content-Type"] == "application/problem+json"
    locked = sign_in(client, person.user_id, "wrong")
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    assert "Too many failed sign-ins" in locked.json()["detail"]
    assert sign_in(client, person.user_id, PASSWORD).status_code == 429  # the right one too
    assert not ApiToken.objects.exists()
    denied = AuditEntry.objects.filter(action="auth.login", outcome=Outcome.DENIED)
    assert denied.count() >= settings.AXES_FAILURE_LIMIT


def test_an_operator_makes_a_token_from_the_command_line(creator, capsys):
    localpart = creator.chat_id[1:].split(":")[0]  # as people say it: carol
    call_command("create_token", localpart, name="nightly", scope="write", days=3)
    secret = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(name="nightly")
    assert (token.user, token.scope, token.shown) == (creator, "write", secret[:10])
    with pytest.raises(CommandError, match="No active account"):
        call_command("create_token", "@nobody:portal.test", name="x")
    with pytest.raises(CommandError, match="already have a token"):
        call_command("create_token", creator.username, name="nightly")
