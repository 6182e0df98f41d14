"""Logging in with chat-server credentials."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend
from django.http import HttpRequest

from accounts.models import User
from rooms.backend import chat_backend
from rooms.backend.errors import ChatServerDenied
from rooms.backend.records import is_chat_id


class ChatServerBackend(BaseBackend):
    """Checks the password with the chat server; the portal keeps no chat password or token."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not username or not password:
            return None
        if User.objects.filter(username=username, chat_id__isnull=True).exists():
            return None  # a local account: ModelBackend alone decides
        client = chat_backend()
        user_id = client.user_id_for(username)
        if not is_chat_id(user_id):
            return None
        try:
            principal = client.login(user_id, password)
        except ChatServerDenied:
            return None
        user, _ = User.objects.get_or_create(
            chat_id=principal.id, defaults={"username": principal.id}
        )
        if not user.is_active:
            return None
        if user.display_name != principal.display_name or user.has_usable_password():
            user.display_name = principal.display_name
            user.set_unusable_password()
            user.save(update_fields=["display_name", "password"])
        return user

    def get_user(self, user_id: int) -> User | None:
        return User.objects.filter(pk=user_id, is_active=True).first()
