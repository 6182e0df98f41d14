"""Request IDs for the audit log, and a clear page when the chat server fails."""

from __future__ import annotations

import ipaddress
import logging
import uuid
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers
from django_htmx.http import reswap, retarget

from portal.audit import audit_missing, audit_unrecorded, current_request
from rooms.backend.errors import ChatBackendError, ChatServerUnavailable
from rooms.selectors import NotFound

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


class ClientAddressMiddleware:
    """The client's address, in REMOTE_ADDR for everything after (the audit log, login
    throttling, /metrics): the connection's own address, or, when the connection comes
    from one of TRUSTED_PROXIES, the nearest address in X-Forwarded-For that is not a
    trusted proxy (read from the right: the left part is whatever the client sent)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        trusted = set(settings.TRUSTED_PROXIES)
        if request.META.get("REMOTE_ADDR") in trusted:
            hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            for hop in reversed([h.strip() for h in hops]):
                if hop in trusted:
                    continue
                if _an_address(hop):
                    request.META["REMOTE_ADDR"] = hop
                break
        return self.get_response(request)


def _an_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


class RequestIdMiddleware:
    """Gives every request an ID that its audit entries share, and returns it to the client."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = uuid.uuid4().hex  # type: ignore[attr-defined]
        token = current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(token)
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response


class ChatServerErrorMiddleware:
    """Turns a chat server failure that no view handled into a clear page, never a 500;
    and records every refusal that no service recorded."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, NotFound | Http404):
            # Asked to change something not there, or not visible: refused alike, and a
            # trace left of the probe.
            audit_missing(request, exception)
            if isinstance(exception, NotFound):
                raise Http404(str(exception)) from exception
            return None
        if isinstance(exception, PermissionDenied):
            audit_unrecorded(request, exception)
            return None  # Django answers with the 403 page
        if not isinstance(exception, ChatBackendError):
            return None
        audit_unrecorded(request, exception)
        log.warning("Chat server error on %s: %s", request.path, exception)
        unavailable = isinstance(exception, ChatServerUnavailable)
        response = TemplateResponse(
            request,
            "portal/chat_unavailable.html",
            {"detail": exception.detail, "unavailable": unavailable},
            status=503 if unavailable else 502,
        )
        response.full_page_error = True  # type: ignore[attr-defined]
        return response.render()


class HtmxContractMiddleware:
    """The htmx side of every answer.

    - `Vary: HX-Request` on every response: one URL may answer a page or a fragment, and
      a cache must not hand one to the other.
    - An error *page* (the portal's 400/403/404/500 pages, the chat-server page) answered
      to an htmx request replaces the whole body, never the small target the request
      aimed at, so the page stays whole (one heading, one navigation).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        patch_vary_headers(response, ("HX-Request",))
        if getattr(request, "htmx", False) and getattr(response, "full_page_error", False):
            retarget(response, "body")
            reswap(response, "innerHTML")
        return response


class ApiProblemMiddleware:
    """Every error answer under /api/v1/ is problem details (RFC 9457), also those no API
    operation made: an unknown address (404), a method the address does not take (405,
    with `Allow`), the sign-in's failure limit (429, with `Retry-After`), a failure of the
    portal (500). Scripts read one
    shape, never an HTML page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            not request.path.startswith("/api/v1/")
            or response.status_code < 400
            or response.get("Content-Type", "").startswith(PROBLEM)
        ):
            return response
        status = response.status_code
        body = {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": _problem_detail(request, response),
        }
        answer = JsonResponse(body, status=status, content_type=PROBLEM)
        for header in ("Allow", "Retry-After", "WWW-Authenticate", "Vary"):
            if header in response:
                answer[header] = response[header]
        if status == 429 and "Retry-After" not in answer:  # the sign-in's failure limit
            answer["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
        return answer


class RateLimitHeadersMiddleware:
    """Every answer to a token says its rate limit: `RateLimit-Limit`, `-Remaining` and
    `-Reset` (seconds until the count starts again), so scripts can pace themselves."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        rate = getattr(request, "rate_limit", None)
        if rate is not None:
            response["RateLimit-Limit"] = str(rate.limit)
            response["RateLimit-Remaining"] = str(rate.remaining)
            response["RateLimit-Reset"] = str(rate.reset)
        return response


def _problem_detail(request: HttpRequest, response: HttpResponse) -> str:
    status = response.status_code
    if status == 404:
        return f"There is no {request.path} in the API: GET /api/v1/docs lists its addresses."
    if status == 405:
        return f"{request.path} does not take {request.method}; it takes {response['Allow']}."
    if status == 429:
        minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
        return f"Too many failed sign-ins: try again in {minutes} minutes."
    if status >= 500:
        request_id = getattr(request, "request_id", "")
        return (
            f"The portal failed on this request (request ID {request_id}): read the "
            "resource again before sending it again, it may have been changed."
        )
    return HTTPStatus(status).description
