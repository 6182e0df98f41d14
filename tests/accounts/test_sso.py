"""Single sign-on's rules in the fast layer (accounts.sso): where a person may be sent
after signing in, the provider's groups as the homeserver passes them, and roles that
follow a group without undoing a grant made by hand. End to end: tests/browser/test_sso.py."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from accounts import sso
from accounts.models import User
from portal.models import AuditEntry, Outcome

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("wanted", "lands"),
    [
        ("/rooms/?q=x", "/rooms/?q=x"),
        ("", "/"),
        ("https://elsewhere.example/", "/"),
        ("//elsewhere.example/rooms/", "/"),
        ("/\\elsewhere.example", "/"),
        ("javascript:alert(1)", "/"),
        ("http://testserver/audit/", "http://testserver/audit/"),
    ],
)
def test_after_signing_in_a_person_stays_in_the_portal(wanted, lands):
    assert sso.safe_next(RequestFactory().get("/"), wanted) == lands
    refused = AuditEntry.objects.filter(action="auth.redirect", outcome=Outcome.DENIED)
    assert refused.filter(target_id=wanted).exists() == (lands != wanted and wanted != "")


@pytest.mark.parametrize(
    ("attributes", "groups"),
    [
        ({"groups": '["a", "b c"]'}, {"a", "b c"}),
        ({"groups": ["a"]}, {"a"}),
        ({"groups": "a, b"}, {"a", "b"}),
        ({"groups": "[]"}, set()),
        ({}, None),
        ({"groups": 3}, None),
    ],
)
def test_the_providers_groups_as_the_homeserver_passes_them(attributes, groups):
    assert sso.groups_of(attributes) == groups


def test_the_compliance_officer_role_follows_its_group(settings):
    settings.SSO_COMPLIANCE_GROUP = "legal"
    person = User.objects.create(username="@lena:portal.test", chat_id="@lena:portal.test")
    sso.follow_claims(person, {"legal"})
    person.refresh_from_db()
    assert person.is_compliance_officer
    assert person.roles_from_sso == ["compliance-officer"]
    sso.follow_claims(person, {"sales"})
    person.refresh_from_db()
    assert not person.is_compliance_officer


def test_roles_follow_the_group_and_a_role_granted_by_hand_stays(settings):
    settings.SSO_ADMIN_GROUP, settings.SSO_AUDITOR_GROUP = "admins", "auditors"
    person = User.objects.create(username="@sam:portal.test", chat_id="@sam:portal.test")
    person.is_auditor = True  # granted by hand
    person.save()
    sso.follow_claims(person, {"admins"})
    person.refresh_from_db()
    assert person.is_portal_admin
    assert person.is_auditor
    assert person.roles_from_sso == ["administrator"]
    sso.follow_claims(person, set())
    person.refresh_from_db()
    assert not person.is_portal_admin
    assert person.is_auditor
    actions = list(
        AuditEntry.objects.filter(target_id="@sam:portal.test")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["account.role_grant", "account.role_revoke"]
    sso.follow_claims(person, None)  # an answer without groups changes nothing
    person.refresh_from_db()
    assert person.is_auditor
    assert not person.is_portal_admin


def test_a_return_matches_the_state_this_session_began_once(rf, settings):
    settings.CHAT_SERVER_PUBLIC_URL = "https://matrix.example.org"
    request = rf.get("/")
    request.session = {}
    address = sso.start(request, sso.Provider("oidc-demo", "Demo"), "/rooms/")
    assert address.startswith(
        "https://matrix.example.org/_matrix/client/v3/login/sso/redirect/oidc-demo?redirectUrl="
    )
    state = request.session[sso.SESSION_KEY]["state"]
    assert sso.pending(request, "forged") is None
    request.session[sso.SESSION_KEY] = {"state": state, "next": "/rooms/", "provider": "x"}
    assert sso.pending(request, state)["next"] == "/rooms/"
    assert sso.pending(request, state) is None  # used once


def test_failed_single_sign_ons_are_counted_like_wrong_passwords(client, settings):
    """Returns not begun here count as failed sign-ins; at the limit, a return that
    carries a token is refused before the token reaches the chat server."""
    forged = "/accounts/sso/return/?state=forged&loginToken=x"
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.get(forged).status_code == 403
    assert client.get(forged).status_code == 429  # the limit-th failure locks, as a password's
    session = client.session
    session[sso.SESSION_KEY] = {"state": "mine", "next": "/", "provider": "oidc-demo"}
    session.save()
    locked = client.get("/accounts/sso/return/?state=mine&loginToken=x")
    assert locked.status_code == 429
    denied = AuditEntry.objects.filter(action="auth.login", outcome=Outcome.DENIED)
    assert denied.count() > settings.AXES_FAILURE_LIMIT


def test_a_chat_server_that_does_not_answer_the_token_is_said_not_a_failure(client, chat_down):
    session = client.session
    session[sso.SESSION_KEY] = {"state": "mine", "next": "/", "provider": "oidc-demo"}
    session.save()
    answer = client.get("/accounts/sso/return/?state=mine&loginToken=x")
    assert answer.status_code == 503
    assert "_auth_user_id" not in client.session


def test_the_login_page_does_not_wait_on_a_chat_server_that_does_not_answer(
    client, monkeypatch, settings
):
    from rooms.backend.errors import ChatServerUnavailable
    from rooms.backend.matrix.client import MatrixChatBackend

    settings.CHAT_SERVER_URL, settings.CHAT_SERVER_NAME = "http://127.0.0.1:9", "portal.test"
    settings.CHAT_SERVICE_TOKEN = "unused"
    asked = []

    def down(self):
        asked.append(1)
        raise ChatServerUnavailable("no answer")

    monkeypatch.setattr(MatrixChatBackend, "login_flows", down)
    for _ in range(3):
        page = client.get("/accounts/login/")
        assert page.status_code == 200
        assert b"Sign in with" not in page.content
    assert len(asked) == 1  # asked once, not at every view
