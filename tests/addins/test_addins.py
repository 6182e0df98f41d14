"""Add-ins against a real Synapse with the portal's module: administrators register web
pages for categories; a room's Managers attach one and a chat client sees it as a widget;
a chat client cannot add, change or take away a widget; removing one from the register
takes it out of every room as one operation."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms import index
from rooms.chatserver.policy import ADD_IN_PREFIX, WIDGET_EVENT
from rooms.models import AddInEntry, Operation
from rooms.services import addins as addin_services
from rooms.services import rooms as room_services
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db

WIKI = "https://wiki.example.org/team"


@pytest.fixture
def admin():
    return AdministratorFactory()


@pytest.fixture
def wiki(admin, category_world):
    return addin_services.addin_register(
        actor=admin, name="Team wiki", url=WIKI, category_ids=[category_world["category"].id]
    )


def widgets(person, room_id: str) -> dict[str, dict]:
    """The widgets a chat client (Element) reads from the room's state."""
    answer = person.http.get(f"/_matrix/client/v3/rooms/{room_id}/state")
    answer.raise_for_status()
    return {e["state_key"]: e["content"] for e in answer.json() if e["type"] == WIDGET_EVENT}


def test_a_manager_attaches_an_add_in_and_a_chat_client_sees_the_widget(
    wiki, creator, make_room, category_world
):
    room, manager = make_room(), category_world["creator"]
    assert manager.join(room.id).is_success
    after = room_services.room_add_in_attach(actor=creator, room_id=room.id, add_in_id=wiki.pk)
    assert [a.name for a in after.add_ins] == ["Team wiki"]
    assert [a.url for a in index.room(room.id).add_ins] == [WIKI]
    seen = widgets(manager, room.id)[ADD_IN_PREFIX + str(wiki.pk)]
    assert (seen["type"], seen["url"], seen["name"]) == ("m.custom", WIKI, "Team wiki")
    assert AuditEntry.objects.filter(action="room.addin.attach", target_id=room.id).exists()

    room_services.room_add_in_detach(actor=creator, room_id=room.id, add_in_id=str(wiki.pk))
    assert widgets(manager, room.id)[ADD_IN_PREFIX + str(wiki.pk)] == {}
    assert index.room(room.id).add_ins == ()


def test_only_https_or_a_demo_page_on_this_machine(admin, category_world, settings):
    category = [category_world["category"].id]
    for bad in ("http://wiki.example.org/", "javascript:alert(1)", "ftp://x/", "wiki"):
        with pytest.raises(addin_services.AddInInvalid, match="https://"):
            addin_services.addin_register(actor=admin, name="Bad", url=bad, category_ids=category)
    settings.ADD_INS_ALLOW_LOOPBACK = False
    with pytest.raises(addin_services.AddInInvalid, match="demo only"):
        addin_services.addin_register(
            actor=admin, name="Local", url="http://127.0.0.1:9/", category_ids=category
        )
    settings.ADD_INS_ALLOW_LOOPBACK = True
    addin_services.addin_register(
        actor=admin, name="Local", url="http://127.0.0.1:9/", category_ids=category
    )


def test_an_add_in_for_another_category_cannot_be_attached(admin, creator, make_room, chat):
    other = chat.create_category(name="Elsewhere for add-ins", description="")
    elsewhere = addin_services.addin_register(
        actor=admin, name="Elsewhere", url=WIKI, category_ids=[other.id]
    )
    room = make_room()
    with pytest.raises(room_services.RoomSettingsInvalid, match="not one the category"):
        room_services.room_add_in_attach(actor=creator, room_id=room.id, add_in_id=elsewhere.pk)


def test_only_managers_attach_and_only_administrators_register(
    wiki, make_room, category_world, member
):
    room = make_room()
    with pytest.raises(PermissionDenied):
        room_services.room_add_in_attach(actor=member, room_id=room.id, add_in_id=wiki.pk)
    with pytest.raises(PermissionDenied):
        addin_services.addin_register(actor=member, name="Mine", url=WIKI, category_ids=[])
    assert AuditEntry.objects.filter(action="room.addin.attach", outcome=Outcome.DENIED).exists()
    assert AuditEntry.objects.filter(action="addin.register", outcome=Outcome.DENIED).exists()


