"""Single sign-on, end to end in Chromium: the portal sends the person through a real
homeserver's SSO to a real OpenID Connect provider (accounts/idp/provider.mjs) and back,
and signs them in as the chat user their chat client is."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page

from accounts.idp import PEOPLE_FILE, Person, identity_provider, write_people
from accounts.models import User
from portal.models import AuditEntry, Outcome
from rooms.backend.embedded import Connection, EmbeddedSynapse, free_port
from tests.conftest import PASSWORD, TEST_SERVER_NAME

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.chat]

ADMINS = "portal-administrators"
PROVIDER = "oidc-demo"  # Synapse's ID of the OpenID Connect provider "demo"


@pytest.fixture(scope="module")
def sso_world(live_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A homeserver whose SSO is the test provider, with a person of its own: `who`
    (a chat account with a password too) and the provider's listing."""
    folder = tmp_path_factory.mktemp("idp")
    who = Person(f"sam{uuid.uuid4().hex[:8]}", "Sam Single", "sso-pass-1", (ADMINS,))
    port = free_port()
    homeserver_url = f"http://127.0.0.1:{port}"
    with identity_provider(
        folder, [who], homeserver_url=homeserver_url, portal_url=live_server.url
    ) as sso:
        server = EmbeddedSynapse(
            tmp_path_factory.mktemp("synapse-sso"),
            port=port,
            server_name=TEST_SERVER_NAME,
            bcrypt_rounds=4,
            sso=sso,
        )
        with server:
            connection = server.bootstrap()
            chat = connection.client(timeout=30)
            chat.ensure_user(who.username, password=PASSWORD, display_name=who.name)
            chat.close()
            yield {"connection": connection, "who": who, "listing": folder / PEOPLE_FILE}


@pytest.fixture
def portal_on_it(sso_world, settings) -> dict:
    connection: Connection = sso_world["connection"]
    settings.CHAT_SERVER_URL = connection.url
    settings.CHAT_SERVER_NAME = connection.server_name
    settings.CHAT_SERVICE_TOKEN = connection.token
    settings.SSO_ADMIN_GROUP = ADMINS
    return sso_world


def chat_id(person: Person) -> str:
    return f"@{person.username}:{TEST_SERVER_NAME}"


def signed_in(page: Page, live_server) -> None:
    """Landed in the portal, past the sign-in (its home sends on to a list)."""
    page.wait_for_url(re.compile(rf"^{re.escape(live_server.url)}/(?!accounts/)"))
    page.get_by_role("button", name="Log out").wait_for()


def through_the_provider(page: Page, person: Person, *, password: str = "") -> None:
    page.get_by_role("link", name="Sign in with Demo sign-in").click()
    page.get_by_label("Username").fill(person.username)
    page.get_by_label("Password").fill(password or person.password)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_person_signs_in_with_sso_as_the_chat_user_their_client_is(
    portal_on_it, browser: Browser, live_server, javascript: bool
):
    who: Person = portal_on_it["who"]
    context = browser.new_context(base_url=live_server.url, java_script_enabled=javascript)
    page = context.new_page()
    page.goto("/accounts/login/?next=/rooms/")
    through_the_provider(page, who)
    page.wait_for_url(f"{live_server.url}/rooms/")
    assert who.name in page.content()
    user = User.objects.get(chat_id=chat_id(who))
    assert user.is_portal_admin  # the provider's group claim
    assert AuditEntry.objects.filter(
        action="auth.login", outcome=Outcome.SUCCEEDED, target_id=chat_id(who)
    ).exists()
    assert AuditEntry.objects.filter(action="account.role_grant", target_id=chat_id(who)).exists()
    # The chat session the login token made was ended: no device is left behind.
    connection: Connection = portal_on_it["connection"]
    devices = httpx.get(
        f"{connection.url}/_synapse/admin/v2/users/{chat_id(who)}/devices",
        headers={"Authorization": f"Bearer {connection.token}"},
    ).json()["devices"]
    assert devices == []
    context.close()


def test_a_wrong_password_is_refused_by_the_provider_and_nobody_is_signed_in(
    portal_on_it, page: Page
):
    page.goto("/accounts/login/")
    through_the_provider(page, portal_on_it["who"], password="not-it")
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."
    page.goto("/rooms/")
    assert "/accounts/login/" in page.url


def test_a_cancelled_sign_in_comes_back_to_the_portal_said_and_audited(portal_on_it, page: Page):
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with Demo sign-in").click()
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url("**/accounts/sso/failed/**")
    assert "cancelled or refused" in page.get_by_role("alert").inner_text()
    assert AuditEntry.objects.filter(
        action="auth.login", outcome=Outcome.DENIED, error__contains="cancelled"
    ).exists()


def test_a_login_token_is_used_once_and_a_return_not_begun_here_is_refused(
    portal_on_it, page: Page, live_server
):
    tokens: list[str] = []
    page.on(
        "request",
        lambda r: tokens.extend(parse_qs(urlsplit(r.url).query).get("loginToken", [])),
    )
    page.goto("/accounts/login/")
    through_the_provider(page, portal_on_it["who"])
    signed_in(page, live_server)
    assert tokens
    # The same return, replayed: its state was used up with the first sign-in.
    page.goto(f"/accounts/sso/return/?state=anything&loginToken={tokens[0]}")
    assert "not begun from this browser" in page.get_by_role("alert").inner_text()
    # A fresh sign-in begun here, handed the used token: the chat server refuses it.
    begun = page.request.get(f"/accounts/sso/{PROVIDER}/", max_redirects=0)
    to_homeserver = parse_qs(urlsplit(begun.headers["location"]).query)
    back = parse_qs(urlsplit(to_homeserver["redirectUrl"][0]).query)["state"][0]
    page.goto(f"/accounts/sso/return/?state={back}&loginToken={tokens[0]}")
    assert "did not accept its login token" in page.get_by_role("alert").inner_text()
    refused = AuditEntry.objects.filter(action="auth.login", outcome=Outcome.DENIED)
    assert refused.filter(error__contains="not begun from this browser").exists()
    assert refused.filter(error__contains="did not accept its login token").exists()


def test_the_administrator_role_follows_the_group_claim(portal_on_it, page: Page, live_server):
    who: Person = portal_on_it["who"]
    write_people(portal_on_it["listing"], [replace(who, groups=())])
    try:
        User.objects.update_or_create(
            chat_id=chat_id(who),
            defaults={
                "username": chat_id(who),
                "is_portal_admin": True,
                "roles_from_sso": ["administrator"],
            },
        )
        page.goto("/accounts/login/")
        through_the_provider(page, who)
        signed_in(page, live_server)
        assert not User.objects.get(chat_id=chat_id(who)).is_portal_admin
        revoked = AuditEntry.objects.get(action="account.role_revoke", target_id=chat_id(who))
        assert revoked.after["source"] == f"single sign-on group “{ADMINS}”"
    finally:
        write_people(portal_on_it["listing"], [who])


def test_next_may_not_lead_away_from_the_portal(portal_on_it, page: Page, live_server):
    page.goto(f"/accounts/sso/{PROVIDER}/?next=//elsewhere.example/rooms/")
    page.get_by_label("Username").fill(portal_on_it["who"].username)
    page.get_by_label("Password").fill(portal_on_it["who"].password)
    page.get_by_role("button", name="Sign in").click()
    signed_in(page, live_server)
    assert page.url.startswith(live_server.url)


def test_the_login_page_offers_no_sso_where_the_homeserver_has_none(page: Page, synapse):
    page.goto("/accounts/login/")
    assert page.get_by_role("link", name="Sign in with Demo sign-in").count() == 0
