"""Sessions that follow the account: a lifetime (SESSION_COOKIE_AGE), an idle timeout,
an end set by an administrator for all of a person's sessions at once, and, for chat
users, the chat account itself: every ACCOUNT_CHECK_SECONDS a request asks the chat
server whether the account still exists and is active, and a deactivated one's sessions
all end (audited as `auth.session_ended` with the reason).

While the chat server cannot be asked, sessions go on and it is asked again on the next
request: the person could not chat either, and pages must not fail for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from accounts.models import User
from accounts.signals import audit_of
from rooms.backend import server_client
from rooms.backend.errors import ChatBackendError, ChatNotFound

SINCE, SEEN, CHECKED = "session_since", "session_seen", "account_checked"
# Noting when a session was last used writes the session: at most once a minute.
SEEN_EVERY = 60


@receiver(user_logged_in)
def begin(sender: object, request: HttpRequest, user: User, **kwargs: object) -> None:
    now = time.time()
    request.session[SINCE] = request.session[SEEN] = request.session[CHECKED] = now


def end_all(user: User, *, actor: User | None, reason: str) -> None:
    """End every session of this person, on every device, now."""
    user.sessions_ended_at = datetime.now(UTC)
    user.save(update_fields=["sessions_ended_at"])
    audit_of("auth.sessions_ended", user, actor=actor, after={"reason": reason})


class SessionPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if isinstance(user, User) and user.is_authenticated:
            reason = self.ended(request, user)
            if reason:
                self.end(request, user, reason)
        return self.get_response(request)

    def ended(self, request: HttpRequest, user: User) -> str:
        """Why this session has ended ("" if it goes on)."""
        session, now = request.session, time.time()
        since = float(session.setdefault(SINCE, now))
        if user.sessions_ended_at and since < user.sessions_ended_at.timestamp():
            return "All of this person's sessions were ended."
        seen = float(session.get(SEEN, since))
        if now - seen > settings.SESSION_IDLE_MINUTES * 60:
            return f"Unused for more than {settings.SESSION_IDLE_MINUTES} minutes."
        if now - seen > SEEN_EVERY:
            session[SEEN] = now
        if user.chat_id and now - float(session.get(CHECKED, since)) > (
            settings.ACCOUNT_CHECK_SECONDS
        ):
            try:
                gone = server_client().get_user(user.chat_id).deactivated
            except ChatNotFound:
                gone = True
            except ChatBackendError:
                return ""  # asked again on the next request
            session[CHECKED] = now
            if gone:
                end_all(user, actor=None, reason="The chat account was deactivated.")
                return "The chat account was deactivated."
        return ""

    def end(self, request: HttpRequest, user: User, reason: str) -> None:
        audit_of("auth.session_ended", user, request=request, actor=user, after={"reason": reason})
        request.session.flush()
        request.user = AnonymousUser()
        messages.info(request, f"Your session has ended: {reason} Please sign in again.")
