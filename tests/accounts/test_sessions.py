"""Sessions follow the account: a deactivated chat account's sessions end at the next
check, an idle one ends, an administrator ends all of a person's; each is audited."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.urls import reverse

from accounts import sessions
from accounts.models import User
from portal.models import AuditEntry
from tests.conftest import PASSWORD
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db
HOME = reverse("rooms:list")


def signed_in(person) -> Client:
    client = Client()
    answer = client.post(reverse("login"), {"username": person.user_id, "password": PASSWORD})
    assert answer.status_code == 302
    assert client.get(HOME).status_code == 200
    return client


def ended(client: Client) -> bool:
    answer = client.get(HOME)
    return answer.status_code == 302 and answer["Location"].startswith(reverse("login"))


def test_a_deactivated_chat_accounts_session_ends_at_the_next_check(chat, make_chat_user, settings):
    person = make_chat_user("dora")
    client = signed_in(person)
    chat.http.request("POST", f"/_synapse/admin/v1/deactivate/{person.user_id}", json={})
    settings.ACCOUNT_CHECK_SECONDS = -1  # the check is due on the next request
    assert ended(client)
    entry = AuditEntry.objects.get(action="auth.session_ended")
    assert entry.after["reason"] == "The chat account was deactivated."
    assert entry.actor_chat_id == person.user_id
    assert AuditEntry.objects.filter(action="auth.sessions_ended").exists()
    answer = client.post(reverse("requests:new"), {"name": "After deactivation"})
    assert answer.status_code == 302  # to the login page: nothing submitted


def test_a_session_goes_on_while_the_chat_server_cannot_be_asked(
    make_chat_user, settings, chat_down
):
    user = User.objects.create(username="@eve:portal.test", chat_id="@eve:portal.test")
    client = Client()
    client.force_login(user)
    settings.ACCOUNT_CHECK_SECONDS = -1
    assert client.get(HOME).status_code == 200
    assert not AuditEntry.objects.filter(action="auth.session_ended").exists()


def test_an_idle_session_ends(settings):
    admin = AdministratorFactory()
    client = Client()
    client.force_login(admin)
    assert client.get(HOME).status_code == 200
    session = client.session
    session[sessions.SEEN] = time.time() - settings.SESSION_IDLE_MINUTES * 60 - 1
    session.save()
    assert ended(client)
    reason = AuditEntry.objects.get(action="auth.session_ended").after["reason"]
    assert reason.startswith("Unused for more than")


def test_an_administrator_ends_all_of_a_persons_sessions(make_chat_user):
    person = make_chat_user("fred")
    first, second = signed_in(person), signed_in(person)
    admin = Client()
    admin.force_login(AdministratorFactory())
    answer = admin.post(reverse("people:end_sessions", args=[person.user_id]))
    assert answer.status_code == 302
    assert ended(first)
    assert ended(second)
    entry = AuditEntry.objects.get(action="auth.sessions_ended")
    assert entry.target_id == person.user_id
    assert entry.after["reason"] == "Ended by a portal administrator."
    assert signed_in(person)  # signing in again works
