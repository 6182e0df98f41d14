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
