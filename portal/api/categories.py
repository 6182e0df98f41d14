"""Categories through the API: the ones the token's owner may see, by name."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from portal.api.common import READ_ERRORS
from rooms.selectors.requests import categories_for_requests

router = Router(tags=["categories"])


class CategorySummary(Schema):
    id: str
    name: str
    description: str
    room_count: int


@router.get("", response={200: list[CategorySummary]} | READ_ERRORS, summary="List categories")
def category_list(request: HttpRequest) -> list[dict[str, Any]]:
    """The categories whose scope holds the token's owner (every one, for administrators)."""
    found = categories_for_requests(user=request.user)  # type: ignore[arg-type]
    return [
        {"id": c.id, "name": c.name, "description": c.description, "room_count": c.room_count}
        for c in sorted(found, key=lambda c: c.name.casefold())
    ]
