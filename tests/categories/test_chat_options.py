"""A category's chat options, against a real Synapse with the portal's module: chat
history and file upload, set on the category and given to every room of it as one
operation, and held by the homeserver against chat clients (checked with real Matrix
client sessions, not only by reading state)."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms import index
from rooms.backend.records import ChatOptions, Role
from rooms.models import Operation
from rooms.services import categories as category_services
from rooms.services import rooms as room_services
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db

CLOSED = ChatOptions(chat_history=False, file_uploads=False)


@pytest.fixture
def admin():
    return AdministratorFactory()


def run_worker() -> None:
    while room_services.bulk_change_step(chunk=2):  # the sync worker's rounds
        pass


def image(person, room_id: str):
    return person.http.put(
        f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{uuid.uuid4().hex}",
        json={"msgtype": "m.image", "body": "plan.png", "url": "mxc://example/plan"},
    )


def said(person, room_id: str) -> list[str]:
    """The messages this person's chat client receives from the room's history."""
    events = person.read(room_id).json()["chunk"]
    return [e["content"].get("body") for e in events if e["type"] == "m.room.message"]


@pytest.fixture
def closed_up(admin, make_room, category_world, chat):
    """A category with two rooms whose options were turned off, the change carried out."""
    category = category_world["category"]
    rooms = [make_room(), make_room()]
    _, todo = category_services.category_options_preview(
        actor=admin, category_id=category.id, options=CLOSED
    )
    assert sorted(todo) == sorted(r.id for r in rooms)
    after, op = category_services.category_set_options(
        actor=admin, category_id=category.id, options=CLOSED
    )
    assert after.options == CLOSED
    assert op is not None
    run_worker()
    op.refresh_from_db()
    return {"rooms": rooms, "operation": op, "category": after}


def test_the_options_reach_every_room_as_one_operation_with_a_result_each(closed_up, chat):
    op, rooms = closed_up["operation"], closed_up["rooms"]
    assert op.status == Operation.Status.SUCCEEDED
    assert sorted(r["room"] for r in op.change["results"]) == sorted(r.id for r in rooms)
    assert {r["result"] for r in op.change["results"]} == {"changed"}
    for room in rooms:
        state = chat.read_state(room.id)
        assert state.content("m.room.history_visibility") == {"history_visibility": "joined"}
        assert chat.get_room(room.id).options == CLOSED
        assert index.room(room.id).options == CLOSED
    assert index.category(closed_up["category"].id).options == CLOSED
    (entry,) = AuditEntry.objects.filter(action="category.options")
    assert entry.after["chat_history"] is False
    assert entry.after["rooms"] == 2
    assert AuditEntry.objects.filter(action="room.options").count() == 2


def test_a_file_is_refused_with_the_reason_and_text_still_passes(closed_up, category_world):
    room, manager = closed_up["rooms"][0], category_world["creator"]
    assert manager.join(room.id).is_success
    answer = image(manager, room.id)
    assert answer.status_code == 403
    assert "file upload is off" in answer.json()["error"]
    assert category_world["category"].name in answer.json()["error"]
    assert manager.send(room.id, "a link instead").is_success


def test_a_file_passes_where_upload_is_on(make_room, category_world):
    room, manager = make_room(), category_world["creator"]
    assert manager.join(room.id).is_success
    assert image(manager, room.id).is_success


def test_with_history_off_a_later_joiner_sees_nothing_said_before(closed_up, category_world, chat):
    room, manager, member = (
        closed_up["rooms"][0],
        category_world["creator"],
        category_world["member"],
    )
    assert manager.join(room.id).is_success
    assert manager.send(room.id, "said before you came").is_success
    chat.add_to_role(room.id, Role.MEMBER, [member.user_id])
    assert member.join(room.id).is_success
    assert manager.send(room.id, "said after you came").is_success
    assert said(member, room.id) == ["said after you came"]
    assert "said before you came" in said(manager, room.id)


def test_with_history_on_a_later_joiner_sees_what_was_said(make_room, category_world, chat):
    room, manager, member = make_room(), category_world["creator"], category_world["member"]
    assert manager.join(room.id).is_success
    assert manager.send(room.id, "said before you came").is_success
    chat.add_to_role(room.id, Role.MEMBER, [member.user_id])
    assert member.join(room.id).is_success
    assert "said before you came" in said(member, room.id)


def test_a_chat_client_cannot_open_the_history_again(closed_up, category_world):
    room, manager = closed_up["rooms"][0], category_world["creator"]
    assert manager.join(room.id).is_success
    answer = manager.put_state(
        room.id, "m.room.history_visibility", {"history_visibility": "shared"}
    )
    assert answer.status_code == 403
    assert "keeps chat history from people who join later" in answer.json()["error"]


def test_a_room_made_later_takes_the_categorys_options(closed_up, make_room, chat):
    room = make_room()
    assert chat.get_room(room.id).options == CLOSED
    state = chat.read_state(room.id)
    assert state.content("m.room.history_visibility") == {"history_visibility": "joined"}


def test_only_administrators_set_options_and_a_manager_cannot_take_them(
    closed_up, creator, make_room
):
    with pytest.raises(PermissionDenied):
        category_services.category_set_options(
            actor=creator, category_id=closed_up["category"].id, options=ChatOptions()
        )
    room = closed_up["rooms"][0]
    with pytest.raises(PermissionDenied):
        room_services.room_take_category_options(actor=creator, room_id=room.id)
    assert AuditEntry.objects.filter(action="category.options", outcome=Outcome.DENIED).exists()
    assert AuditEntry.objects.filter(action="room.options", outcome=Outcome.DENIED).exists()


def test_no_operation_when_no_room_changes(admin, category_world):
    category = category_world["category"]
    after, op = category_services.category_set_options(
        actor=admin, category_id=category.id, options=CLOSED
    )
    assert after.options == CLOSED
    assert op is None


def test_the_pages_preview_apply_and_follow_the_change(client, admin, make_room, category_world):
    """An administrator unticks file upload: the what-if names the rooms, the change
    goes to the progress page, which follows the worker to the end; the room's page then
    says so."""
    category = category_world["category"]
    room = make_room()
    client.force_login(admin)
    detail = client.get(reverse("categories:detail", args=[category.id]))
    assert "Chat options" in detail.content.decode()
    url = reverse("categories:options", args=[category.id])
    preview = client.post(url, {"chat_history": "on"})
    assert preview.status_code == 200
    page = preview.content.decode()
    assert "1 room" in page
    assert room.name in page
    assert not AuditEntry.objects.filter(action="category.options").exists()  # a what-if
    applied = client.post(url, {"chat_history": "on", "confirm": "on"})
    assert applied.status_code == 302
    progress = applied["Location"]
    assert "0 of 1" in client.get(progress).content.decode()
    run_worker()
    following = client.get(progress, headers={"HX-Request": "true"}).content.decode()
    assert "1 of 1" in following
    assert "finished" in following
    assert "hx-get" not in following  # no more polling
    shown = client.get(reverse("rooms:detail", args=[room.id])).content.decode()
    assert "File upload: off" in shown


def test_a_new_category_can_be_made_with_history_off(client, admin, chat):
    client.force_login(admin)
    name = f"Options {uuid.uuid4().hex[:6]}"
    answer = client.post(
        reverse("categories:new"), {"name": name, "invitations_allowed": "on", "file_uploads": "on"}
    )
    assert answer.status_code == 302
    (made,) = [c for c in index.categories() if c.name == name]
    assert made.options == ChatOptions(chat_history=False, file_uploads=True)
