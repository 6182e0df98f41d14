"""Add-ins through the API: the register (administrators keep it, everyone reads it),
and a room's Managers attaching one to their room or taking it away."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from portal.api.common import READ_ERRORS, WRITE_ERRORS, ApiRequest, Text, writes
from portal.api.rooms import RoomOut, room_out
from rooms.models import AddInEntry
from rooms.selectors.addins import register
from rooms.selectors.rooms import room_for_viewer
from rooms.services import addins as addin_services
from rooms.services import rooms as room_services

router = Router(tags=["add-ins"])


class AddInOut(Schema):
    id: int
    name: str
    url: str
    category_ids: list[str] = Field(description="The categories whose rooms may use it")
    rooms: int = Field(description="How many rooms show it now")


class AddInIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=100)
    url: Text = Field(min_length=1, max_length=2000, description="https://…")
    category_ids: list[Text] = Field(min_length=1, max_length=1000)


class Removed(Schema):
    applied: bool
    rooms: list[str] = Field(description="The rooms it is (or would be) taken out of")
    operation: str | None = Field(None, description="Poll GET /api/v1/operations/{operation}")


def _out(entry: AddInEntry, rooms: int) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "name": entry.name,
        "url": entry.url,
        "category_ids": entry.category_ids,
        "rooms": rooms,
    }


@router.get("", response={200: list[AddInOut]} | READ_ERRORS, summary="List the add-ins")
def addin_list(request: ApiRequest) -> list[dict[str, Any]]:
    """The register, by name."""
    return [_out(shown.entry, shown.rooms) for shown in register()]


@router.post("", response={201: AddInOut} | WRITE_ERRORS, summary="Register an add-in")
def addin_create(request: ApiRequest, new: AddInIn) -> tuple[int, dict[str, Any]]:
    """An add-in for the rooms of these categories (administrators); its address is
    https:// (a page on this machine only where the set-up allows it: the demo)."""
    writes(request)
    entry = addin_services.addin_register(actor=request.user, **new.model_dump())
    return 201, _out(entry, 0)


@router.delete(
    "/{addin_id}",
    response={200: Removed, 202: Removed, 204: None} | WRITE_ERRORS,
    summary="Remove an add-in",
)
def addin_delete(
    request: ApiRequest, response: HttpResponse, addin_id: int, dry_run: bool = False
) -> tuple[int, dict[str, Any] | None]:
    """Out of the register and out of every room showing it, as one operation of the
    job runner's (202, to poll); 204 when no room showed it. With `dry_run=true`, the
    rooms it would be taken out of."""
    if dry_run:
        addin_services.removal_check(actor=request.user, add_in_id=addin_id)
        rooms = addin_services.rooms_showing(addin_id)
        return 200, {"applied": False, "rooms": rooms}
    writes(request)
    rooms, op = addin_services.addin_remove(actor=request.user, add_in_id=addin_id)
    if op is None:
        return 204, None
    response["Location"] = f"/api/v1/operations/{op.pk}"
    return 202, {"applied": True, "rooms": rooms, "operation": str(op.pk)}


@router.put(
    "/{addin_id}/rooms/{room_id}",
    response={200: RoomOut} | WRITE_ERRORS,
    summary="Show an add-in in a room",
)
def addin_attach(request: ApiRequest, addin_id: int, room_id: str) -> dict[str, Any]:
    """The room's Managers: an add-in its category may use (the same again changes
    nothing)."""
    room, _ = room_for_viewer(user=request.user, room_id=room_id)
    writes(request)
    return room_out(
        room_services.room_add_in_attach(actor=request.user, room_id=room.id, add_in_id=addin_id)
    )


@router.delete(
    "/{addin_id}/rooms/{room_id}",
    response={200: RoomOut} | WRITE_ERRORS,
    summary="Take an add-in out of a room",
)
def addin_detach(request: ApiRequest, addin_id: int, room_id: str) -> dict[str, Any]:
    """The room's Managers (an add-in no longer in the register too)."""
    room, _ = room_for_viewer(user=request.user, room_id=room_id)
    writes(request)
    return room_out(
        room_services.room_add_in_detach(
            actor=request.user, room_id=room.id, add_in_id=str(addin_id)
        )
    )
