"""Reads of the moderation area: the room a portal administrator moderates."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from accounts.models import User
from rooms import index
from rooms.backend.records import Category, Room
from rooms.models import IndexedRoom
from rooms.permissions import can_moderate, can_read_history
from rooms.selectors.rooms import room_for_viewer
from rooms.services.moderation import ONLY_ADMINISTRATORS, ONLY_EXPORTERS, ONLY_READERS


def room_to_moderate(*, user: User, room_id: str) -> tuple[Room, Category]:
    """The room and its category, for someone who may clear its history."""
    room, category = room_for_viewer(user=user, room_id=room_id)
    if not can_moderate(user):
        raise PermissionDenied(ONLY_ADMINISTRATORS)
    return room, category


def room_to_read(*, user: User, room_id: str) -> tuple[Room, Category]:
    """The room and its category, for someone who may read its history (portal
    administrators, compliance officers, and its Managers where its category lets them)."""
    room, category = room_for_viewer(user=user, room_id=room_id)
    if not can_read_history(user, room):
        raise PermissionDenied(ONLY_READERS)
    return room, category


def room_to_export(*, user: User, room_id: str) -> tuple[Room, Category]:
    """The room and its category, for someone who may export its history (portal
    administrators and compliance officers)."""
    room, category = room_for_viewer(user=user, room_id=room_id)
    if not user.can_read_history:
        raise PermissionDenied(ONLY_EXPORTERS)
    return room, category


def room_names(room_ids: set[str]) -> dict[str, str]:
    """The portal's rooms' names, from the index."""
    return dict(IndexedRoom.objects.filter(room_id__in=room_ids).values_list("room_id", "name"))


def categories_to_export() -> list[tuple[str, str]]:
    """Every category (ID, name), by name: a compliance export may cover any."""
    return index.category_names()
