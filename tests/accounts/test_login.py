"""Logging in with chat-server credentials, local accounts, failures and throttling."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import User
from portal.models import AuditEntry, Outcome
from tests.conftest import PASSWORD
from tests.factories import AdministratorFactory, UserFactory

pytestmark = pytest.mark.django_db
LOGIN = reverse("login")


def log_in(client, username, password="", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def test_login_page_renders(client):
    response = client.get(LOGIN)
    assert response.status_code == 200
    assert b"Chat username" in response.content


def test_chat_user_logs_in_with_their_chat_password(client, make_chat_user):
    person = make_chat_user("alice", display_name="Alice Example")
    localpart = person.user_id[1:].split(":")[0]
    response = log_in(client, localpart, PASSWORD, HTTP_USER_AGENT="pytest-browser")
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    user = User.objects.get(chat_id=person.user_id)
    assert user.display_name == "Alice Example"
    assert not user.has_usable_password()  # the portal keeps no chat password
    entry = AuditEntry.objects.get(action="auth.login")
    assert (entry.outcome, entry.actor, entry.actor_chat_id) == (
        Outcome.SUCCEEDED,
        user,
        person.user_id,
    )
    assert entry.user_agent == "pytest-browser"
    assert entry.client_ip == "127.0.0.1"
    assert entry.request_id == response["X-Request-ID"]


def test_full_chat_id_works_as_username(client, make_chat_user):
    person = make_chat_user("bob")
    assert log_in(client, person.user_id, PASSWORD).status_code == 302


def test_wrong_password_is_a_clear_error_and_audited(client, make_chat_user):
    person = make_chat_user("carl")
    response = log_in(client, person.user_id, "not the password")
    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()
    assert response.context["form"]["username"].value() == person.user_id  # kept
    entry = AuditEntry.objects.get(action="auth.login")
    assert (entry.outcome, entry.target_id) == (Outcome.DENIED, person.user_id)


@pytest.mark.parametrize("username", ["nobody-at-all", "@nobody:portal.test", "bad name!", "@x"])
def test_unknown_or_malformed_users_are_refused(client, synapse, username):
    response = log_in(client, username, "whatever")
    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()


def test_empty_fields_are_field_errors(client):
    response = log_in(client, "", "")
    form = response.context["form"]
    assert form.errors["username"] == ["This field is required."]
    assert form.errors["password"] == ["This field is required."]


def test_overlong_username_is_a_field_error(client):
    response = log_in(client, "a" * 300, "whatever")
    assert "at most 255 characters" in response.context["form"].errors["username"][0]


def test_chat_server_down_at_login_is_a_503_page_and_audited(client, chat_down):
    response = log_in(client, "someone", "whatever")
    assert response.status_code == 503
    assert "chat server is not available" in response.content.decode()
    entry = AuditEntry.objects.get()  # one entry, the login's; no second "page.failed"
    assert (entry.action, entry.outcome) == ("auth.login", Outcome.FAILED)
    assert "cannot be reached" in entry.error


def test_repeated_failures_are_throttled(client, make_chat_user, settings):
    person = make_chat_user("dave")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, person.user_id, "wrong")
    response = log_in(client, person.user_id, PASSWORD)  # even the right password waits
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert not User.objects.filter(chat_id=person.user_id).exists()


def test_local_administrator_logs_in_without_the_chat_server(client, chat_down):
    admin = AdministratorFactory()
    assert log_in(client, admin.username, "local-password-1").status_code == 302


def test_logout_is_audited(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="auth.logout")
    assert (entry.actor, entry.outcome) == (user, Outcome.SUCCEEDED)


def test_logout_needs_a_post(client):
    client.force_login(UserFactory())
    assert client.get(reverse("logout")).status_code == 405


def test_the_lockout_counts_the_person_not_the_spelling(client, make_chat_user, settings):
    person = make_chat_user("paula")
    localpart = person.user_id[1:].split(":")[0]
    spellings = [
        localpart,
        localpart.upper(),
        localpart.capitalize(),
        person.user_id,
        person.user_id.upper(),
        f"  {localpart}  ",
        f"@{localpart.upper()}:{settings.CHAT_SERVER_NAME.upper()}",
        localpart.swapcase(),
    ]
    for spelling in spellings[: settings.AXES_FAILURE_LIMIT - 1]:
        assert log_in(client, spelling, "wrong").status_code == 200
    # The limit-th failure locks the person out, whichever spelling it came in.
    assert log_in(client, spellings[settings.AXES_FAILURE_LIMIT - 1], "wrong").status_code == 429
    for spelling in spellings:  # every spelling is now locked, the right password too
        assert log_in(client, spelling, PASSWORD).status_code == 429, spelling
    assert not User.objects.filter(chat_id=person.user_id).exists()


def test_other_spellings_of_a_chat_user_log_in_as_the_same_person(client, make_chat_user):
    person = make_chat_user("quinn")
    localpart = person.user_id[1:].split(":")[0]
    for spelling in (localpart.upper(), person.user_id.upper()):
        assert log_in(client, spelling, PASSWORD).status_code == 302
        client.post(reverse("logout"))
    assert User.objects.filter(chat_id=person.user_id).count() == 1


def test_a_local_account_logs_in_in_any_letter_case(client, chat_down):
    admin = AdministratorFactory(username="boss")
    assert log_in(client, "BOSS", "local-password-1").status_code == 302
    assert int(client.session["_auth_user_id"]) == admin.pk


def test_a_failed_logout_of_the_login_check_still_removes_its_device(
    chat, synapse, make_chat_user, monkeypatch
):
    from rooms.backend.matrix.client import MatrixChatBackend
    from rooms.backend.matrix.transport import segment
    from tests.failing import FailingTransport

    person = make_chat_user("rita")
    transport = FailingTransport("/logout", method="POST")
    failing = MatrixChatBackend(
        base_url=synapse.url,
        server_name=synapse.server_name,
        token=synapse.token,
        transport=transport,
    )
    assert failing.login(person.user_id, PASSWORD).id == person.user_id
    assert transport.left == 0  # the logout really failed
    devices = chat.http.request(
        "GET", f"/_synapse/admin/v2/users/{segment(person.user_id)}/devices"
    )
    names = [device.get("display_name") for device in devices["devices"]]
    assert "Room portal login check" not in names
