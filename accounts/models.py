"""People who use the portal: chat users (who log in with their chat password) and
local accounts for portal administrators and auditors."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

LOCAL_NAME_LIKE_CHAT_ID = (
    "A local account's username cannot start with “@”: names like that are chat IDs, "
    "which chat users sign in with. Choose a plain name, such as “admin2”."
)


def looks_like_chat_id(username: str) -> bool:
    """Whether a username is spelled like a chat ID (a local account may not be)."""
    return username.strip().startswith("@")


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
    is_compliance_officer = models.BooleanField(
        "compliance officer",
        default=False,
        help_text="Reads and exports rooms' history for legal review (every read is audited).",
    )
    # The roles the single sign-on's group claim granted (accounts.sso.follow_claims),
    # taken away again when the claim no longer carries them; roles granted by hand stay.
    roles_from_sso = models.JSONField(default=list, blank=True)
    # Every session begun before this moment has ended (an administrator ended them, or
    # the chat account was found deactivated).
    sessions_ended_at = models.DateTimeField(null=True, blank=True)

    @property
    def is_administrator(self) -> bool:
        return self.is_portal_admin or self.is_superuser

    @property
    def can_read_history(self) -> bool:
        return self.is_compliance_officer or self.is_administrator

    @property
    def can_audit(self) -> bool:
        return self.is_auditor or self.is_administrator

    @property
    def label(self) -> str:
        return self.display_name or self.chat_id or self.username


class ApiToken(models.Model):
    """A personal access token for the API and `roomctl`: named, read-only or read-write,
    with an expiry; only its SHA-256 is stored (the token is shown once, when made)."""

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write"

    PREFIX = "rp_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    digest = models.CharField(max_length=64, unique=True)
    shown = models.CharField(max_length=16)  # the token's first characters, to recognise it
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Requests in the current minute (`window_start`), for the rate limit.
    window_start = models.DateTimeField(null=True, blank=True)
    window_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=models.Q(revoked_at=None),
                name="one_live_token_per_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.name}"

    @property
    def writes(self) -> bool:
        return self.scope == self.Scope.WRITE


class IdempotentAnswer(models.Model):
    """The answer an API create gave to one `Idempotency-Key` of one person: the same key
    asked again (after a lost answer) gets this answer, and nothing is made twice."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    path = models.CharField(max_length=255)
    # SHA-256 of the request's body (its JSON in canonical form): the key is bound to it.
    request_digest = models.CharField(max_length=64, blank=True)
    status = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_answer_per_key")]

    def __str__(self) -> str:
        return f"{self.user}: {self.key}"
