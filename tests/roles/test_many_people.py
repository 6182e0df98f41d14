"""A role changed for many people: the API's changes and a list pasted on the room's page
are one kind of operation (`role.bulk`), carried out by the job runner; a change the API
answers at once is that operation too, so a web process that dies part-way leaves it to
the job runner (against the real Synapse)."""

from __future__ import annotations

import pytest

from portal.models import AuditEntry, Outcome
from rooms import processes
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.backend.records import Role
from rooms.models import Operation
from rooms.services import roles as role_services
from tests.api.test_api import call, make_token
from tests.conftest import unique

pytestmark = pytest.mark.django_db


def in_scope(chat, category_world, count: int) -> list[str]:
    people = [
        chat.ensure_user(unique("many"), password="unused-pass", display_name="Many").id
        for _ in range(count)
    ]
    chat.add_to_category_scope(category_world["category"].id, people)
    return people


def run_out() -> None:
    """The job runner's rounds until it has nothing left to do."""
    while role_services.role_changes_turn():
        pass


def test_more_people_than_one_answer_holds_are_changed_by_the_job_runner(
    client, chat, creator, make_room, category_world
):
    room = make_room()
    people = in_scope(chat, category_world, role_services.ANSWERED_AT_MOST + 2)
    outsider = category_world["outsider"].user_id
    token = make_token(client, creator)
    asked = [*people, outsider, "bob smith"]
    started = call(client, "POST", f"/rooms/{room.id}/roles/member", token, {"add": asked})
    assert started.status_code == 202
    operation = started.json()["operation"]
    assert started.json()["total"] == len(asked)
    assert not set(people) & chat.get_room(room.id).members  # nothing yet: the runner's

    run_out()
    assert set(people) <= chat.get_room(room.id).members
    ended = call(client, "GET", f"/operations/{operation}", token).json()
    assert (ended["kind"], ended["status"]) == ("role.bulk", "succeeded")
    assert ended["change"] == {"role": "member", "add": asked, "remove": []}
    results = {r["person"]: (r["result"], r["detail"]) for r in ended["results"]}
    assert {results[p][0] for p in people} == {"done"}
    assert results[outsider][0] == "refused"
    assert "not in the scope" in results[outsider][1]
    assert results["bob smith"][0] == "refused"
    assert "is not a chat ID" in results["bob smith"][1]
    op = Operation.objects.get(pk=operation)
    entries = AuditEntry.objects.filter(request_id=op.request_id, action="role.add.member")
    assert entries.filter(outcome=Outcome.SUCCEEDED).count() == len(people)
    assert entries.get(outcome=Outcome.DENIED).after["person"] == outsider


def test_a_change_answered_at_once_keeps_the_rules_and_says_what_became_of_each(
    client, chat, creator, make_room, category_world
):
    room = make_room()
    [person] = in_scope(chat, category_world, 1)
    token = make_token(client, creator)
    answer = call(
        client,
        "POST",
        f"/rooms/{room.id}/roles/manager",
        token,
        {"add": [person], "remove": [creator.chat_id]},
    )
    assert answer.status_code == 200
    assert [(r["person"], r["change"], r["result"]) for r in answer.json()["results"]] == [
        (person, "add", "done"),
        (creator.chat_id, "remove", "done"),  # another Manager was added first
    ]
    assert chat.get_room(room.id).managers == {person}
    op = Operation.objects.get(kind="role.bulk")
    assert op.status == Operation.Status.SUCCEEDED  # recorded, though answered at once
    actions = AuditEntry.objects.filter(request_id=op.request_id).values_list("action", "outcome")
    assert sorted(actions) == [
        ("role.add.manager", Outcome.SUCCEEDED),
        ("role.remove.manager", Outcome.SUCCEEDED),
    ]


def test_the_last_manager_stays_and_the_refusal_is_audited(client, chat, creator, make_room):
    room = make_room()
    token = make_token(client, creator)
    answer = call(
        client, "POST", f"/rooms/{room.id}/roles/manager", token, {"remove": [creator.chat_id]}
    ).json()
    [result] = answer["results"]
    assert (result["result"], result["detail"]) == ("refused", role_services.LAST_MANAGER)
    assert chat.get_room(room.id).managers == {creator.chat_id}
    refused = AuditEntry.objects.get(action="role.remove.manager")
    assert (refused.outcome, refused.before["person"]) == (Outcome.DENIED, creator.chat_id)


def test_a_change_whose_process_died_part_way_is_finished_by_the_job_runner(
    chat, creator, make_room, category_world
):
    room = make_room()
    people = in_scope(chat, category_world, 2)
    lines = [role_services.RoleLine(p, p, "add", "add") for p in people]
    op = role_services.role_changes_start(
        actor=creator, room=room, changes=role_services.RoleChanges(Role.MEMBER, lines), inline=True
    )
    assert role_services.role_changes_turn() == 0  # its own process is at it
    machine, pid, _ = processes.identity().split("|")
    op.owner = f"{machine}|{pid}|0"  # that process ended (a PID taken again since)
    op.save(update_fields=["owner"])
    assert processes.gone(op.owner)
    assert role_services.role_changes_turn() == 2
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert set(people) <= chat.get_room(room.id).members


class Killed(BaseException):
    """The process dying: nothing of the portal's catches it."""


def test_a_job_runner_killed_part_way_leaves_each_person_added_once(
    chat, creator, make_room, category_world, monkeypatch
):
    """Killed after one person was confirmed and a second added unheard: the next round
    keeps the first, finds the second done (audited then) and adds the third."""
    room = make_room()
    people = in_scope(chat, category_world, 3)
    op = role_services.bulk_start(
        actor=creator, room_id=room.id, role=Role.MEMBER, text="\n".join(people)
    )
    real = MatrixChatBackend.add_to_role  # the portal's own client, under the index

    def dies_after_the_first(self, room_id, role, user_ids, *, on_added=None, invite=None):
        first = list(user_ids)[:1]
        real(self, room_id, role, first, on_added=on_added, invite=invite)
        real(self, room_id, role, list(user_ids)[1:2], invite=invite)  # applied, unheard
        raise Killed

    monkeypatch.setattr(MatrixChatBackend, "add_to_role", dies_after_the_first)
    with pytest.raises(Killed):
        role_services.role_changes_turn()
    monkeypatch.setattr(MatrixChatBackend, "add_to_role", real)
    op.refresh_from_db()
    assert op.status == Operation.Status.RUNNING  # left as it was: the job runner's again
    assert role_services.RoleChanges.of(op).progress == (1, 3)  # the first, kept as done

    run_out()
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert [line.result for line in role_services.RoleChanges.of(op).lines] == ["done"] * 3
    assert set(people) <= chat.get_room(room.id).members
    added = AuditEntry.objects.filter(action="role.add.member", request_id=op.request_id)
    assert sorted(e.after["person"] for e in added) == sorted(people)  # once each
