"""The add-in register: web pages a room's Managers may show beside its conversation
(Matrix widgets, shown by Element), registered by portal administrators for the rooms
of chosen categories. Attaching one to a room is a room change (`rooms.services.rooms`);
removing one from the register takes it out of every room, as one operation."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from accounts.models import User
from portal.audit import audited
from rooms import index
from rooms.models import AddInEntry, Operation
from rooms.services import rooms as room_services

LOOPBACK_NAMES = ("localhost",)


class AddInInvalid(Exception):
    """An add-in that cannot be registered; `field` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _require_admin(actor: User) -> None:
    if not actor.is_administrator:
        raise PermissionDenied("Only portal administrators keep the add-in register.")


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str:
    """Why this address cannot be an add-in ("" when it can): https:// only, but for a
    page on this machine where the set-up allows it (the embedded demo)."""
    parts = urlsplit(url.strip())
    if parts.scheme == "https" and parts.hostname:
        return ""
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        if settings.ADD_INS_ALLOW_LOOPBACK:
            return ""
        return "An add-in on this machine (http://) is for the demo only: use https://."
    return "An add-in's address starts with https:// (chat clients refuse other pages)."


def addin_register(*, actor: User, name: str, url: str, category_ids: list[str]) -> AddInEntry:
    """Put an add-in in the register, for the rooms of these categories."""
    with audited("addin.register", actor=actor, target_kind="addin", target_label=name) as scope:
        _require_admin(actor)
        name, url = name.strip(), url.strip()
        if not name:
            raise AddInInvalid("name", "Give the add-in a name.")
        problem = url_problem(url)
        if problem:
            raise AddInInvalid("url", problem)
        known = {c.id for c in index.categories(category_ids)}
        unknown = [c for c in category_ids if c not in known]
        if unknown:
            raise AddInInvalid("category_ids", f"No such category: {', '.join(unknown)}.")
        try:
            with transaction.atomic():
                entry = AddInEntry.objects.create(
                    name=name, url=url, category_ids=sorted(known), created_by=actor
                )
        except IntegrityError:
            raise AddInInvalid("name", f"There is already an add-in called “{name}”.") from None
        scope.target_id = str(entry.pk)
        scope.after = {"name": name, "url": url, "category_ids": entry.category_ids}
        return entry


def removal_check(*, actor: User, add_in_id: int) -> AddInEntry:
    """What removing an add-in checks, for a what-if: nothing changed or audited."""
    _require_admin(actor)
    return AddInEntry.objects.get(pk=add_in_id)


def rooms_showing(add_in_id: int) -> list[str]:
    return index.rooms_with_add_in(str(add_in_id))


def addin_remove(*, actor: User, add_in_id: int) -> tuple[list[str], Operation | None]:
    """Take an add-in out of the register and, as one operation of the job runner's
    with a result per room, out of every room showing it (None: none does)."""
    with audited("addin.remove", actor=actor, target_kind="addin") as scope:
        _require_admin(actor)
        entry = AddInEntry.objects.get(pk=add_in_id)
        scope.target_id, scope.target_label = str(entry.pk), entry.name
        scope.before = {"name": entry.name, "url": entry.url, "category_ids": entry.category_ids}
        rooms = rooms_showing(entry.pk)
        entry.delete()
        if not rooms:
            return rooms, None
        op = room_services.bulk_change_start(
            actor=actor,
            room_ids=rooms,
            changes={"detach_add_in": str(add_in_id)},
            label=f"Add-in “{entry.name}” taken out of {len(rooms)} rooms",
        )
        scope.after = {"operation": str(op.pk), "rooms": len(rooms)}
        return rooms, op
