"""A person's page and removing them from everything, on the real Synapse: what they hold
is read from the index; a removal is previewed (with successors for rooms it would leave
without a Manager), runs as one operation with per-item results under one request ID, and
afterwards their own chat login opens none of the rooms. A removal the chat server stops
part-way is listed and finished by Retry."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms.backend.matrix.base import TRIES
from rooms.backend.records import Privacy, Role
from rooms.models import JoinRequest, Operation
from rooms.services import people as people_services
from tests.conftest import portal_user
from tests.factories import AdministratorFactory, AuditorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def leaver(chat, category_world, make_room):
    """The category's member, a Creator too, Manager (the only one) and Member of a Closed
    room, Member of an Open one, waiting to join a third."""
    person = category_world["member"]
    category = category_world["category"]
    chat.set_category_creators(category.id, {*category.creators, person.user_id})
    closed, open_, asked = make_room(), make_room(privacy=Privacy.OPEN), make_room()
    chat.add_to_role(closed.id, Role.MEMBER, [person.user_id])
    chat.add_to_role(closed.id, Role.MANAGER, [person.user_id])
    chat.remove_from_role(closed.id, Role.MANAGER, [category_world["creator"].user_id])
    assert person.join(open_.id).status_code == 200
    assert person.join(closed.id).status_code == 200
    chat.reindex(open_.id, closed.id, category.id)
    JoinRequest.objects.create(room_id=asked.id, requester=portal_user(person))
    return {"person": person, "closed": closed, "open": open_, "asked": asked}


def remove(client, user_id: str, **data):
    return client.post(reverse("people:remove", args=[user_id]), data)


def every_item(client, user_id: str) -> list[str]:
    page = client.get(reverse("people:remove", args=[user_id]))
    return [item.key for item in page.context["everything"]]


def test_the_person_page_shows_where_they_stand(client, leaver, category_world):
    user_id = leaver["person"].user_id
    client.force_login(AuditorFactory())
    page = client.get(reverse("people:detail", args=[user_id])).content.decode()
    assert category_world["category"].name in page
    assert "Creator" in page
    assert leaver["closed"].name in page
    assert "only Manager" in page
    assert leaver["open"].name in page
    assert "Asked to join" in page
    assert "Remove from rooms and scopes" not in page  # auditors read, nothing more
    assert remove(client, user_id).status_code == 403
    found = client.get(reverse("people:find"), {"q": user_id[1:10]}).content.decode()
    assert reverse("people:detail", args=[user_id]) in found


def test_people_who_never_signed_in_are_found_by_display_name(client, make_chat_user):
    person = make_chat_user("quiet", display_name="Ottoline Quietly").user_id
    client.force_login(AuditorFactory())
    found = client.get(reverse("people:find"), {"q": "ottoline q"}).content.decode()
    assert reverse("people:detail", args=[person]) in found
    assert "Ottoline Quietly" in found


def test_removing_a_person_from_everything(client, chat, leaver, category_world):
    person, creator = leaver["person"], category_world["creator"]
    category = category_world["category"]
    client.force_login(AdministratorFactory())
    items = every_item(client, person.user_id)
    assert len(items) == 5  # Manager and Member of one room, Member of another, Creator, scope

    preview = remove(client, person.user_id, items=items).content.decode()
    assert "Rooms left without a Manager" in preview
    assert leaver["closed"].name in preview
    field = f"successor:{leaver['closed'].id}"
    refused = remove(client, person.user_id, items=items, confirm="yes", **{field: person.user_id})
    assert refused.status_code == 400
    assert "cannot be the person being removed" in refused.content.decode()
    assert f'value="{person.user_id}"' in refused.content.decode()  # kept as typed
    assert not Operation.objects.exists()

    done = remove(client, person.user_id, items=items, confirm="yes", **{field: creator.user_id})
    [op] = Operation.objects.filter(kind="person.remove")
    assert done.url == reverse("people:removal", args=[person.user_id, op.pk])
    assert op.status == Operation.Status.SUCCEEDED
    assert {item["result"] for item in op.change["items"]} == {"removed"}

    closed, open_ = chat.get_room(leaver["closed"].id), chat.get_room(leaver["open"].id)
    assert closed.managers == {creator.user_id}
    assert person.user_id not in closed.members | open_.members
    after = chat.get_category(category.id)
    assert person.user_id not in after.allowed_members | after.creators
    for room in (closed, open_):  # their own chat login gets into none of them
        assert person.join(room.id).status_code == 403
        assert person.send(room.id, "still here?").status_code == 403

    entries = AuditEntry.objects.filter(request_id=op.request_id)
    assert sorted(entries.values_list("action", flat=True)) == [
        "category.creators",
        "category.scope",
        "person.remove",
        "role.add.manager",
        "role.remove.manager",
        "role.remove.member",
        "role.remove.member",
    ]
    assert set(entries.values_list("outcome", flat=True)) == {Outcome.SUCCEEDED}
    page = client.get(reverse("people:detail", args=[person.user_id])).content.decode()
    assert "In no category's scope" in page
    assert "No role in any room" in page


def test_a_chosen_scope_takes_the_rooms_roles_with_it(client, leaver, category_world):
    person = leaver["person"]
    client.force_login(AdministratorFactory())
    scope = f"scope:{category_world['category'].id}"
    preview = remove(client, person.user_id, items=[scope])
    forced = [item for item in preview.context["removal"].items if item.forced]
    assert len(forced) == 4  # three room roles and the Creator right go with the scope
    assert "goes with the scope" in preview.content.decode()
    nothing = remove(client, person.user_id)
    assert nothing.status_code == 400
    assert "Choose at least one" in nothing.content.decode()


def test_a_removal_stopped_part_way_says_what_was_done_and_retry_finishes_it(
    client, chat, leaver, category_world, failing_chat, monkeypatch
):
    person = leaver["person"]
    admin = AdministratorFactory()
    client.force_login(admin)
    items = every_item(client, person.user_id)
    successor = {f"successor:{leaver['closed'].id}": category_world["creator"].user_id}
    failing = failing_chat("/kick", "POST", times=TRIES)  # the scope step, however often tried
    monkeypatch.setattr(people_services, "chat_backend", lambda: failing)
    page = client.post(
        reverse("people:remove", args=[person.user_id]),
        {"items": items, "confirm": "yes"} | successor,
        follow=True,
    ).content.decode()
    assert "The removal stopped part-way" in page
    [op] = Operation.objects.filter(kind="person.remove")
    result = client.get(reverse("people:removal", args=[person.user_id, op.pk])).content.decode()
    successor_line = f"{leaver['closed'].name}</bdi></a>: <bdi>{category_world['creator'].user_id}"
    assert successor_line in result  # the successor's room, by its name
    results = {item["kind"]: item["result"] for item in op.change["items"]}
    assert results["role"] == "removed"
    assert results["creator"] == "removed"
    assert results["scope"].startswith("failed: ")
    assert op.status == Operation.Status.UNFINISHED
    summary = AuditEntry.objects.get(action="person.remove")
    assert summary.outcome == Outcome.PARTIAL
    assert person.user_id in chat.get_category(category_world["category"].id).allowed_members

    monkeypatch.undo()
    retried = client.post(reverse("operations:retry", args=[op.pk]), follow=True)
    assert "was finished" in retried.content.decode()
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert person.user_id not in chat.get_category(category_world["category"].id).allowed_members
    assert AuditEntry.objects.filter(request_id=op.request_id, action="category.scope").count() == 2


def test_a_removal_whose_process_died_is_listed_for_retry():
    """The sync worker does not run a removal or an adoption again on its own (each is
    checked again when applied): it lists them as unfinished, for Retry."""
    from datetime import timedelta

    from django.utils import timezone

    from rooms import operations

    stuck = [
        Operation.objects.create(kind=kind, target_id=target, change={"items": [], "rooms": {}})
        for kind, target in (("person.remove", "@gone:portal.test"), ("category.adopt", "!s:x"))
    ]
    assert operations.resume_abandoned(now=timezone.now() + timedelta(minutes=5)) == []
    for op in stuck:
        op.refresh_from_db()
        assert (op.status, op.error) == (
            Operation.Status.UNFINISHED,
            "Its portal process stopped mid-way; listed for Retry.",
        )
        # The entry its process never wrote: partly done, as far as anyone knows.
        entry = AuditEntry.objects.get(action=op.kind, target_id=op.target_id)
        assert entry.outcome == Outcome.PARTIAL
