"""Tokens through the API: list your own (administrators: everyone's) and revoke one.
Making a token is done on its page, where it is shown once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from accounts import tokens
from accounts.models import ApiToken, User
from portal.api.common import READ_ERRORS, WRITE_ERRORS, writes

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
def token_list(request: HttpRequest, everyone: bool = False) -> list[dict[str, Any]]:
    """Your tokens; with `everyone=true`, every person's (administrators)."""
    owner: User = request.user  # type: ignore[assignment]
    return [_out(token) for token in tokens.tokens_of(owner, everyone=everyone)]


@router.delete("/{token_id}", response={200: TokenOut} | WRITE_ERRORS, summary="Revoke a token")
def token_revoke(request: HttpRequest, token_id: int) -> dict[str, Any]:
    """Revoke your token (administrators: anyone's); it stops working at once."""
    writes(request)
    return _out(tokens.token_revoke(actor=request.user, pk=token_id))  # type: ignore[arg-type]
