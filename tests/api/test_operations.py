"""Operations through the API: listed, polled a page of results at a time, retried and
undone by administrators as the Operations page does, what-ifs of any size."""

from __future__ import annotations

import dataclasses

import pytest

from portal.models import AuditEntry, Outcome
from rooms.models import Operation
from rooms.services.rooms import bulk_change_step
from tests.api.test_api import call, make_token
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db


def run_worker() -> None:
    while bulk_change_step(chunk=2):  # the sync worker's rounds
        pass


def test_operations_are_listed_polled_by_the_page_and_retried_by_an_administrator(
    client, chat, creator, make_room
):
    rooms = [make_room() for _ in range(3)]
    mine = make_token(client, creator)
    body = {"rooms": [r.id for r in rooms] + ["!gone:portal.test"], "change": {"disabled": True}}
    started = call(client, "POST", "/rooms/bulk", mine, body, background="true").json()
    run_worker()

    listed = call(client, "GET", "/operations", mine, status="unfinished").json()
    assert listed["count"] == 1
    [summary] = listed["items"]
    assert (summary["id"], summary["done"], summary["total"]) == (started["operation"], 4, 4)
    assert "results" not in summary  # a list carries no results

    path = f"/operations/{started['operation']}"
    first = call(client, "GET", path, mine, results_limit=3).json()
    assert [r["result"] for r in first["results"]] == ["changed"] * 3
    assert first["next_results_from"] == 3
    rest = call(client, "GET", path, mine, results_from=3, results_limit=3).json()
    assert [r["result"] for r in rest["results"]] == ["not found"]
    assert rest["next_results_from"] is None
    assert first["change"] == {"disabled": True}
    tag = call(client, "GET", path, mine)["ETag"]
    unmoved = call(client, "GET", path, mine, HTTP_IF_NONE_MATCH=tag)
    assert (unmoved.status_code, unmoved.content) == (304, b"")  # a cheap poll

    denied_before = AuditEntry.objects.filter(outcome=Outcome.DENIED).count()
    assert call(client, "POST", f"{path}/retry", mine).status_code == 403
    assert call(client, "GET", "/operations", mine, everyone="true").status_code == 403
    assert AuditEntry.objects.filter(outcome=Outcome.DENIED).count() == denied_before + 2

    admin = make_token(client, AdministratorFactory(), name="admin")
    everyone = call(client, "GET", "/operations", admin, everyone="true").json()
    assert started["operation"] in [item["id"] for item in everyone["items"]]
    assert call(client, "GET", "/operations", admin).json()["count"] == 0  # none of theirs
    retried = call(client, "POST", f"{path}/retry", admin)
    assert retried.status_code == 200, retried.json()
    assert (retried.json()["status"], retried.json()["done"]) == ("running", 3)
    assert AuditEntry.objects.filter(action="operation.retry", target_id=started["operation"])
    assert call(client, "GET", path, mine, HTTP_IF_NONE_MATCH=tag).status_code == 200  # moved
    again = call(client, "POST", f"{path}/undo", admin)
    assert again.status_code == 409  # running again: nothing to finish or undo
    assert "not unfinished" in again.json()["detail"]
    run_worker()
    assert call(client, "GET", path, mine).json()["status"] == "unfinished"  # still gone


def test_a_room_change_left_unfinished_is_undone_through_the_api(client, chat, make_room):
    room = make_room()
    chat.update_room(
        room.id, dataclasses.replace(room.settings, description="Half made"), current=room
    )
    op = Operation.objects.create(  # what a change stopped part-way leaves
        kind="room.update",
        target_id=room.id,
        target_label=room.name,
        change={"settings": {"description": "Half made"}},
        before={"settings": {"description": room.settings.description}},
        status=Operation.Status.UNFINISHED,
        error="The chat server stopped answering.",
    )
    admin = make_token(client, AdministratorFactory(), name="admin")
    listed = call(client, "GET", "/operations", admin, everyone="true", status="unfinished")
    assert [item["target"] for item in listed.json()["items"]] == [room.id]
    assert call(client, "GET", f"/operations/{op.pk}", admin).json()["before"] == op.before
    undone = call(client, "POST", f"/operations/{op.pk}/undo", admin)
    assert undone.status_code == 200, undone.json()
    assert undone.json()["status"] == "undone"
    assert chat.get_room(room.id).settings.description == room.settings.description
    entry = AuditEntry.objects.get(action="operation.undo", target_id=room.id)
    assert entry.outcome == Outcome.SUCCEEDED


