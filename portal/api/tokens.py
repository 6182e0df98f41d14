"""Tokens through the API: list your own (administrators: everyone's), revoke one, and
make one by signing in with a username and password (what `roomctl login` does) — the
same sign-in as the login page: the same failure limit, the same audit entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.errors import HttpError
from pydantic import ConfigDict

from accounts import tokens
from accounts.models import ApiToken
from portal.api.common import READ_ERRORS, WRITE_ERRORS, ApiRequest, Text, writes

router = Router(tags=["tokens"])


class TokenOut(Schema):
    id: int
    owner: str
    name: str
    scope: str
    starts_with: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _out(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.pk,
        "owner": token.user.username,
        "name": token.name,
        "scope": token.scope,
        "starts_with": token.shown,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


@router.get("", response={200: list[TokenOut]} | READ_ERRORS, summary="List tokens")
def token_list(request: ApiRequest, everyone: bool = False) -> list[dict[str, Any]]:
    """Your tokens; with `everyone=true`, every person's (administrators)."""
    owner = request.user
    return [_out(token) for token in tokens.tokens_of(owner, everyone=everyone)]


@router.delete("/{token_id}", response={200: TokenOut} | WRITE_ERRORS, summary="Revoke a token")
def token_revoke(request: ApiRequest, token_id: int) -> dict[str, Any]:
    """Revoke your token (administrators: anyone's); it stops working at once."""
    writes(request)
    return _out(tokens.token_revoke(actor=request.user, pk=token_id))


class SignIn(Schema):
    """A chat username (or a local account's) and its password, and the token to make."""

    model_config = ConfigDict(extra="forbid")

    username: Text = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=4096)
    name: Text = Field(min_length=1, max_length=100, description="What the token is for")
    scope: Literal["read", "write"] = "read"
    days: int = Field(30, ge=1, le=tokens.LONGEST_LIFE.days)


class TokenMade(TokenOut):
    secret: str = Field(description="The token itself: shown this once, kept only as a hash")


@router.post(
    "",
    auth=None,
    response={201: TokenMade} | WRITE_ERRORS,
    summary="Sign in for a token",
)
def token_sign_in(request: HttpRequest, given: SignIn) -> tuple[int, dict[str, Any]]:
    """Make a token for the person who signs in, with no browser: the login page's
    sign-in (the chat server checks a chat user's password), its failure limit (429 once
    it is reached) and its audit entries. The token is answered once, in `secret`."""
    # Past the failure limit, the failure-limit middleware (axes) answers 429 instead.
    user = authenticate(request, username=given.username, password=given.password)
    if user is None:
        raise HttpError(
            401,
            getattr(request, "login_refusal", "")
            or "That username and password do not match an account.",
        )
    # Signed in, as on the login page: audited, and the failure count starts again.
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    token, secret = tokens.token_create(
        actor=user,
        name=given.name,
        scope=given.scope,
        days=given.days,
    )
    return 201, _out(token) | {"secret": secret}
