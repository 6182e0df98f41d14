"""Logging in with chat-server credentials."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import BaseBackend, ModelBackend
from django.http import HttpRequest

from accounts import sso
from accounts.models import User
from rooms.backend import server_client
from rooms.backend.errors import ChatServerDenied
from rooms.backend.records import Principal, is_chat_id


def canonical_login(raw: str) -> str:
    """One spelling per person: "PAUL", "Paul" and "@paul:server" are all "paul".

    Failed logins are counted, and logins made, under this name, so another spelling
    gets no fresh set of guesses. Chat IDs of this server become their localpart; chat
    IDs of other servers stay whole; everything is compared in lower case.
    """
    name = raw.strip().lower()
    server = (settings.CHAT_SERVER_NAME or settings.CHAT_EMBEDDED_SERVER_NAME).lower()
    if name.startswith("@") and name.endswith(f":{server}"):
        return name[1 : -len(server) - 1]
    return name


def lockout_username(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str:
    """What django-axes counts failures against (AXES_USERNAME_CALLABLE)."""
    raw = (credentials or {}).get("username")
    if raw is None and request is not None:
        raw = request.POST.get("username", "")
    return canonical_login(str(raw or ""))


NAME_TAKEN_BY_LOCAL = (
    "Your chat account cannot sign in to the portal: a local account has your chat ID as "
    "its name. Ask a portal administrator to rename that local account."
)


def refuse_login(request: HttpRequest | None, reason: str) -> None:
    """A sign-in the portal refuses for a reason of its own: the reason is what the login
    form says (instead of "wrong password") and what its audit entry records."""
    if request is not None:
        request.login_refusal = reason  # type: ignore[attr-defined]  # read by LoginForm


def _local_account(username: str) -> User | None:
    return User.objects.filter(username__iexact=username, chat_id__isnull=True).first()


class LocalAccountBackend(ModelBackend):
    """Local accounts (administrators, auditors) by their username in any letter case."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not username or not password:
            return None
        user = _local_account(canonical_login(username))
        if user is None:
            User().set_password(password)  # the same time spent as for a real account
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


class ChatServerBackend(BaseBackend):
    """Checks the password with the chat server; the portal keeps no chat password or token."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not username or not password:
            return None
        username = canonical_login(username)
        if _local_account(username) is not None:
            return None  # a local account: LocalAccountBackend alone decides
        client = server_client()
        user_id = client.user_id_for(username)
        if not is_chat_id(user_id):
            return None
        try:
            principal = client.login(user_id, password)
        except ChatServerDenied:
            return None
        return chat_account(request, principal)

    def get_user(self, user_id: int) -> User | None:
        return User.objects.filter(pk=user_id, is_active=True).first()


SSO_REFUSED = (
    "The single sign-on did not finish: the chat server did not accept its login token "
    "(used already, or expired). Sign in again."
)


class SingleSignOnBackend(ChatServerBackend):
    """A login token of the homeserver's single sign-on (`accounts.sso`), exchanged once
    for the person's Matrix ID; roles follow the provider's groups where so configured."""

    def authenticate(  # type: ignore[override]  # takes a login token, not a password
        self, request: HttpRequest | None, login_token: str | None = None, **kwargs: Any
    ) -> User | None:
        if not login_token:
            return None
        try:
            principal, attributes = server_client().login_with_token(login_token)
        except ChatServerDenied:
            refuse_login(request, SSO_REFUSED)
            return None
        user = chat_account(request, principal)
        if user is not None:
            sso.follow_claims(user, sso.groups_of(attributes))
        return user


def chat_account(request: HttpRequest | None, principal: Principal) -> User | None:
    """The portal account of a chat user the chat server has just vouched for."""
    if User.objects.filter(username=principal.id, chat_id__isnull=True).exists():
        # A local account took this chat ID as its name (made before such names were
        # refused): the chat user cannot have their account until it is renamed.
        refuse_login(request, NAME_TAKEN_BY_LOCAL)
        return None
    user, _ = User.objects.get_or_create(chat_id=principal.id, defaults={"username": principal.id})
    if not user.is_active:
        return None
    if user.display_name != principal.display_name or user.has_usable_password():
        user.display_name = principal.display_name
        user.set_unusable_password()
        user.save(update_fields=["display_name", "password"])
    return user