def test_a_what_if_of_more_than_200_rooms_runs_in_the_background_and_changes_nothing(
    client, chat, creator, make_room
):
    rooms = [make_room() for _ in range(2)]
    mine = make_token(client, creator)
    asked = [r.id for r in rooms] + [f"!missing{n}:portal.test" for n in range(199)]
    body = {"rooms": asked, "change": {"privacy": "open"}}
    started = call(client, "POST", "/rooms/bulk", mine, body, dry_run="true")
    assert started.status_code == 202  # more than 200: in the background, unasked
    run_worker()
    path = f"/operations/{started.json()['operation']}"
    polled = call(client, "GET", path, mine, results_limit=1000).json()
    assert (polled["status"], polled["what_if"], polled["done"]) == ("succeeded", True, 201)
    results = [r["result"] for r in polled["results"]]
    assert results == ["would change"] * 2 + ["not found"] * 199
    assert all(chat.get_room(r.id).settings.privacy == r.settings.privacy for r in rooms)
    assert call(client, "GET", "/operations", mine, status="unfinished").json()["count"] == 0


def test_a_change_to_many_rooms_that_changes_nothing_is_refused(client, creator, make_room):
    mine = make_token(client, creator)
    body = {"rooms": [make_room().id], "change": {}}
    for query in ({}, {"background": "true"}):
        empty = call(client, "POST", "/rooms/bulk", mine, body, **query)
        assert empty.status_code == 422
        assert "empty" in empty.json()["detail"]
    assert not Operation.objects.filter(kind="rooms.bulk").exists()


def test_operations_are_paged_newest_first_with_a_total(client, creator):
    made = [
        Operation.objects.create(kind="room.update", target_id=f"!r{n}:portal.test", actor=creator)
        for n in range(3)
    ]
    mine = make_token(client, creator)
    seen, cursor = [], ""
    while True:
        answer = call(
            client, "GET", "/operations", mine, limit=1, **({"cursor": cursor} if cursor else {})
        )
        assert (answer.json()["count"], answer["X-Total-Count"]) == (3, "3")
        seen += [item["id"] for item in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        if not cursor:
            break
        assert 'rel="next"' in answer["Link"]
    newest_first = sorted(made, key=lambda op: (op.created_at, op.pk), reverse=True)
    assert seen == [str(op.pk) for op in newest_first]


def test_a_change_to_every_room_a_filter_finds(client, chat, creator, make_room, category_world):
    from rooms.backend.records import Privacy

    closed = [make_room(), make_room()]
    opened = make_room(privacy=Privacy.OPEN)
    mine = make_token(client, creator)
    where = {"category": category_world["category"].id, "privacy": "closed"}
    body = {"where": where, "change": {"description": "Every Closed one"}}
    what_if = call(client, "POST", "/rooms/bulk", mine, body, dry_run="true").json()
    assert {r["room"] for r in what_if["results"]} == {r.id for r in closed}
    done = call(client, "POST", "/rooms/bulk", mine, body).json()
    assert [r["result"] for r in done["results"]] == ["changed", "changed"]
    assert all(chat.get_room(r.id).settings.description == "Every Closed one" for r in closed)
    assert chat.get_room(opened.id).settings.description == opened.settings.description
    for wrong in ({"change": {"disabled": True}}, body | {"rooms": [opened.id]}):
        refused = call(client, "POST", "/rooms/bulk", mine, wrong)
        assert refused.status_code == 422
        assert "either by their IDs" in refused.json()["detail"]


def test_a_change_to_many_rooms_goes_on_after_its_worker_dies_mid_way(
    client, chat, creator, make_room, monkeypatch
):
    """The sync worker is killed after its second room: the next worker goes on from
    there; every room changed once, with one result and one audit entry each."""
    from rooms.services import rooms as room_services

    rooms = [make_room() for _ in range(4)]
    mine = make_token(client, creator)
    body = {"rooms": [r.id for r in rooms], "change": {"disabled": True}}
    started = call(client, "POST", "/rooms/bulk", mine, body, background="true").json()
    real = room_services.room_change_result
    done = []

    def dies_at_the_third(**kwargs):
        if len(done) == 2:
            raise SystemExit(1)  # the worker is killed
        done.append(kwargs["room_id"])
        return real(**kwargs)

    monkeypatch.setattr(room_services, "room_change_result", dies_at_the_third)
    with pytest.raises(SystemExit):
        room_services.bulk_change_step(chunk=20)
    monkeypatch.setattr(room_services, "room_change_result", real)
    path = f"/operations/{started['operation']}"
    assert call(client, "GET", path, mine).json()["done"] == 2  # kept as it went
    run_worker()  # the worker, started again
    polled = call(client, "GET", path, mine).json()
    assert (polled["status"], polled["done"]) == ("succeeded", 4)
    assert [r["result"] for r in polled["results"]] == ["changed"] * 4
    assert all(chat.get_room(r.id).disabled for r in rooms)
    for room in rooms:
        assert AuditEntry.objects.filter(action="room.disable", target_id=room.id).count() == 1
