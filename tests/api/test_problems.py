"""Every error answer under /api/v1/ is problem details, also those no operation made
(an unknown address, a wrong method, a failure of the portal); JSON booleans are booleans;
answers that invite asking again say when."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from portal.api import UNAVAILABLE_RETRY_SECONDS, categories
from rooms.backend.errors import ChatServerUnavailable
from tests.api.test_api import PROBLEM, call, make_token
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(client):
    return make_token(client, AdministratorFactory())


def test_an_unknown_address_is_a_problem_not_a_page(client, token):
    answer = call(client, "GET", "/no-such-thing", token)
    assert (answer.status_code, answer["Content-Type"]) == (404, PROBLEM)
    assert answer.json()["title"] == "Not Found"
    assert "/api/v1/no-such-thing" in answer.json()["detail"]


def test_a_method_the_address_does_not_take_is_a_problem_naming_those_it_does(client, token):
    answer = call(client, "PUT", "/rooms", token)
    assert (answer.status_code, answer["Content-Type"]) == (405, PROBLEM)
    assert set(answer["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert "does not take PUT" in answer.json()["detail"]


def test_a_failure_of_the_portal_is_a_problem_with_its_request_id(client, token, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a defect")

    monkeypatch.setattr(categories, "_visible", broken)
    failing = Client(raise_request_exception=False)
    answer = failing.get("/api/v1/categories/!x", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (answer.status_code, answer["Content-Type"]) == (500, PROBLEM)
    assert answer["X-Request-ID"] in answer.json()["detail"]


def test_pages_outside_the_api_keep_their_html_errors(client, token):
    answer = client.get("/no-such-page/")
    assert answer.status_code == 404
    assert answer["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("value", ["yes", 1, "true", 0])
def test_a_boolean_must_be_a_json_boolean(client, token, value):
    answer = call(client, "PATCH", "/rooms/!any", token, {"auditorium": value})
    assert (answer.status_code, answer["Content-Type"]) == (422, PROBLEM)
    assert "auditorium" in answer.json()["detail"]


def test_a_chat_server_that_does_not_answer_says_when_to_ask_again(client, token, monkeypatch):
    def unavailable(*args, **kwargs):
        raise ChatServerUnavailable()

    monkeypatch.setattr(categories, "_visible", unavailable)
    answer = call(client, "GET", "/categories/!x", token)
    assert (answer.status_code, answer["Content-Type"]) == (503, PROBLEM)
    assert answer["Retry-After"] == str(UNAVAILABLE_RETRY_SECONDS)


def test_a_token_past_its_rate_limit_is_told_when_to_ask_again(
    client, token, settings, monkeypatch
):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    now = timezone.now().replace(second=20)  # one minute throughout: 40 s left in it
    monkeypatch.setattr(timezone, "now", lambda: now)
    answers = [call(client, "GET", "/categories", token) for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert [a["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert all(a["RateLimit-Limit"] == "3" for a in answers)
    assert all(a["RateLimit-Reset"] == "40" for a in answers)
    limited = call(client, "GET", "/categories", token)
    assert (limited.status_code, limited["Content-Type"]) == (429, PROBLEM)
    assert limited["Retry-After"] == "40"
    assert "more than 3 requests this minute" in limited.json()["detail"]
    other = make_token(client, AdministratorFactory(), name="another")
    assert call(client, "GET", "/categories", other).status_code == 200  # each token its own


def test_people_are_read_one_way_and_what_is_not_a_chat_id_is_called_so(
    client, chat, token, category_world, make_room
):
    category = category_world["category"]
    scoped = call(
        client, "POST", f"/categories/{category.id}/scope", token, {"add": ["+eng:portal.test"]}
    )
    assert scoped.status_code == 422
    assert "Not chat IDs: +eng:portal.test" in scoped.json()["detail"]  # not @+eng:…:…
    creators = call(
        client, "PUT", f"/categories/{category.id}/creators", token, {"creators": ["bob smith"]}
    )
    assert creators.status_code == 422
    assert "not chat IDs" in creators.json()["detail"]
    room = make_room()
    member = category_world["member"].user_id
    localpart = member[1:].split(":")[0]
    added = call(
        client,
        "POST",
        f"/rooms/{room.id}/roles/member",
        token,
        {"add": ["bob smith", localpart]},
    ).json()["results"]
    assert added[0]["result"] == "refused"
    assert "is not a chat ID" in added[0]["detail"]  # not "not in the scope"
    assert (added[1]["person"], added[1]["result"]) == (member, "done")  # a name alone
    assert member in chat.get_room(room.id).members


def test_a_list_too_long_says_of_what(client, token):
    many = call(
        client,
        "POST",
        "/rooms/bulk",
        token,
        {"rooms": [f"!r{n}:portal.test" for n in range(5001)], "change": {"disabled": True}},
    )
    assert many.status_code == 422
    assert "At most 5000 rooms at once (this has 5001)" in many.json()["detail"]
