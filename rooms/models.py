"""The portal keeps no rooms (the chat server does), only what makes its forms safe."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RoomSubmission(models.Model):
    """One submitted create-room form, so posting it twice never makes a second room."""

    token = models.UUIDField(unique=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
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
