"""The tests' own chat client: it arranges state on the real chat server, as a chat
client or another admin tool would, and reads the server's truth back.

What it changes reaches the index at once, through the same `rooms.index.refresh` the
sync worker applies to what it hears in the event stream (the worker itself is tested on
its own, in tests/integration/test_sync.py). Its reads are the server's, not the index's.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from rooms import index
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.models import IndexedRoom

# Public changes, and how to find what they changed from their arguments and answer.
_CHANGES: dict[str, Callable[[tuple[Any, ...], Any], list[str]]] = {
    "create_category": lambda args, made: [made.id],
    "update_category": lambda args, made: [args[0]],
    "set_category_creators": lambda args, made: [args[0]],
    "delete_category": lambda args, made: [args[0]],
    "add_to_category_scope": lambda args, made: [args[0]],
    "remove_from_category_scope": lambda args, made: [args[0]],
    "deny_in_category": lambda args, made: [args[0]],
    "undeny_in_category": lambda args, made: [args[0]],
    "create_room": lambda args, made: [made.id, made.settings.category_id],
    "update_room": lambda args, made: [args[0], made.settings.category_id],
    "set_room_disabled": lambda args, made: [args[0]],
    "set_room_options": lambda args, made: [args[0]],
    "attach_add_in": lambda args, made: [args[0]],
    "detach_add_in": lambda args, made: [args[0]],
    "delete_room": lambda args, made: [args[0]],
    "add_to_role": lambda args, made: [args[0]],
    "remove_from_role": lambda args, made: [args[0]],
}


class ArrangingChat(MatrixChatBackend):
    """The service account's client; every change it makes is indexed as it is made."""

    def reindex(self, *target_ids: str) -> None:
        """Index what someone else (a chat user) changed on the server."""
        for target_id in target_ids:
            index.refresh(self, target_id)


def _indexing(name: str, targets: Callable[[tuple[Any, ...], Any], list[str]]) -> Any:
    change = getattr(MatrixChatBackend, name)

    @wraps(change)
    def indexed(self: ArrangingChat, *args: Any, **kwargs: Any) -> Any:
        before = IndexedRoom.objects.filter(room_id=args[0]).first() if args else None
        made = change(self, *args, **kwargs)
        ids = targets(args, made)
        if before is not None and before.category_id:
            ids.append(before.category_id)  # a moved or deleted room leaves its category
        self.reindex(*ids)
        return made

    return indexed


for _name, _targets in _CHANGES.items():
    setattr(ArrangingChat, _name, _indexing(_name, _targets))
