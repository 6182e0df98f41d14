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


class InjectingTransport(httpx.BaseTransport):
    """The real Synapse, except that request number `at` (counted from arming) gets
    `fault`; with `outage`, every request from then on gets a 500; with `sticky`, every
    later request to the same method and URL fails the same way (a step that keeps
    failing however often it is retried)."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.arm(0, "")

    def arm(self, at: int, fault: str, *, outage: bool = False, sticky: bool = False) -> None:
        self.count, self.at, self.fault, self.outage, self.sticky = 0, at, fault, outage, sticky
        self.failing: tuple[str, str] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        key = (request.method, str(request.url))
        hit = self.fault and (
            self.count == self.at
            or (self.outage and self.count >= self.at)
            or (self.sticky and key == self.failing)
        )
        if not hit:
            return self.real.handle_request(request)
        self.failing = key
        if self.outage or self.fault == "500":
            return httpx.Response(500, json={"errcode": "M_UNKNOWN", "error": "boom"})
        if self.fault == "429":
            return httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 9e6})
        if self.fault == "timeout-before":
            raise httpx.ReadTimeout("injected", request=request)
        if self.fault == "timeout-after":  # the server did it; the answer is lost
            self.real.handle_request(request).read()
            raise httpx.ReadTimeout("injected", request=request)
        if self.fault == "not-json":
            return httpx.Response(200, text="<html>Bad gateway</html>")
        return httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000)
