"""HTTP to the Matrix homeserver: one pooled httpx client, timeouts, 429 and error mapping.

Every non-2xx answer, every network failure and every unreadable body becomes one of
the portal's ChatBackendError subclasses here, so nothing above sees httpx or Matrix codes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx
from django.views.decorators.debug import sensitive_variables
from prometheus_client import Counter

from rooms.backend.errors import (
    ChatBackendError,
    ChatConflict,
    ChatInvalid,
    ChatNotFound,
    ChatServerDenied,
    ChatServerUnavailable,
)

# Every call to the chat server, by how it ended: "ok", or the error's kind.
CALLS = Counter("portal_chat_server_calls", "Calls to the chat server, by outcome.", ["outcome"])

log = logging.getLogger(__name__)

# A 429 is waited out while the waits add up to no more than this; beyond it the
# person would be staring at a spinner, so we give up and say the server is busy.
MAX_RATE_LIMIT_WAIT_SECONDS = 15.0
DEFAULT_RETRY_AFTER_SECONDS = 1.0


def segment(value: str) -> str:
    """Quote a room or user ID for use as one path segment."""
    return quote(value, safe="")


class MatrixTransport:
    """Sends requests to one homeserver and returns the decoded JSON object of the answer."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            transport=transport,
        )
        self._token = token
        self._sleep = sleep
        self.calls = 0

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        token: str | None = None,
        authenticated: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One call to the chat server (waiting out its 429s), counted by how it ended."""
        try:
            body = self._request(
                method,
                path,
                json=json,
                params=params,
                token=token,
                authenticated=authenticated,
                timeout=timeout,
            )
        except ChatBackendError as exc:
            CALLS.labels(outcome=type(exc).__name__).inc()
            raise
        CALLS.labels(outcome="ok").inc()
        return body

    @sensitive_variables("headers", "token")
    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: dict[str, Any] | None,
        token: str | None,
        authenticated: bool,
        timeout: float | None,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        if authenticated:
            headers["Authorization"] = f"Bearer {token or self._token}"
        waited = 0.0
        while True:
            self.calls += 1
            try:
                response = self._http.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    headers=headers,
                    timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
                )
            except httpx.TimeoutException as exc:
                raise ChatServerUnavailable(
                    "The chat server did not answer in time. Please try again."
                ) from exc
            except httpx.TransportError as exc:
                raise ChatServerUnavailable(
                    "The chat server cannot be reached. Please try again in a few minutes."
                ) from exc
            except httpx.InvalidURL as exc:
                # An address built from what someone typed that no server would take.
                raise ChatInvalid("That is not something the chat server can look up.") from exc
            except httpx.HTTPError as exc:
                raise ChatServerUnavailable(
                    "The chat server sent an answer the portal cannot read. Please try again."
                ) from exc
            _let_go(response)
            if response.status_code != 429:
                return _decode(response)
            wait = _retry_after(response)
            if waited + wait > MAX_RATE_LIMIT_WAIT_SECONDS:
                raise ChatServerUnavailable(
                    "The chat server is busy and asked us to slow down. "
                    "Please try again in a minute.",
                    code="M_LIMIT_EXCEEDED",
                )
            log.info("Chat server rate limit on %s %s; waiting %.1fs", method, path, wait)
            self._sleep(wait)
            waited += wait

    def download(self, path: str, into: BinaryIO, *, limit: int) -> int:
        """Copy a file the chat server serves (media) into `into`, a piece at a time, up
        to `limit` bytes (ChatInvalid past it); how many bytes. Its errors as `request`'s."""
        self.calls += 1
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            with self._http.stream("GET", path, headers=headers) as response:
                if not response.is_success:
                    response.read()
                    _decode(response)  # raises what the error says
                size = 0
                for piece in response.iter_bytes():
                    size += len(piece)
                    if size > limit:
                        raise ChatInvalid(f"The file is larger than {limit} bytes.")
                    into.write(piece)
        except httpx.TimeoutException as exc:
            raise ChatServerUnavailable("The chat server did not send the file in time.") from exc
        except httpx.HTTPError as exc:
            raise ChatServerUnavailable("The chat server could not send the file.") from exc
        return size


def _let_go(response: httpx.Response) -> None:
    """httpx binds a response's stream back to the response, a reference cycle, so each
    answer's body waits for Python's cycle collector however soon it is done with. The body
    is read by now: letting the stream go frees the answer when its last use ends (an
    export reading a thousand pages holds two of them, not what the collector left)."""
    response.stream = httpx.ByteStream(b"")


def _retry_after(response: httpx.Response) -> float:
    try:
        body = response.json()
        millis = body.get("retry_after_ms") if isinstance(body, dict) else None
        if isinstance(millis, int | float) and millis >= 0:
            return millis / 1000
    except ValueError:
        pass
    header = response.headers.get("Retry-After", "")
    return float(header) if header.isdigit() else DEFAULT_RETRY_AFTER_SECONDS


def _decode(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, or JSON nested too deep to read
        body = None
    if response.is_success:
        if not isinstance(body, dict):
            raise ChatServerUnavailable(
                "The chat server sent an answer the portal cannot read. Please try again later."
            )
        return body
    code = body.get("errcode", "") if isinstance(body, dict) else ""
    detail = body.get("error", "") if isinstance(body, dict) else ""
    status = response.status_code
    if status >= 500:
        raise ChatServerUnavailable(code=code)
    if status in (401, 403):
        raise ChatServerDenied(detail, code=code)
    if status == 404:
        raise ChatNotFound(detail, code=code)
    if status == 409 or code == "M_ROOM_IN_USE":
        raise ChatConflict(detail, code=code)
    if status == 400:
        raise ChatInvalid(detail, code=code)
    raise ChatBackendError(detail, code=code)
