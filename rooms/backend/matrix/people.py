"""People on the chat server: logins, lookups, search."""

from __future__ import annotations

import logging
from typing import Any

from django.views.decorators.debug import sensitive_variables

from rooms.backend.errors import ChatBackendError, ChatInvalid, ChatNotFound, ChatServerDenied
from rooms.backend.matrix.base import ADMIN, CLIENT, MatrixBase
from rooms.backend.matrix.transport import segment
from rooms.backend.records import LOCALPART, Principal

log = logging.getLogger(__name__)
# What every login answer holds; anything else was added by the homeserver's SSO.
LOGIN_ANSWER = {"user_id", "access_token", "device_id", "home_server", "well_known",
                "expires_in_ms", "refresh_token"}  # fmt: skip


class PeopleOperations(MatrixBase):
    def is_server_admin(self) -> bool:
        """Whether the service account is a server administrator."""
        body = self.http.request("GET", f"{ADMIN}/v1/users/{segment(self.service_user)}/admin")
        return bool(body.get("admin"))

    def user_id_for(self, name: str) -> str:
        """The full chat ID for a login name ("alice" or "@alice:server"). What is neither
        (`+eng:server`, `bob smith`) is given back as it is, for the caller's check to call
        it not a chat ID, rather than made into one (`@+eng:server:server`)."""
        name = name.strip()
        if name.startswith("@") or not LOCALPART.fullmatch(name.lower()):
            return name
        return f"@{name.lower()}:{self.server_name}"

    @sensitive_variables("password")
    def login(self, username: str, password: str) -> Principal:
        """Check a person's chat-server password; the session made to check it is ended at once.

        The portal keeps no chat password or token of the person.
        """
        return self._log_in(
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": username},
                "password": password,
            }
        )[0]

    @sensitive_variables("login_token")
    def login_with_token(self, login_token: str) -> tuple[Principal, dict[str, Any]]:
        """Who a single sign-on's login token is for (the homeserver takes each token
        once), with what else the homeserver's SSO added to the login's answer (its
        `extra_attributes`: the provider's groups, where it is so configured). The
        session the token made is ended at once."""
        return self._log_in({"type": "m.login.token", "token": login_token})

    def login_flows(self) -> list[tuple[str, str]]:
        """The identity providers the homeserver signs people in through (its
        `m.login.sso` flow): (ID, name) each."""
        body = self.http.request("GET", f"{CLIENT}/login", authenticated=False)
        flows = body.get("flows")
        providers = []
        for flow in flows if isinstance(flows, list) else []:
            if not isinstance(flow, dict) or flow.get("type") != "m.login.sso":
                continue
            for idp in flow.get("identity_providers") or []:
                if isinstance(idp, dict) and isinstance(idp.get("id"), str):
                    providers.append((idp["id"], str(idp.get("name") or idp["id"])))
        return providers

    @sensitive_variables("credentials", "body", "token")
    def _log_in(self, credentials: dict[str, Any]) -> tuple[Principal, dict[str, Any]]:
        body = self.http.request(
            "POST",
            f"{CLIENT}/login",
            json=credentials | {"initial_device_display_name": "Room portal login check"},
            authenticated=False,
        )
        user_id, token = body.get("user_id"), body.get("access_token")
        if not isinstance(user_id, str) or not isinstance(token, str):
            raise ChatServerDenied("The chat server did not confirm the login.")
        try:
            profile = self.http.request("GET", f"{CLIENT}/profile/{segment(user_id)}", token=token)
        except ChatNotFound:
            profile = {}
        finally:
            self._end_login_check(user_id, token, str(body.get("device_id") or ""))
        principal = Principal(id=user_id, display_name=str(profile.get("displayname") or ""))
        extra = {k: v for k, v in body.items() if k not in LOGIN_ANSWER}
        return principal, extra

    @sensitive_variables("token")
    def _end_login_check(self, user_id: str, token: str, device_id: str) -> None:
        """End the session a login check made: by logging it out, or else by removing its
        device as the service account, so no live device is left on the person's account."""
        try:
            self.http.request("POST", f"{CLIENT}/logout", json={}, token=token)
            return
        except ChatBackendError as exc:
            if not device_id:
                raise
            log.warning("Logging out the login check of %s failed (%s)", user_id, exc)
        self.http.request(
            "DELETE", f"{ADMIN}/v2/users/{segment(user_id)}/devices/{segment(device_id)}"
        )

    def get_user(self, user_id: str) -> Principal:
        """One person on this chat server, by chat ID."""
        if not user_id.endswith(f":{self.server_name}"):
            raise ChatNotFound(f"{user_id} is not a person on this chat server.")
        try:
            body = self.http.request("GET", f"{ADMIN}/v2/users/{segment(user_id)}")
        except ChatInvalid as exc:  # malformed IDs are answered with 400
            raise ChatNotFound(f"{user_id} is not a valid chat ID.") from exc
        return _principal(body)

    def search_users(self, term: str, *, limit: int = 20) -> list[Principal]:
        """People whose chat ID or display name contains the term."""
        body = self.http.request(
            "GET",
            f"{ADMIN}/v2/users",
            params={"name": term, "limit": limit, "deactivated": "false", "guests": "false"},
        )
        users = body.get("users", [])
        return [
            _principal(user)
            for user in users
            if isinstance(user, dict) and user.get("name") != self.service_user
        ]

    def ensure_user(
        self, localpart: str, *, password: str, display_name: str, email: str = ""
    ) -> Principal:
        """Create a person on the chat server, or reset their password and name (demo data)."""
        user_id = self.user_id_for(localpart)
        body = {"password": password, "displayname": display_name, "logout_devices": False}
        if email:
            body["threepids"] = [{"medium": "email", "address": email}]
        body = self.http.request("PUT", f"{ADMIN}/v2/users/{segment(user_id)}", json=body)
        return _principal(body)

    def provision_user(self, localpart: str, *, display_name: str) -> Principal:
        """Make sure a person of the directory has a chat account, with the directory's
        name; no password: they sign in through the directory or single sign-on."""
        user_id = self.user_id_for(localpart)
        body = {"displayname": display_name, "logout_devices": False}
        body = self._again(
            lambda: self.http.request("PUT", f"{ADMIN}/v2/users/{segment(user_id)}", json=body)
        )
        return _principal(body)


def _principal(body: dict[str, Any]) -> Principal:
    user_id = body.get("name") or body.get("user_id")
    if not isinstance(user_id, str):
        raise ChatBackendError("The chat server sent a person the portal cannot read.")
    return Principal(
        id=user_id,
        display_name=str(body.get("displayname") or ""),
        deactivated=bool(body.get("deactivated", False)),
        emails=tuple(
            str(pid.get("address"))
            for pid in body.get("threepids") or []
            if isinstance(pid, dict) and pid.get("medium") == "email" and pid.get("address")
        ),
    )
