"""Categories and room requests through the API, on the real Synapse: an administrator
makes a category, sets its scope (seeing first who would lose room roles) and Creators, and
deletes it; a person asks for a room, its Creator approves it with a change, another is
declined; a second decision is told it came too late."""

from __future__ import annotations

import pytest

from portal.models import AuditEntry, Outcome
from rooms.backend.records import Privacy, Role
from rooms.models import RoomRequest
from tests.api.test_api import PROBLEM, call, make_token
from tests.conftest import portal_user, unique
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db


def test_an_administrator_runs_a_category_through_the_api(client, chat, category_world, make_room):
    admin = make_token(client, AdministratorFactory(), name="ops")
    name = unique("Made by the API ")
    assert (
        call(client, "POST", "/categories", admin, {"name": name}, dry_run="true").status_code
        == 200
    )
    made = call(client, "POST", "/categories", admin, {"name": name, "description": "Ops"})
    assert made.status_code == 201
    category_id = made.json()["id"]
    twice = call(client, "POST", "/categories", admin, {"name": name.upper()})
    assert (twice.status_code, twice["Content-Type"]) == (422, PROBLEM)

    member = category_world["member"].user_id
    scoped = call(client, "POST", f"/categories/{category_id}/scope", admin, {"add": [member]})
    assert scoped.json()["applied"] is True
    assert member in chat.get_category(category_id).allowed_members
    creators = call(
        client, "PUT", f"/categories/{category_id}/creators", admin, {"creators": [member]}
    )
    assert creators.json()["creators"] == [member]

    # Leaving a scope costs room roles: said first, and nothing changes with a what-if.
    room = make_room()
    chat.add_to_role(room.id, Role.MEMBER, [member])
    world = category_world["category"].id
    preview = call(
        client, "POST", f"/categories/{world}/scope", admin, {"remove": [member]}, dry_run="true"
    ).json()
    assert preview["leaving"] == [{"person": member, "roles": {room.id: ["member"]}}]
    assert member in chat.get_room(room.id).members

    assert call(client, "DELETE", f"/categories/{category_id}", admin).status_code == 204
    assert call(client, "GET", f"/categories/{category_id}", admin).status_code == 404
    entries = AuditEntry.objects.filter(via="api: ops", outcome=Outcome.SUCCEEDED)
    assert set(entries.values_list("action", flat=True)) == {
        "category.create",
        "category.scope",
        "category.creators",
        "category.delete",
    }


def test_a_request_is_asked_approved_with_a_change_and_a_second_decision_told(
    client, chat, member, creator, category_world
):
    asker = make_token(client, member, name="asker")
    body = {
        "name": unique("Asked through the API "),
        "category": category_world["category"].id,
        "justification": "The team needs it",
    }
    asked = call(client, "POST", "/requests", asker, body)
    assert asked.status_code == 201
    pk = asked.json()["id"]
    assert [r["id"] for r in call(client, "GET", "/requests", asker).json()] == [pk]
    assert call(client, "POST", f"/requests/{pk}/approve", asker, {}).status_code == 403

    decider = make_token(client, creator, name="decider")
    assert pk in [r["id"] for r in call(client, "GET", "/requests/queue", decider).json()]
    approved = call(client, "POST", f"/requests/{pk}/approve", decider, {"privacy": "secret"})
    assert approved.status_code == 200
    room_id = approved.json()["room_id"]
    on_server = chat.get_room(room_id)
    assert str(on_server.settings.privacy) == "secret"
    assert member.chat_id in on_server.managers
    late = call(client, "POST", f"/requests/{pk}/decline", decider, {"reason": "Too late"})
    assert (late.status_code, late["Content-Type"]) == (409, PROBLEM)
    assert "no longer pending" in late.json()["detail"]

    other = call(client, "POST", "/requests", asker, body | {"name": unique("Second ")}).json()
    declined = call(
        client, "POST", f"/requests/{other['id']}/decline", decider, {"reason": "Use the first"}
    )
    assert declined.json()["status"] == "declined"
    assert declined.json()["decision_reason"] == "Use the first"


