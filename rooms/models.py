"""The portal keeps no rooms (the chat server does), only what makes its forms safe."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class RoomLock(models.Model):
    """One row per room or category that someone changed: changes take its row lock, so
    one writer at a time acts on it, and a form's version is compared under the lock."""

    target_id = models.CharField(max_length=255, primary_key=True)

    def __str__(self) -> str:
        return self.target_id


class RoomSubmission(models.Model):
    """One submitted create-room form, so posting it twice never makes a second room."""

    token = models.UUIDField(unique=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Whose room it is: the actor, or the requester when an approver creates it. Only a
    # post for the same owner gets the earlier room back.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    room_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.token} → {self.room_id or 'in progress'}"


class BulkRun(models.Model):
    """A pasted list of people being given a role, applied a chunk at a time.

    Each line keeps its own fate and result, so a run interrupted by the chat server can
    be resumed without doing anything twice; its audit entries share `request_id`.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        INTERRUPTED = "interrupted", "Interrupted"
        DONE = "done", "Done"

    room_id = models.CharField(max_length=255)
    role = models.CharField(max_length=16)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    request_id = models.CharField(max_length=64)
    # [{"line": "...", "user_id": "...", "fate": "add"|..., "result": ""|"added"|...}]
    lines = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.role} for {len(self.lines)} lines in {self.room_id} ({self.status})"

    @property
    def to_apply(self) -> list[dict]:
        return [line for line in self.lines if line["fate"] == "add" and not line["result"]]

    @property
    def progress(self) -> tuple[int, int]:
        wanted = [line for line in self.lines if line["fate"] == "add"]
        return sum(1 for line in wanted if line["result"]), len(wanted)


class RoomRequest(models.Model):
    """Someone without create rights asking for a room; a Creator of the category decides.

    pending → approved → created; pending → declined / cancelled / expired. An approved
    request whose room could not be created stays approved, with the error, until retried.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved, room not created yet"
        CREATED = "created", "Room created"
        DECLINED = "declined", "Declined"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    token = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_requests"
    )
    category_id = models.CharField(max_length=255, db_index=True)
    category_label = models.CharField(max_length=512)
    name = models.CharField(max_length=256)
    description = models.CharField(max_length=256, blank=True)
    privacy = models.CharField(max_length=16)
    auditorium = models.BooleanField(default=False)
    invitations = models.CharField(max_length=16)
    justification = models.TextField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    room_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display()})"
