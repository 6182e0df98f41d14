"""The request as the portal's views see it, for the type checker."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from accounts.models import User


class HtmxHttpRequest(HttpRequest):
    """A request after the portal's middleware: htmx details, its ID, a signed-in user
    (every view but login and health requires one)."""

    htmx: HtmxDetails
    request_id: str
    user: User
