"""roomctl paces itself: past the token's rate limit it waits as long as the portal says
and asks again; a wait longer than a minute (a locked sign-in) is reported, not slept."""

from __future__ import annotations

import httpx
import pytest

from portal.cli import core


def portal_answering(answers: list[httpx.Response], monkeypatch) -> tuple[core.Portal, list]:
    slept: list[float] = []
    monkeypatch.setattr(core.time, "sleep", slept.append)
    api = core.Portal("http://portal.test", "rp_x")
    api.http = httpx.Client(
        base_url="http://portal.test/api/v1",
        transport=httpx.MockTransport(lambda request: answers.pop(0)),
    )
    return api, slept


def limited(seconds: str) -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": seconds}, json={"detail": "Slow down"})


def test_a_rate_limited_request_is_asked_again_after_the_wait(monkeypatch):
    api, slept = portal_answering(
        [limited("3"), limited("2"), httpx.Response(200, json={"ok": True})], monkeypatch
    )
    assert api.call("GET", "/rooms") == {"ok": True}
    assert slept == [3, 2]


def test_a_long_wait_is_reported_as_refused(monkeypatch):
    api, slept = portal_answering([limited("900")], monkeypatch)
    with pytest.raises(core.Refused) as refused:
        api.call("POST", "/tokens")
    assert (refused.value.code, refused.value.status, slept) == (core.SOME_FAILED, 429, [])
