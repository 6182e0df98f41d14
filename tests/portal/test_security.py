"""Safe defaults: no debug pages, no secret on any page or report, deploy settings clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from rooms.backend.embedded import Connection
from rooms.backend.errors import ChatServerUnavailable
from rooms.backend.matrix.transport import MatrixTransport
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "CHAT_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.processes
def test_debug_is_off_unless_asked_for(tmp_path):
    shown = manage(
        "shell",
        "-c",
        "from django.conf import settings; print('DEBUG', settings.DEBUG)",
        PORTAL_STATE_DIR=str(tmp_path),
    )
    assert "DEBUG False" in shown.stdout, shown.stderr


@pytest.mark.processes
def test_deploy_check_is_clean_with_production_settings(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        HTTPS="1",
        SECRET_KEY="k" * 20 + "Q3!x-" * 10,
        ALLOWED_HOSTS="rooms.example.org",
        PORTAL_STATE_DIR=str(tmp_path / "state"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.fixture
def exploding_chat_server(monkeypatch):
    """The chat client fails in a way nobody planned for, deep inside a request that
    carries the service account's token."""

    def explode(self, method, url, **kwargs):
        raise RuntimeError("unexpected failure")

    monkeypatch.setattr(httpx.Client, "request", explode)


def test_the_debug_page_never_shows_the_service_token(settings, synapse, exploding_chat_server):
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory())
    response = client.get(reverse("health"))  # asks the chat server with the service token
    assert response.status_code == 500
    page = response.content.decode()
    assert "unexpected failure" in page  # it is the debug page, with its frames
    assert "Authorization" in page
    assert synapse.token not in page
    assert settings.SECRET_KEY not in page


def test_without_debug_an_error_is_the_portals_own_page(settings, synapse, exploding_chat_server):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory())
    response = client.get(reverse("health"))  # asks the chat server with the service token
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
    assert "Traceback" not in response.content.decode()


def test_a_connection_never_shows_its_token():
    connection = Connection("http://127.0.0.1:1", "portal.test", "syt_secret_token_value")
    assert "syt_secret_token_value" not in repr(connection)


def test_an_answer_nested_too_deep_is_a_chat_server_error():
    body = b"[" * 100_000 + b"]" * 100_000
    transport = MatrixTransport(
        base_url="http://chat.test",
        token="t",
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body)),
    )
    with pytest.raises(ChatServerUnavailable, match="cannot read"):
        transport.request("GET", "/anything")


def test_a_huge_category_value_is_a_form_error(client, member):
    client.force_login(member)
    response = client.post(
        reverse("requests:new"),
        {
            "name": "Huge",
            "category": "c" * 300_000,
            "privacy": "closed",
            "invitations": "inherit",
            "justification": "Because",
        },
    )
    assert response.status_code == 400
    assert "Choose a category from the list." in response.content.decode()


def test_every_answer_varies_on_hx_request(client):
    response = client.get(reverse("login"))
    assert "HX-Request" in response["Vary"]


def test_an_error_page_answered_to_htmx_replaces_the_whole_body(client, outsider):
    client.force_login(outsider)
    response = client.get(reverse("rooms:check_name"), {"name": "x"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("body", "innerHTML")
    assert "<h1>You may not do that</h1>" in response.content.decode()


def test_a_form_refusal_answered_to_htmx_stays_in_its_target(client, creator, make_room):
    room = make_room()
    client.force_login(creator)
    response = client.post(
        reverse("rooms:edit", args=[room.id]), {"name": ""}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert "HX-Retarget" not in response
