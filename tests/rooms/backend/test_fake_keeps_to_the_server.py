"""The fast layer's in-memory chat server says what the Matrix client says: one walk
through every change of the declared interface, on each, read back after each step
(mypy holds the fake to the interface's signatures; this holds it to its meaning)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from rooms.backend.errors import ChatBackendError
from rooms.backend.interface import ChatServer
from rooms.backend.records import (
    AddIn,
    Category,
    ChatOptions,
    Privacy,
    Role,
    Room,
    RoomSettings,
)
from rooms.index.changes import category_snapshot, room_snapshot
from tests.conftest import PASSWORD
from tests.fake_chat import FakeChatServer


def walk(server: ChatServer) -> list[Any]:
    """Each step's change, and the room and categories as the server then reads them,
    with IDs named by what they are (each server makes its own)."""
    tag = uuid.uuid4().hex[:6]
    people = {
        who: server.ensure_user(f"{who}{tag}", password=PASSWORD, display_name=who).id
        for who in ("ann", "bob", "cy", "out")
    }
    first = server.create_category(name=f"First {tag}", description="", creators=[people["ann"]])
    second = server.create_category(
        name=f"Second {tag}", description="", options=ChatOptions(chat_history=False)
    )
    names = {v: k for k, v in people.items()} | {first.id: "first", second.id: "second"}
    server.add_to_category_scope(first.id, [people["ann"], people["bob"], people["cy"]])
    server.add_to_category_scope(second.id, [people["ann"], people["bob"]])
    settings = RoomSettings(name=f"Room {tag}", description="", category_id=first.id)
    room = server.create_room(settings, managers=[people["ann"]], members=[people["ann"]])
    names[room.id] = "room"
    seen: list[Any] = []

    def read(step: str) -> None:
        shown = [_shown(server.read(i)) for i in (room.id, first.id, second.id)]
        seen.append((step, _named(shown, names, tag)))

    def refused(step: str, change: Any) -> None:
        try:
            change()
        except ChatBackendError as exc:
            seen.append((step, type(exc).__name__))
        else:
            seen.append((step, "made"))

    read("made")
    server.add_to_role(room.id, Role.MEMBER, [people["bob"], people["cy"]], invite=False)
    server.add_to_role(room.id, Role.PRESENTER, [people["bob"]])
    read("roles given")
    refused(
        "an outsider as Member, by the service account",
        lambda: server.add_to_role(room.id, Role.MEMBER, [people["out"]]),
    )
    server.remove_from_role(room.id, Role.MEMBER, [people["cy"]])
    server.remove_from_role(room.id, Role.PRESENTER, [people["bob"]])
    read("roles taken")
    changed = replace(
        settings, name=f"Renamed {tag}", description="About", privacy=Privacy.OPEN, auditorium=True
    )
    server.update_room(room.id, changed)
    read("changed")
    server.update_room(room.id, replace(changed, category_id=second.id))
    read("moved")
    server.set_room_disabled(room.id, True)
    server.set_room_options(room.id, ChatOptions(file_uploads=False))
    server.attach_add_in(room.id, AddIn(id="wiki", name="Wiki", url="https://wiki.example.org/"))
    read("disabled, options, add-in")
    server.detach_add_in(room.id, "wiki")
    server.set_room_disabled(room.id, False)
    server.set_category_creators(second.id, [people["bob"]])
    server.deny_in_category(second.id, [people["bob"]])
    read("enabled, Creators, denied")
    server.undeny_in_category(second.id, [people["bob"]])
    server.remove_from_category_scope(first.id, [people["cy"]])
    server.update_category(
        first.id, name=f"First again {tag}", description="Now", invitations_allowed=False
    )
    read("scope and category changed")
    refused("a category with rooms deleted", lambda: server.delete_category(second.id))
    server.delete_room(room.id)
    gone = not server.room_exists(room.id, settle=2.0)
    seen.append(("room deleted", gone, _named(_shown(server.read(second.id)), names, tag)))
    return seen


def _shown(record: Room | Category | None) -> dict[str, Any] | None:
    """What the portal reads of a room or category (a category's rooms too)."""
    if isinstance(record, Room):
        return room_snapshot(record)
    if isinstance(record, Category):
        return category_snapshot(record) | {"rooms": record.room_ids}
    return None


def _named(value: Any, names: dict[str, str], tag: str) -> Any:
    """The value with every ID and the walk's tag replaced by what they name."""
    if isinstance(value, dict):
        return {k: _named(v, names, tag) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict | type(None)):
        return [_named(v, names, tag) for v in value]
    if isinstance(value, list | tuple | set | frozenset):  # of IDs: in their names' order
        return sorted(_named(v, names, tag) for v in value)
    if isinstance(value, str):
        return names.get(value, value).replace(tag, "~")
    return value


def test_the_fake_reads_as_the_matrix_client_after_every_change(synapse):
    client = synapse.client()
    try:
        assert walk(FakeChatServer()) == walk(client)
    finally:
        client.close()
