"""People who use the portal: chat users (who log in with their chat password) and
local accounts for portal administrators and auditors."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    # Chat IDs are up to 255 characters, and chat users' usernames are their chat IDs.
    username = models.CharField(
        "username",
        max_length=255,
        unique=True,
        error_messages={"unique": "A user with that username already exists."},
    )
    chat_id = models.CharField(
        "chat ID",
        max_length=255,
        unique=True,
        null=True,
        blank=True,
        help_text="The person's Matrix ID, such as @alice:example.org. Empty for local accounts.",
    )
    display_name = models.CharField(max_length=255, blank=True)
    is_portal_admin = models.BooleanField(
        "portal administrator",
        default=False,
        help_text="Sees and manages every category and room, and deletes rooms.",
    )
    is_auditor = models.BooleanField(
        "auditor", default=False, help_text="Reviews and exports the audit log."
    )

    @property
    def is_administrator(self) -> bool:
        return self.is_portal_admin or self.is_superuser

    @property
    def can_audit(self) -> bool:
        return self.is_auditor or self.is_administrator

    @property
    def label(self) -> str:
        return self.display_name or self.chat_id or self.username
