"""`createsuperuser`, refusing a local username that looks like a chat ID.

Chat users' accounts are named by their chat ID (made at their first sign-in); a local
account named "@carol:example.org" would take that name from Carol, and her sign-in
would fail. Local usernames therefore never start with "@".
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management.commands import createsuperuser

from accounts.models import LOCAL_NAME_LIKE_CHAT_ID, looks_like_chat_id


class Command(createsuperuser.Command):
    def _validate_username(self, username: str, verbose_field_name: str, database: str) -> Any:
        if looks_like_chat_id(username):
            return LOCAL_NAME_LIKE_CHAT_ID
        # django-stubs leave this helper of the command out.
        return super()._validate_username(username, verbose_field_name, database)  # type: ignore[misc]
