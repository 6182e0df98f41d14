"""Injecting a failure into otherwise real traffic with the chat server."""

from __future__ import annotations

import httpx


class FailingTransport(httpx.BaseTransport):
    """The real Synapse, except that the first request with this method whose path contains
    `fail_on` gets a 500."""

    def __init__(self, fail_on: str, method: str = "PUT") -> None:
        self.real = httpx.HTTPTransport()
        self.fail_on, self.method = fail_on, method
        self.failed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self.failed and self.fail_on in request.url.path and request.method == self.method:
            self.failed = True
            return httpx.Response(500, json={"errcode": "M_UNKNOWN", "error": "boom"})
        return self.real.handle_request(request)
