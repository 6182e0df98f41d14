"""Error paths a real chat server will not produce on demand, through a fake httpx transport."""

from __future__ import annotations

import httpx
import pytest

from rooms.backend.errors import (
    ChatBackendError,
    ChatConflict,
    ChatInvalid,
    ChatNotFound,
    ChatServerDenied,
    ChatServerUnavailable,
)
from rooms.backend.matrix.client import MatrixChatBackend


def client_answering(*answers, sleeps=None) -> MatrixChatBackend:
    """A client whose server gives these answers in turn (an exception is raised instead)."""
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return MatrixChatBackend(
        base_url="http://chat.invalid",
        server_name="example.org",
        token="t",
        transport=httpx.MockTransport(handler),
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
    )


def whoami_ok() -> httpx.Response:
    return httpx.Response(200, json={"user_id": "@roomportal:example.org"})


def test_timeout_is_unavailable():
    client = client_answering(httpx.ReadTimeout("slow"))
    with pytest.raises(ChatServerUnavailable, match="did not answer in time"):
        client.whoami()


def test_connection_refused_is_unavailable():
    client = client_answering(httpx.ConnectError("refused"))
    with pytest.raises(ChatServerUnavailable, match="cannot be reached"):
        client.whoami()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_unavailable(status):
    client = client_answering(httpx.Response(status, text="<html>Bad gateway</html>"))
    with pytest.raises(ChatServerUnavailable):
        client.whoami()


def test_rate_limit_is_waited_out_as_the_server_asks():
    sleeps: list[float] = []
    client = client_answering(
        httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 1500}),
        httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED"}, headers={"Retry-After": "2"}),
        whoami_ok(),
        sleeps=sleeps,
    )
    assert client.whoami() == "@roomportal:example.org"
    assert sleeps == [1.5, 2.0]
    assert client.http.calls == 3


def test_rate_limit_longer_than_a_person_would_wait_gives_up():
    sleeps: list[float] = []
    client = client_answering(
        httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 300_000}),
        sleeps=sleeps,
    )
    with pytest.raises(ChatServerUnavailable, match="busy") as raised:
        client.whoami()
    assert raised.value.code == "M_LIMIT_EXCEEDED"
    assert sleeps == []


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="not json at all"),
        httpx.Response(200, json=["a", "list"]),
        httpx.Response(200, json={"no_user_id": True}),
    ],
)
def test_malformed_answers_are_errors_not_crashes(response):
    client = client_answering(response)
    with pytest.raises(ChatBackendError):
        client.whoami()


def test_malformed_room_state_is_an_error():
    client = client_answering(whoami_ok(), httpx.Response(200, json={"state": "nonsense"}))
    with pytest.raises(ChatBackendError, match="cannot read"):
        client.get_room("!room:example.org")


@pytest.mark.parametrize(
    ("status", "errcode", "error"),
    [
        (401, "M_UNKNOWN_TOKEN", ChatServerDenied),
        (403, "M_FORBIDDEN", ChatServerDenied),
        (404, "M_NOT_FOUND", ChatNotFound),
        (409, "M_UNKNOWN", ChatConflict),
        (400, "M_ROOM_IN_USE", ChatConflict),
        (400, "M_BAD_JSON", ChatInvalid),
        (418, "M_UNKNOWN", ChatBackendError),
    ],
)
def test_matrix_errors_map_to_the_portals_exceptions(status, errcode, error):
    client = client_answering(httpx.Response(status, json={"errcode": errcode, "error": "no"}))
    with pytest.raises(error) as raised:
        client.whoami()
    assert raised.value.code == errcode


def test_an_answer_is_freed_once_read_not_left_to_the_cycle_collector():
    """An export reads a thousand pages: each page's body goes when the page is done
    with, so memory stays at two pages however long the room (httpx ties a response
    to its own stream, a cycle only the collector would break)."""
    import gc
    import weakref

    answer = whoami_ok()
    seen = weakref.ref(answer)
    client = client_answering(answer)
    del answer
    gc.disable()
    try:
        assert client.whoami() == "@roomportal:example.org"
        assert seen() is None
    finally:
        gc.enable()
