"""`manage.py check` reports a misconfigured chat server before a person finds it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from portal.secrets import loose_modes
from rooms.backend import server_client
from rooms.backend.errors import ChatBackendError, ChatServerDenied, ChatServerUnavailable


@checks.register("chat_server")
def chat_server_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    # The embedded server is set up by the portal itself; only an existing homeserver,
    # named in the environment, can be misconfigured.
    if not settings.CHAT_SERVER_URL:
        return []
    client = server_client()
    try:
        user = client.whoami()
    except ChatServerDenied:
        return [
            checks.Error(
                "The chat server refused CHAT_SERVICE_TOKEN.",
                hint="Set CHAT_SERVICE_TOKEN to a valid access token of the service account.",
                id="portal.E001",
            )
        ]
    except ChatServerUnavailable as exc:
        # A warning, not an error: a homeserver that is down for a moment must not
        # stop migrations or the portal from starting.
        return [
            checks.Warning(
                f"The chat server at CHAT_SERVER_URL ({settings.CHAT_SERVER_URL}) cannot be "
                f"reached: {exc.detail}",
                hint="Check CHAT_SERVER_URL and that the homeserver is running.",
                id="portal.W002",
            )
        ]
    except ChatBackendError as exc:
        return [
            checks.Error(
                f"The server at CHAT_SERVER_URL does not answer like a Matrix homeserver: {exc}",
                hint="CHAT_SERVER_URL should be the homeserver's client API base URL.",
                id="portal.E003",
            )
        ]
    try:
        admin = client.is_server_admin()
    except ChatServerDenied:
        admin = False
    problems: list[checks.CheckMessage] = []
    if not user.endswith(f":{settings.CHAT_SERVER_NAME}"):
        problems.append(
            checks.Error(
                f"The service account {user} is not on CHAT_SERVER_NAME "
                f"({settings.CHAT_SERVER_NAME}).",
                hint="Set CHAT_SERVER_NAME to the homeserver's server_name.",
                id="portal.E004",
            )
        )
    if not admin:
        problems.append(
            checks.Error(
                f"The service account {user} is not a server administrator.",
                hint="Make it one: the portal uses Synapse's admin API.",
                id="portal.E005",
            )
        )
    try:
        module = client.rules_module()
    except ChatBackendError:
        module = None
    if module is None or module.get("service_user") != user:
        problems.append(
            checks.Warning(
                "The homeserver does not run the portal's module for this service account: "
                "chat clients can change rooms against the rules (the sync worker puts "
                "them back afterwards).",
                hint="Load rooms.chatserver.module.PortalRules in the homeserver's `modules` "
                "with service_user set to the service account (docs/deploy.md).",
                id="portal.W010",
            )
        )
    return problems


@checks.register("state_files")
def state_files_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The state folder holds the homeserver's secrets and the portal's keys."""
    loose = loose_modes(settings.STATE_DIR)
    if not loose:
        return []
    shown = "; ".join(loose[:5]) + (f"; and {len(loose) - 5} more" if len(loose) > 5 else "")
    return [
        checks.Error(
            f"Others than the owner can read the portal's state folder: {shown}.",
            hint=f"Run: chmod -R go-rwx {settings.STATE_DIR} (the portal also does it at start).",
            id="portal.E006",
        )
    ]