def test_a_chat_client_cannot_add_change_or_take_away_a_widget(
    wiki, creator, make_room, category_world
):
    room, manager = make_room(), category_world["creator"]
    assert manager.join(room.id).is_success
    room_services.room_add_in_attach(actor=creator, room_id=room.id, add_in_id=wiki.pk)
    key = ADD_IN_PREFIX + str(wiki.pk)
    for state_key, content in (
        ("own-widget", {"type": "m.custom", "url": "https://evil.example/", "name": "x"}),
        (key, {}),
        (key, {"type": "m.custom", "url": "https://evil.example/", "name": "Team wiki"}),
    ):
        answer = manager.put_state(room.id, WIDGET_EVENT, content, state_key)
        assert answer.status_code == 403
        assert "add-ins (widgets) are attached" in answer.json()["error"]
    assert widgets(manager, room.id) == {key: widgets(manager, room.id)[key]}
    assert widgets(manager, room.id)[key]["url"] == WIKI


def test_removing_an_add_in_takes_it_out_of_every_room_as_one_operation(
    wiki, admin, creator, make_room, chat
):
    rooms = [make_room(), make_room()]
    for room in rooms:
        room_services.room_add_in_attach(actor=creator, room_id=room.id, add_in_id=wiki.pk)
    taken, op = addin_services.addin_remove(actor=admin, add_in_id=wiki.pk)
    assert sorted(taken) == sorted(r.id for r in rooms)
    assert op is not None
    while room_services.bulk_change_step(chunk=1):  # the sync worker's rounds
        pass
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert [r["result"] for r in op.change["results"]] == ["changed", "changed"]
    for room in rooms:
        assert chat.get_room(room.id).add_ins == ()
    assert AuditEntry.objects.filter(action="room.addin.detach").count() == 2
    assert AuditEntry.objects.filter(action="addin.remove").exists()


def test_the_pages_register_attach_and_remove(client, admin, make_room, category_world):
    category, room = category_world["category"], make_room()
    client.force_login(admin)
    refused = client.post(
        reverse("addins:list"),
        {"name": "Board", "url": "http://board.example.org/", "category_ids": [category.id]},
    )
    assert refused.status_code == 400
    assert "https://" in refused.content.decode()
    assert 'value="Board"' in refused.content.decode()  # what was typed is kept
    made = client.post(
        reverse("addins:list"),
        {"name": "Board", "url": "https://board.example.org/", "category_ids": [category.id]},
    )
    assert made.status_code == 302
    page = client.get(reverse("rooms:detail", args=[room.id])).content.decode()
    assert "Add an add-in" in page
    (entry,) = AddInEntry.objects.all()
    client.post(reverse("addins:attach", args=[room.id]), {"add_in": str(entry.pk)})
    assert [a.name for a in index.room(room.id).add_ins] == ["Board"]
    confirm = client.get(reverse("addins:remove", args=[entry.pk])).content.decode()
    assert "1 room" in confirm
    assert client.post(reverse("addins:remove", args=[entry.pk])).status_code == 302


def test_the_api_registers_attaches_and_removes_with_a_what_if(
    client, admin, creator, member, make_room, category_world
):
    from tests.api.test_api import call, make_token

    room = make_room()
    ops = make_token(client, admin, name="ops")
    body = {"name": "Runbook", "url": WIKI, "category_ids": [category_world["category"].id]}
    refused = call(client, "POST", "/addins", ops, body | {"url": "http://wiki.example.org/"})
    assert refused.status_code == 422
    assert "https://" in refused.json()["detail"]
    made = call(client, "POST", "/addins", ops, body)
    assert made.status_code == 201
    addin = made.json()["id"]
    manager = make_token(client, creator, name="manager")
    someone = make_token(client, member, name="member")
    assert call(client, "POST", "/addins", someone, body | {"name": "Mine"}).status_code == 403
    path = f"/addins/{addin}/rooms/{room.id}"
    assert call(client, "PUT", path, someone).status_code == 403
    attached = call(client, "PUT", path, manager)
    assert attached.status_code == 200
    assert attached.json()["add_ins"] == ["Runbook"]
    listed = call(client, "GET", "/addins", someone).json()
    assert [(a["name"], a["rooms"]) for a in listed] == [("Runbook", 1)]
    what_if = call(client, "DELETE", f"/addins/{addin}", ops, dry_run="true")
    assert what_if.json() == {"applied": False, "rooms": [room.id], "operation": None}
    removed = call(client, "DELETE", f"/addins/{addin}", ops)
    assert removed.status_code == 202
    while room_services.bulk_change_step():
        pass
    assert call(client, "GET", f"/rooms/{room.id}", manager).json()["add_ins"] == []
