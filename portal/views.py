"""The shell: the landing page and the health endpoint."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from rooms.selectors import chat_server_reachable


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return redirect("rooms:categories")


@require_GET
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """For load balancers and monitoring: 200 when the database and chat server answer."""
    checks = {"database": "ok", "chat_server": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure means unhealthy
        checks["database"] = "unavailable"
    if not chat_server_reachable():
        checks["chat_server"] = "unavailable"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The portal's 400 page, with what was wrong (Django's own shows no reason)."""
    message = str(exception) if isinstance(exception, BadRequest) else ""
    return TemplateResponse(request, "400.html", {"exception": message}, status=400).render()
