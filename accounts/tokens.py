"""Personal access tokens: made, listed and revoked by their owner (any of them by portal
administrators), checked on every API request, each use noted."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import ApiToken, User
from portal.audit import audit_record, audited
from portal.models import Outcome

LONGEST_LIFE = timedelta(days=366)


class TokenInvalid(Exception):
    """The token cannot be made as asked; the message says why."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_create(*, actor: User, name: str, scope: str, days: int) -> tuple[ApiToken, str]:
    """Make a token; returns it and its secret, which is shown this once."""
    with audited(
        "token.create",
        actor=actor,
        target_kind="token",
        target_label=name,
        after={"name": name, "scope": scope, "days": days},
    ) as audit_scope:
        if not 1 <= days <= LONGEST_LIFE.days:
            raise TokenInvalid(f"A token lasts 1 to {LONGEST_LIFE.days} days.")
        secret = ApiToken.PREFIX + secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=actor,
                    name=name.strip(),
                    scope=scope,
                    digest=digest(secret),
                    shown=secret[:10],
                    expires_at=timezone.now() + timedelta(days=days),
                )
        except IntegrityError:
            raise TokenInvalid(f"You already have a token called “{name}”.") from None
        audit_scope.target_id = str(token.pk)
        return token, secret


NO_SUCH_TOKEN = "There is no such token, or it is not yours."


class NoSuchToken(ObjectDoesNotExist):
    """A token that is not there and one that is someone else's are answered alike, so
    token IDs cannot be enumerated; both refusals are audited."""


def token_revoke(*, actor: User, pk: int) -> ApiToken:
    """Revoke a token: its owner's, or anyone's for an administrator."""
    token = ApiToken.objects.select_related("user").filter(pk=pk).first()
    if token is None or (token.user_id != actor.pk and not actor.is_administrator):
        audit_record(
            action="token.revoke",
            outcome=Outcome.DENIED,
            actor=actor,
            target_kind="token",
            target_id=str(pk),
            error=NO_SUCH_TOKEN
            + (" (someone else's token)" if token is not None else " (no such token)"),
        )
        missing = NoSuchToken(NO_SUCH_TOKEN)
        missing.audited = True  # type: ignore[attr-defined]  # recorded just now
        raise missing
    with audited("token.revoke", actor=actor, target_kind="token", target_id=str(pk)) as scope:
        scope.target_label = token.name
        scope.before = {"owner": token.user.username, "name": token.name}
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
        return token


def tokens_of(user: User, *, everyone: bool = False) -> QuerySet[ApiToken]:
    """A person's tokens (everyone's, for an administrator who asks), newest first."""
    tokens = ApiToken.objects.select_related("user").order_by("-created_at")
    if everyone:
        if not user.is_administrator:
            raise PermissionDenied("Only portal administrators see everyone's tokens.")
        return tokens
    return tokens.filter(user=user)


def token_user(secret: str) -> ApiToken | None:
    """The live token this secret is (not revoked, not expired, its owner active), with
    its use noted and counted in the current minute's window (`window_count`, this use
    included); None otherwise."""
    now = timezone.now()
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=digest(secret), revoked_at=None, expires_at__gt=now, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    window = now.replace(second=0, microsecond=0)
    used = ApiToken.objects.filter(pk=token.pk)
    if token.window_start == window:
        used.update(last_used_at=now, window_count=F("window_count") + 1)
        token.window_count += 1
    else:
        used.update(last_used_at=now, window_start=window, window_count=1)
        token.window_start, token.window_count = window, 1
    token.last_used_at = now
    return token
