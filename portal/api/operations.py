"""Long changes through the API: how far a change to many rooms got, room by room."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest
from ninja import Router, Schema

from accounts.models import User
from portal.api.common import READ_ERRORS
from rooms.models import Operation
from rooms.services.rooms import BULK

router = Router(tags=["operations"])


class OperationOut(Schema):
    id: str
    kind: str
    status: str
    done: int
    total: int
    results: list[dict[str, Any]]
    error: str


@router.get("/{operation_id}", response={200: OperationOut} | READ_ERRORS, summary="Poll")
def operation_get(request: HttpRequest, operation_id: uuid.UUID) -> dict[str, Any]:
    """A change to many rooms started with `background=true`: its own or, for
    administrators, anyone's."""
    viewer: User = request.user  # type: ignore[assignment]
    op = Operation.objects.filter(pk=operation_id, kind=BULK).first()
    if op is None or (op.actor_id != viewer.pk and not viewer.is_administrator):
        raise ObjectDoesNotExist("There is no such operation, or it is not yours.")
    return {
        "id": str(op.pk),
        "kind": op.kind,
        "status": op.status,
        "done": len(op.change["results"]),
        "total": len(op.change["rooms"]),
        "results": op.change["results"],
        "error": op.error,
    }
