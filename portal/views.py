"""The shell: the landing page, health (liveness and readiness) and metrics."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import redirect
from django.template.loader import get_template
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from portal.metrics import exposition
from rooms.enforcement import open_breaches
from rooms.jobs import JOBS
from rooms.selectors.rooms import chat_server_reachable
from rooms.services.directory import directory_state
from rooms.sync import STALE_AFTER, index_age, worker_state


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return redirect("categories:list")


@require_GET
@never_cache
def live(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers (nothing else is asked, so a slow database or chat
    server never gets a healthy process restarted)."""
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for the scraper's addresses only."""
    token = settings.METRICS_TOKEN
    bearer = request.headers.get("Authorization", "")
    by_token = bool(token) and hmac.compare_digest(bearer.encode(), f"Bearer {token}".encode())
    if not by_token and request.META.get("REMOTE_ADDR") not in settings.METRICS_ALLOWED_ADDRESSES:
        raise PermissionDenied("Metrics are for the monitoring system.")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


@require_GET
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Readiness, for load balancers and monitoring: 200 when the database and chat
    server answer and the room index is not stale (its sync worker heard from the server
    in the last minute, or has not started yet). Also told, not judged: rooms outside the
    rules, the sync worker (who leads; how often it died and was started again), and the
    directory's last read (a directory that is down changes nothing)."""
    checks = {"database": "ok", "chat_server": "ok", "index": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure means unhealthy
        checks["database"] = "unavailable"
    if not chat_server_reachable():
        checks["chat_server"] = "unavailable"
    age = index_age() if checks["database"] == "ok" else None
    if age is not None and age >= STALE_AFTER:
        checks["index"] = "stale"
    healthy = all(value == "ok" for value in checks.values())
    # Rooms whose state on the chat server breaks the rules (not a reason to take the
    # portal out of a load balancer: counted, for monitoring).
    breaches = open_breaches() if checks["database"] == "ok" else None
    worker = worker_state() if checks["database"] == "ok" else None
    runner = worker_state(JOBS) if checks["database"] == "ok" else None
    followed = directory_state() if checks["database"] == "ok" else None
    return JsonResponse(
        {
            "status": "ok" if healthy else "degraded",
            **checks,
            "open_breaches": breaches,
            "sync_worker": worker,
            "job_runner": runner,
            "directory": followed,
        },
        status=200 if healthy else 503,
    )


def _error_page(
    request: HttpRequest, template: str, status: int, message: str = ""
) -> HttpResponse:
    response = TemplateResponse(request, template, {"exception": message}, status=status)
    response.full_page_error = True  # type: ignore[attr-defined]  # see HtmxContractMiddleware
    return response.render()


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The portal's 400 page, with what was wrong (Django's own shows no reason)."""
    message = str(exception) if isinstance(exception, BadRequest) else ""
    return _error_page(request, "400.html", 400, message)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error_page(request, "403.html", 403, str(exception))


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    # The portal's own reasons are for people; Django's (an unmatched URL's resolver
    # details, "No AuditEntry matches the given query.") are for developers.
    reason = exception.args[0] if isinstance(exception, Http404) and exception.args else ""
    ours = isinstance(reason, str) and not reason.endswith("matches the given query.")
    return _error_page(request, "404.html", 404, reason if ours else "")


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page, rendered without the request's context: whatever failed stays out."""
    response = HttpResponseServerError(get_template("500.html").render())
    response.full_page_error = True  # type: ignore[attr-defined]
    return response
