"""The audit log: one append-only entry for every action taken through the portal."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class Outcome(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    DENIED = "denied", "Denied"
    FAILED = "failed", "Failed"
    # A change that failed part-way: put back as it was, or left part-applied (and listed
    # among unfinished operations, with what was applied).
    UNDONE = "undone", "Undone"
    PARTIAL = "partial", "Partly applied"


class AppendOnlyError(Exception):
    """Audit entries are never changed or removed once written."""


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit entries cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit entries cannot be deleted.")


class AuditEntry(models.Model):
    created_at = models.DateTimeField(db_index=True)
    # Not constrained and never nulled: deleting a user must not change an audit row
    # (the database refuses any UPDATE). The copies below say who it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    # Copies of who acted, kept when the user is deleted.
    actor_username = models.CharField(max_length=255, blank=True)
    actor_chat_id = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_kind = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=255, blank=True, db_index=True)
    target_label = models.CharField(max_length=512, blank=True)
    category_id = models.CharField(max_length=255, blank=True)
    category_label = models.CharField(max_length=512, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    # How it was asked for when not through the pages: "api: <token's name>".
    via = models.CharField(max_length=128, blank=True, default="")
    # The hash chain: each entry's hash covers its fields and the previous entry's hash,
    # so an edited, inserted or removed row breaks the chain where it happened.
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)
    # Which chain key sealed it (settings.AUDIT_CHAIN_KEYS); empty: plain SHA-256, from
    # before the chain was keyed.
    key_id = models.CharField(max_length=32, blank=True, default="")

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        # Keyset pages walk the id; each filter narrows an index that ends in it.
        indexes = [
            models.Index(fields=["outcome", "id"], name="audit_outcome_id"),
            models.Index(fields=["action", "id"], name="audit_action_id"),
            models.Index(fields=["actor_username", "id"], name="audit_actor_id"),
            models.Index(fields=["category_id", "id"], name="audit_category_id"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_username} {self.action} {self.outcome}"
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit entries cannot be deleted.")
