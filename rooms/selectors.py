"""Reads from the chat server, in the portal's words, for the person asking."""

from __future__ import annotations

from accounts.models import User
from rooms.backend import chat_backend
from rooms.backend.records import CategorySummary


def categories_with_create_rights(*, user: User) -> list[CategorySummary]:
    """The categories in which this person may create rooms; administrators may in all."""
    client = chat_backend()
    if user.is_administrator:
        return [category.summary for category in client.list_categories()]
    if not user.chat_id:
        return []
    return client.find_categories_with_create_rights(user.chat_id)