def test_every_change_to_categories_and_requests_has_a_what_if(
    client, chat, member, creator, category_world, make_room
):
    admin = make_token(client, AdministratorFactory(), name="ops")
    category = category_world["category"]
    make_room()  # the category has a room: it cannot be deleted
    renamed = call(
        client, "PATCH", f"/categories/{category.id}", admin, {"name": "Renamed?"}, dry_run="true"
    )
    assert renamed.json()["name"] == "Renamed?"
    assert chat.get_category(category.id).name == category.name
    outsider = category_world["outsider"].user_id
    creators = call(
        client,
        "PUT",
        f"/categories/{category.id}/creators",
        admin,
        {"creators": [outsider]},
        dry_run="true",
    )
    assert (creators.status_code, creators["Content-Type"]) == (422, PROBLEM)
    kept = call(client, "DELETE", f"/categories/{category.id}", admin, dry_run="true")
    assert kept.status_code == 422
    assert "still has" in kept.json()["detail"]

    asker = make_token(client, member, name="asker")
    body = {"name": unique("What if "), "category": category.id, "justification": "Why not"}
    checked = call(client, "POST", "/requests", asker, body, dry_run="true")
    assert checked.status_code == 200
    assert not RoomRequest.objects.exists()
    pk = call(client, "POST", "/requests", asker, body).json()["id"]
    decider = make_token(client, creator, name="decider")
    would = call(
        client, "POST", f"/requests/{pk}/approve", decider, {"privacy": "open"}, dry_run="true"
    )
    assert (would.status_code, would.json()["privacy"]) == (200, "open")
    not_yet = call(
        client, "POST", f"/requests/{pk}/decline", decider, {"reason": "No"}, dry_run="true"
    )
    assert not_yet.status_code == 200
    assert RoomRequest.objects.get(pk=pk).status == "pending"
    assert not AuditEntry.objects.filter(
        action__in=["request.approved", "request.declined"]
    ).exists()


def test_changing_a_category_changes_only_what_is_given(client, chat, category_world):
    admin = make_token(client, AdministratorFactory(), name="ops")
    category = category_world["category"]
    path = f"/categories/{category.id}"
    call(client, "PATCH", path, admin, {"description": "Kept", "invitations_allowed": False})

    renamed = call(client, "PATCH", path, admin, {"name": unique("Renamed ")})
    assert renamed.status_code == 200
    assert (renamed.json()["description"], renamed.json()["invitations_allowed"]) == (
        "Kept",
        False,
    )
    reopened = call(client, "PATCH", path, admin, {"invitations_allowed": True})
    assert reopened.status_code == 200
    now = chat.get_category(category.id)
    assert (now.name, now.description, now.invitations_allowed) == (
        renamed.json()["name"],
        "Kept",
        True,
    )


def test_a_category_change_with_if_match_is_refused_once_the_category_changed(
    client, chat, category_world
):
    admin = make_token(client, AdministratorFactory(), name="ops")
    category = category_world["category"]
    path = f"/categories/{category.id}"
    read = call(client, "GET", path, admin)
    tag = read["ETag"]
    assert call(client, "GET", path, admin)["ETag"] == tag  # the same while nothing changes

    first = call(client, "PATCH", path, admin, {"description": "One"}, HTTP_IF_MATCH=tag)
    assert first.status_code == 200, first.json()
    assert first["ETag"] != tag
    # A second script, still holding what it read: refused, told what it is now.
    for method, where, body in (
        ("PATCH", path, {"description": "Two"}),
        ("PUT", f"{path}/creators", {"creators": []}),
        ("POST", f"{path}/scope", {"add": [category_world["outsider"].user_id]}),
        ("DELETE", path, None),
    ):
        late = call(client, method, where, admin, body, HTTP_IF_MATCH=tag)
        assert (late.status_code, late["Content-Type"]) == (412, PROBLEM), (method, where)
        assert late.json()["current"]["description"] == "One"
        assert late["ETag"] == first["ETag"]
    now = chat.get_category(category.id)
    assert now.description == "One"
    assert now.creators == category.creators
    assert category_world["outsider"].user_id not in now.allowed_members
    fresh = call(client, "PATCH", path, admin, {"description": "Two"}, HTTP_IF_MATCH=first["ETag"])
    assert fresh.status_code == 200


