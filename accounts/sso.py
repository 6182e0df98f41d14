"""Single sign-on through the homeserver: whatever SSO the chat server offers
(`m.login.sso`: OpenID Connect, SAML, CAS), the portal offers, with the same identity.

The portal sends the person to the homeserver's SSO redirect for one identity provider,
with a return address of its own that carries a one-time `state` kept in the person's
session. The homeserver signs them in with the provider and sends them back with a
login token, which the portal exchanges once (`m.login.token`) for their Matrix ID; the
chat session the exchange made is ended at once. Portal administrator, auditor and
compliance officer can follow a group claim of the provider, which the homeserver adds to
the login's answer (SSO_GROUPS_ATTRIBUTE, SSO_ADMIN_GROUP, SSO_AUDITOR_GROUP,
SSO_COMPLIANCE_GROUP).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.models import User
from portal.audit import audit_record
from portal.models import Outcome
from rooms.backend import configured_connection, server_client
from rooms.backend.errors import ChatBackendError

log = logging.getLogger(__name__)

SESSION_KEY = "sso"
PROVIDERS_CACHE_KEY = "sso-providers"
PROVIDERS_CACHE_SECONDS = 300
PROVIDERS_RETRY_SECONDS = 30
# The roles a claim can carry, by the portal's name for them, with their field.
CLAIMED_ROLES = {
    "administrator": "is_portal_admin",
    "auditor": "is_auditor",
    "compliance-officer": "is_compliance_officer",
}


@dataclass(frozen=True)
class Provider:
    id: str
    name: str


def providers() -> list[Provider]:
    """The identity providers the homeserver offers, read at most every five minutes (the
    login page asks on every view). None when the homeserver cannot be asked (asked again
    after 30 seconds): the password form still works."""
    known = cache.get(PROVIDERS_CACHE_KEY)
    if known is None:
        try:
            known = server_client().login_flows()
            keep_for = PROVIDERS_CACHE_SECONDS
        except ChatBackendError as exc:
            # Asked again in a while, not at every view: the login page must not wait on a
            # chat server that does not answer.
            log.warning("The chat server's sign-in methods could not be read: %s", exc)
            known, keep_for = [], PROVIDERS_RETRY_SECONDS
        cache.set(PROVIDERS_CACHE_KEY, known, keep_for)
    return [Provider(idp, name) for idp, name in known]


def safe_next(request: HttpRequest, wanted: str) -> str:
    """Where to land after signing in: an address of the portal's own, or its home; an
    address elsewhere is refused (and audited: a link that tried to lead away)."""
    if not wanted:
        return "/"
    if url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    audit_record(
        action="auth.redirect",
        outcome=Outcome.DENIED,
        request=request,
        target_kind="address",
        target_id=wanted[:255],
        target_label=wanted[:255],
        error="After signing in, people land on the portal's own pages only.",
    )
    return "/"


def start(request: HttpRequest, provider: Provider, wanted_next: str) -> str:
    """The homeserver's SSO address for this provider, with the portal's return address;
    the state it carries is kept in the session, to be matched once on return."""
    state = secrets.token_urlsafe(24)
    request.session[SESSION_KEY] = {
        "state": state,
        "next": safe_next(request, wanted_next),
        "provider": provider.id,
    }
    back = request.build_absolute_uri(reverse("sso_return")) + "?" + urlencode({"state": state})
    homeserver = settings.CHAT_SERVER_PUBLIC_URL or configured_connection().url
    return (
        f"{homeserver.rstrip('/')}/_matrix/client/v3/login/sso/redirect/{quote(provider.id)}"
        f"?{urlencode({'redirectUrl': back})}"
    )


def pending(request: HttpRequest, state: str) -> dict[str, str] | None:
    """The sign-in this session began with this state, taken (a state is used once)."""
    begun = request.session.pop(SESSION_KEY, None)
    if not isinstance(begun, dict) or not state:
        return None
    return begun if secrets.compare_digest(str(begun.get("state", "")), state) else None


def groups_of(attributes: Mapping[str, Any]) -> set[str] | None:
    """The provider's groups, as the homeserver added them to the login's answer (a list,
    or a JSON list in a string); None when the answer carries none."""
    value = attributes.get(settings.SSO_GROUPS_ATTRIBUTE)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [part.strip() for part in value.split(",")]
    if not isinstance(value, list):
        return None
    return {str(group) for group in value if str(group).strip()}


def follow_claims(user: User, groups: set[str] | None) -> None:
    """Portal administrator, auditor and compliance officer as the provider's groups say,
    where a group is configured for them: granted when the person is in it, taken away
    when they no longer are (a role granted by hand stays). Each change is audited."""
    wanted = {
        "administrator": settings.SSO_ADMIN_GROUP,
        "auditor": settings.SSO_AUDITOR_GROUP,
        "compliance-officer": settings.SSO_COMPLIANCE_GROUP,
    }
    from_claim = set(user.roles_from_sso)
    for role, group in wanted.items():
        if not group or groups is None:
            continue
        field = CLAIMED_ROLES[role]
        held, claimed = getattr(user, field), group in groups
        if claimed and not held:
            setattr(user, field, True)
            from_claim.add(role)
        elif not claimed and held and role in from_claim:
            setattr(user, field, False)
            from_claim.discard(role)
        else:
            continue
        audit_record(
            action=f"account.role_{'grant' if claimed else 'revoke'}",
            actor=user,
            target_kind="user",
            target_id=user.chat_id or user.username,
            target_label=user.label,
            before={role: not claimed},
            after={role: claimed, "source": f"single sign-on group “{group}”"},
        )
    user.roles_from_sso = sorted(from_claim)
    user.save(update_fields=[*CLAIMED_ROLES.values(), "roles_from_sso"])
