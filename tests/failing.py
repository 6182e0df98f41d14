"""Injecting a failure into otherwise real traffic with the chat server."""

from __future__ import annotations

import httpx


class FailingTransport(httpx.BaseTransport):
    """The real Synapse, except that the first `times` requests with this method whose path
    contains `fail_on` get a 500."""

    def __init__(self, fail_on: str, method: str = "PUT", times: int = 1) -> None:
        self.real = httpx.HTTPTransport()
        self.fail_on, self.method = fail_on, method
        self.left = times

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.left and self.fail_on in request.url.path and request.method == self.method:
            self.left -= 1
            return httpx.Response(500, json={"errcode": "M_UNKNOWN", "error": "boom"})
        return self.real.handle_request(request)
