"""Error pages and reports that never show a secret.

Django's debug page and the error mails list every local variable of every frame. The
chat client's frames hold the service account's token (a homeserver admin's), and
login frames a person's password, so the filter scrubs them always, DEBUG or not.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter

from rooms.backend.embedded import read_connection

BEARER = re.compile(r"(Bearer\s+)[^\s'\"]+", re.IGNORECASE)
SUBSTITUTE = SafeExceptionReporterFilter.cleansed_substitute


class Scrubbed:
    """A value shown in a report by its scrubbed representation."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def known_secrets() -> list[str]:
    """Every secret the portal holds that a frame could carry."""
    found = [settings.CHAT_SERVICE_TOKEN, settings.SECRET_KEY]
    found += list(settings.AUDIT_CHAIN_KEYS.values())
    connection = read_connection(settings.CHAT_EMBEDDED_DIR)
    if connection is not None:
        found.append(connection.token)
    return [secret for secret in found if secret and len(secret) >= 8]


def scrub(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret and every bearer token replaced."""
    for secret in secrets:
        text = text.replace(secret, SUBSTITUTE)
    return BEARER.sub(rf"\1{SUBSTITUTE}", text)


class SecretScrubbingFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CREDENTIAL", flags=re.I
    )

    def is_active(self, request: HttpRequest | None) -> bool:
        return True  # also under DEBUG: a debug page is still seen by people

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        secrets = known_secrets()
        cleaned: list[tuple[str, Any]] = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if isinstance(name, str) and self.hidden_settings.search(name):
                cleaned.append((name, SUBSTITUTE))
                continue
            try:
                text = repr(value)
            except Exception as exc:  # a broken __repr__ must not break the report
                text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
            cleaned.append((name, Scrubbed(scrub(text, secrets))))
        return cleaned


class RefusalsWithoutTraceback(logging.Filter):
    """A refusal (400, 403, 404, 405) is one log line, not a traceback: it is an answer
    the portal meant to give, and it is in the audit log already."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
