from __future__ import annotations

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from portal.checks import chat_server_check

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("synapse")]


def test_health_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "chat_server": "ok",
        "index": "ok",
        "open_breaches": 0,
        "sync_worker": {"leader": "", "restarts": 0},  # none runs in the tests
        "job_runner": {"leader": "", "restarts": 0},
        "directory": None,  # none is configured
    }


def test_health_reports_the_chat_server_down(client, chat_down):
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["chat_server"] == "unavailable"


def test_check_passes_for_a_good_configuration():
    assert chat_server_check() == []


def test_check_reports_a_bad_token(settings):
    settings.CHAT_SERVICE_TOKEN = "not-a-real-token"
    assert [m.id for m in chat_server_check()] == ["portal.E001"]


def test_check_reports_an_unreachable_server(chat_down):
    assert [m.id for m in chat_server_check()] == ["portal.W002"]


def test_check_reports_a_wrong_server_name(settings):
    settings.CHAT_SERVER_NAME = "elsewhere.example"
    assert [m.id for m in chat_server_check()] == ["portal.E004"]


def test_check_reports_a_service_account_that_is_no_admin(settings, make_chat_user):
    person = make_chat_user("plain")
    settings.CHAT_SERVICE_TOKEN = person.http.headers["Authorization"].removeprefix("Bearer ")
    # And the homeserver's module runs for the real service account, not this one.
    assert [m.id for m in chat_server_check()] == ["portal.E005", "portal.W010"]


def test_check_reports_a_url_that_is_not_a_homeserver(settings, live_server):
    settings.CHAT_SERVER_URL = live_server.url  # the portal itself: answers, but not Matrix
    assert httpx.get(f"{live_server.url}/health").status_code in (200, 503)
    assert [m.id for m in chat_server_check()] == ["portal.E003"]


def test_manage_py_check_shows_the_problem(settings):
    settings.CHAT_SERVICE_TOKEN = "not-a-real-token"
    with pytest.raises(SystemCheckError, match="refused CHAT_SERVICE_TOKEN"):
        call_command("check")


def test_liveness_asks_nothing_of_the_database_or_the_chat_server(client, chat_down):
    response = client.get("/health/live")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert client.get("/health/ready").status_code == 503  # the chat server is down


def test_metrics_count_chat_server_calls_and_show_the_index_lag(client, synapse):
    client.get("/health")  # asks the chat server once
    page = client.get("/metrics").content.decode()
    assert 'portal_chat_server_calls_total{outcome="ok"}' in page
    assert "portal_index_lag_seconds" in page
    assert 'portal_unfinished_operations{kind="room_request"} 0.0' in page
    assert "django_http_requests_total_by_method_total" in page


def test_metrics_are_refused_to_any_other_address(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
