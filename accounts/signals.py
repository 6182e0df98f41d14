"""Every login, logout and failed login is an audit entry."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from portal.audit import audit_record
from portal.models import Outcome


def audit_of(action: str, user: Any, **fields: Any) -> None:
    """An entry about a person's account: its target is the person."""
    audit_record(
        action=action,
        target_kind="user",
        target_id=str(user.chat_id or user.username),
        target_label=user.label,
        **fields,
    )


@receiver(user_logged_in)
def audit_login(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    audit_of("auth.login", user, request=request, actor=user)


@receiver(user_logged_out)
def audit_logout(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    audit_of("auth.logout", user, request=request, actor=user)


@receiver(user_login_failed)
def audit_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username", ""))[:255]
    audit_record(
        action="auth.login",
        outcome=Outcome.DENIED,
        request=request,
        target_kind="user",
        target_id=username,
        target_label=username,
        # The portal's own reason, where it refused a sign-in the password allowed.
        error=getattr(request, "login_refusal", "")
        or "Wrong username or password, or too many failed attempts.",
    )
