"""Log lines as operators read them: JSON (or plain text), each carrying the request ID
and the person of the request it was written in, and one line per request served."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

requests_log = logging.getLogger("portal.requests")


class RequestContext(logging.Filter):
    """Adds the request ID and the person to every log record made while a request is
    served (empty outside requests), for the formatter to write."""

    def filter(self, record: logging.LogRecord) -> bool:
        from portal.audit import current_request  # logging is set up before the models

        request = current_request.get()
        user = getattr(request, "user", None)
        record.request_id = getattr(request, "request_id", "")
        record.person = user.get_username() if user is not None and user.is_authenticated else ""
        return True


class RequestLogMiddleware:
    """One log line per request: method, path, status, duration (and, through the
    filter, the request ID and the person)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        requests_log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response


def log_config(fmt: str, level: str) -> dict[str, Any]:
    """LOGGING: JSON lines (the default) or plain text (LOG_FORMAT=text)."""
    formatters = {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(person)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "refusals_without_traceback": {"()": "portal.errors.RefusalsWithoutTraceback"},
            "request_context": {"()": "portal.logs.RequestContext"},
        },
        "formatters": {fmt: formatters[fmt]},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["request_context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own console handler would print each record a second time.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.request": {"filters": ["refusals_without_traceback"]},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }
