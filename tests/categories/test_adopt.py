"""Adopting a space made through the client API, on the real Synapse: the preview maps each
room and says what does not fit (a public room, people outside the space, a room of an old
version the portal could not control); adopting makes the category, moves the rooms in,
and they appear in My rooms of their new Managers; every step is audited."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms.backend.matrix.adoption import SERVICE_LEVEL
from rooms.backend.records import Privacy
from rooms.models import Operation
from tests.conftest import link, made, portal_user, unique
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db
ADOPT = reverse("categories:adopt")


def test_a_space_made_in_a_chat_client_is_previewed_and_adopted(client, chat, space):
    client.force_login(AdministratorFactory())
    found = client.get(ADOPT, {"q": space["name"]}).content.decode()
    assert space["name"] in found

    preview = client.get(ADOPT, {"space": space["id"]})
    fit = preview.context["fit"]
    fits = {room.room_id: room for room in fit.rooms}
    assert fits[space["knock"]].privacy is Privacy.CLOSED
    assert fits[space["knock"]].managers == {space["alice"].user_id}
    assert fits[space["public"]].privacy is Privacy.OPEN
    assert fits[space["public"]].outside_scope == {space["carol"].user_id}
    assert "Room version 10" in fits[space["old"]].impossible
    page = preview.content.decode()
    assert "Public on the chat server" in page
    assert "Cannot be adopted" in page
    assert not Operation.objects.exists()  # a preview changes nothing

    adopted = client.post(ADOPT, {"space": space["id"]})
    [op] = Operation.objects.filter(kind="category.adopt")
    assert op.status == Operation.Status.SUCCEEDED
    category_id = op.change["category_id"]
    assert adopted.url == reverse("categories:detail", args=[category_id])

    category = chat.get_category(category_id)
    assert category.name == space["name"]
    people = {space[p].user_id for p in ("alice", "bob", "carol")}
    assert people <= category.allowed_members
    assert category.creators == {space["alice"].user_id}
    assert sorted(category.room_ids) == sorted([space["knock"], space["public"]])
    knock, public = chat.get_room(space["knock"]), chat.get_room(space["public"])
    assert (knock.settings.category_id, knock.settings.privacy) == (category_id, Privacy.CLOSED)
    assert public.settings.privacy is Privacy.OPEN
    assert space["bob"].user_id in knock.members
    assert knock.managers == {space["alice"].user_id}
    levels = chat.read_state(space["knock"]).user_levels()
    assert levels[chat.service_user] == SERVICE_LEVEL
    assert chat.set_room_disabled(space["knock"], True).disabled  # the portal controls it

    client.force_login(portal_user(space["alice"]))
    my_rooms = client.get(reverse("rooms:list")).content.decode()
    assert knock.name in my_rooms
    assert public.name in my_rooms

    entries = AuditEntry.objects.filter(request_id=op.request_id)
    assert sorted(entries.values_list("action", flat=True)) == [
        "category.adopt",
        "room.adopt",
        "room.adopt",
    ]
    assert set(entries.values_list("outcome", flat=True)) == {Outcome.SUCCEEDED}
    summary = entries.get(action="category.adopt")
    assert space["old"] in summary.after["impossible"]


def test_a_room_named_to_deceive_or_like_a_portal_room_is_not_adopted(client, space, make_room):
    alice = space["alice"]
    portal_room = make_room(name=unique("Payroll "))
    look_alike = made(alice, name=portal_room.name.replace("a", "\u0430"), preset="private_chat")
    reversed_name = made(alice, name=unique("PA \u202egnp.exe "), preset="private_chat")
    for room in (look_alike, reversed_name):
        link(alice, space["id"], room)
    client.force_login(AdministratorFactory())
    fits = {r.room_id: r for r in client.get(ADOPT, {"space": space["id"]}).context["fit"].rooms}
    assert "is not available" in fits[look_alike].impossible
    assert "U+202E" in fits[reversed_name].impossible
    assert not fits[space["knock"]].impossible
    client.post(ADOPT, {"space": space["id"]})
    [op] = Operation.objects.filter(kind="category.adopt")
    assert sorted(op.change["rooms"]) == sorted([space["knock"], space["public"]])


def test_adopting_twice_or_a_category_is_refused(client, space, category_world):
    client.force_login(AdministratorFactory())
    client.post(ADOPT, {"space": space["id"]})
    again = client.get(ADOPT, {"space": space["id"]})  # its rooms are the portal's now
    assert all(room.impossible for room in again.context["fit"].rooms)
    name_taken = client.post(ADOPT, {"space": space["id"]})
    assert name_taken.status_code == 400
    assert "already a category called" in name_taken.content.decode()
    portal_category = client.get(ADOPT, {"space": category_world["category"].id})
    assert portal_category.status_code == 400
    assert "one of the portal&#x27;s categories" in portal_category.content.decode()


def test_a_room_failing_half_way_is_told_and_adopting_again_finishes(
    client, chat, space, failing_chat, monkeypatch
):
    from rooms.backend.matrix.base import TRIES
    from rooms.services import categories as category_services

    client.force_login(AdministratorFactory())
    failing = failing_chat("m.space.parent", times=TRIES)  # the first room's last step
    monkeypatch.setattr(category_services, "chat_backend", lambda: failing)
    stopped = client.post(ADOPT, {"space": space["id"]}, follow=True).content.decode()
    assert "The adoption stopped part-way" in stopped
    [op] = Operation.objects.filter(kind="category.adopt")
    assert op.status == Operation.Status.UNFINISHED
    assert "failed" in op.change["rooms"].values()
    assert AuditEntry.objects.get(action="category.adopt").outcome == Outcome.PARTIAL
    assert AuditEntry.objects.filter(action="room.adopt", outcome=Outcome.FAILED).exists()

    monkeypatch.undo()
    client.post(ADOPT, {"space": space["id"]})  # carries on with the category made
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert set(op.change["rooms"].values()) == {"adopted"}
    assert len(chat.get_category(op.change["category_id"]).room_ids) == 2


def test_a_room_in_no_space_is_adopted_into_a_category(client, chat, space, category_world):
    """Its maker, outside the category's scope, is put in it; the room is then the
    category's, Closed as its join rule says."""
    from tests.conftest import made

    alice = space["alice"]
    loose = made(alice, name=space["name"] + " loose", preset="private_chat")
    alice.put_state(loose, "m.room.join_rules", {"join_rule": "knock"})
    category = category_world["category"]
    client.force_login(AdministratorFactory())
    found = client.get(ADOPT, {"q": space["name"] + " loose"}).content.decode()
    assert f"room={loose.replace('!', '%21')}" in found
    fit = client.get(ADOPT, {"room": loose, "category": category.id}).context["room_fit"]
    assert fit.outside_scope == {alice.user_id}
    adopted = client.post(ADOPT, {"room": loose, "category": category.id})
    assert adopted.url == reverse("rooms:detail", args=[loose])
    room = chat.get_room(loose)
    assert (room.settings.category_id, room.settings.privacy) == (category.id, Privacy.CLOSED)
    assert alice.user_id in chat.get_category(category.id).allowed_members
    entry = AuditEntry.objects.get(action="room.adopt")
    assert (entry.outcome, entry.target_id) == (Outcome.SUCCEEDED, loose)