def test_a_decision_sent_with_if_match_is_refused_once_the_requester_changed_the_request(
    client, member, creator, category_world
):
    from dataclasses import replace

    from rooms.services import requests as request_services

    asker = make_token(client, member, name="asker")
    body = {
        "name": unique("Asked "),
        "category": category_world["category"].id,
        "justification": "The team needs it",
    }
    pk = call(client, "POST", "/requests", asker, body).json()["id"]
    decider = make_token(client, creator, name="decider")
    read = call(client, "GET", f"/requests/{pk}", decider)
    assert read.status_code == 200
    assert call(client, "GET", f"/requests/{pk}", asker)["ETag"] == read["ETag"]
    asked = request_services.request_settings(RoomRequest.objects.get(pk=pk))
    request_services.request_edit(  # the requester makes it Secret meanwhile
        actor=member, pk=pk, settings=replace(asked, privacy=Privacy.SECRET), justification="Now"
    )
    for decision, body in (("approve", {}), ("decline", {"reason": "No"})):
        late = call(
            client, "POST", f"/requests/{pk}/{decision}", decider, body, HTTP_IF_MATCH=read["ETag"]
        )
        assert (late.status_code, late["Content-Type"]) == (412, PROBLEM)
        assert late.json()["current"]["privacy"] == "secret"
    assert RoomRequest.objects.get(pk=pk).status == "pending"
    fresh = call(client, "GET", f"/requests/{pk}", decider)["ETag"]
    approved = call(client, "POST", f"/requests/{pk}/approve", decider, {}, HTTP_IF_MATCH=fresh)
    assert approved.json()["status"] == "created"  # approved, and its room made
    other = make_token(client, AdministratorFactory(), name="nosy")
    assert call(client, "GET", "/requests/999999", other).status_code == 404


def test_chat_options_through_the_api_a_what_if_then_an_operation_to_poll(
    client, chat, category_world, make_room
):
    from rooms.services.rooms import bulk_change_step

    admin = make_token(client, AdministratorFactory(), name="ops")
    category = category_world["category"].id
    room = make_room()
    path = f"/categories/{category}/options"
    what_if = call(client, "PUT", path, admin, {"file_uploads": False}, dry_run="true")
    assert what_if.status_code == 200
    assert what_if.json()["rooms"] == [room.id]
    assert what_if.json()["category"]["file_uploads"] is False
    assert chat.get_category(category).options.file_uploads is True  # nothing changed
    started = call(client, "PUT", path, admin, {"file_uploads": False})
    assert started.status_code == 202
    operation = started.json()["operation"]
    assert started["Location"] == f"/api/v1/operations/{operation}"
    assert started.json()["category"]["chat_history"] is True  # left as it was
    while bulk_change_step(chunk=2):  # the sync worker's rounds
        pass
    polled = call(client, "GET", f"/operations/{operation}", admin).json()
    assert polled["status"] == "succeeded"
    got = call(client, "GET", f"/rooms/{room.id}", admin).json()
    assert (got["file_uploads"], got["chat_history"]) == (False, True)
    again = call(client, "PUT", path, admin, {"file_uploads": False})
    assert again.status_code == 200
    assert again.json()["rooms"] == []
    refused = call(client, "PUT", path, admin, {"file_uploads": "no"})
    assert refused.status_code == 422
    member = make_token(client, portal_user(category_world["member"]), name="member")
    assert call(client, "PUT", path, member, {"file_uploads": True}).status_code == 403
