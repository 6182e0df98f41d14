"""Fault injection into the real traffic between the portal and Synapse: each fault kind
at every request of every room operation, through the pages, as a person uses them.

For every case: no 5xx; the room on the chat server is wholly as it was or wholly as
asked, or the operation is listed as unfinished; exactly one audit entry for the action,
whose outcome says which."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms import operations
from rooms.backend.records import AddIn, Privacy, Role, RoomSettings
from rooms.models import AddInEntry, Operation
from rooms.services import rooms as room_services
from tests.conftest import unique
from tests.factories import AdministratorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.chat]

FAULTS = ("500", "429", "timeout-before", "timeout-after", "not-json", "nested")


@dataclass
class Action:
    name: str  # the audit action
    post: Callable[[Any, Any], tuple[str, dict[str, Any]]]  # (room, target) → url, data
    wanted: Callable[[dict[str, Any], Any], dict[str, Any]]  # before, target → after
    disabled_first: bool = False  # the room is disabled before the action
    prepare: Callable[[Any, Any], Any] | None = None  # (chat, room) → the room made ready


def state(chat, room_id: str) -> dict[str, Any]:
    return room_services.snapshot(chat.get_room(room_id))


def add_in_for(room) -> str:
    """An add-in of the register the room's category may use (its ID)."""
    entry, _ = AddInEntry.objects.get_or_create(
        name="Fault board", defaults={"url": "https://board.example.org/"}
    )
    if room.settings.category_id not in entry.category_ids:
        entry.category_ids = [*entry.category_ids, room.settings.category_id]
        entry.save()
    return str(entry.pk)


def attached(chat, room) -> Any:
    """The room with the add-in already shown (to take it out)."""
    entry_id = add_in_for(room)
    chat.attach_add_in(room.id, AddIn(entry_id, "Fault board", "https://board.example.org/"))
    return chat.get_room(room.id)


ACTIONS = {
    "update": Action(
        "room.update",
        lambda room, _: (
            reverse("rooms:edit", args=[room.id]),
            {
                "name": room.name + " renamed",
                "description": "Changed under fire",
                "auditorium": "on",
                "invitations": "inherit",
                "version": room_services.room_version(room),
            },
        ),
        lambda before, _: (
            before
            | {"name": before["name"] + " renamed", "description": "Changed under fire"}
            | {"auditorium": True}
        ),
    ),
    "privacy": Action(
        "room.privacy",
        lambda room, _: (
            reverse("rooms:privacy", args=[room.id]),
            {"privacy": "open", "confirm": "on"},
        ),
        lambda before, _: before | {"privacy": "open"},
    ),
    "move": Action(
        "room.move",
        lambda room, target: (
            reverse("rooms:move", args=[room.id]),
            {"category": target.id, "confirm": "on", "version": room_services.room_version(room)},
        ),
        lambda before, target: before | {"category_id": target.id},
    ),
    "disable": Action(
        "room.disable",
        lambda room, _: (reverse("rooms:disable", args=[room.id]), {}),
        lambda before, _: before | {"disabled": True},
    ),
    "enable": Action(
        "room.enable",
        lambda room, _: (reverse("rooms:disable", args=[room.id]), {"enable": "on"}),
        lambda before, _: before | {"disabled": False},
        disabled_first=True,
    ),
    "add-in": Action(
        "room.addin.attach",
        lambda room, _: (reverse("addins:attach", args=[room.id]), {"add_in": add_in_for(room)}),
        lambda before, _: before | {"add_ins": [str(AddInEntry.objects.get().pk)]},
    ),
    "add-in out": Action(
        "room.addin.detach",
        lambda room, _: (reverse("addins:detach", args=[room.id]), {"add_in": add_in_for(room)}),
        lambda before, _: before | {"add_ins": []},
        prepare=attached,
    ),
}


@pytest.fixture
def target(chat, creator):
    made = chat.create_category(
        name=unique("Elsewhere "), description="", creators=[creator.chat_id]
    )
    chat.add_to_category_scope(made.id, [creator.chat_id])
    return made


def room_for(chat, make_room, action: Action):
    room = make_room()
    if action.disabled_first:
        chat.set_room_disabled(room.id, True)
        room = chat.get_room(room.id)
    if action.prepare:
        room = action.prepare(chat, room)
    return room


def requests_made(client, chat, make_room, target, injected, action: Action) -> int:
    room = room_for(chat, make_room, action)
    url, data = action.post(room, target)
    injected.arm(0, "")
    assert client.post(url, data).status_code < 400
    return injected.count


def judge(chat, room_id: str, before: dict, after: dict, action: Action) -> str:
    """How the case ended, after checking that it ended in one true state."""
    now = state(chat, room_id)
    entries = list(AuditEntry.objects.filter(action=action.name, target_id=room_id))
    assert len(entries) == 1, [e.outcome for e in entries]
    outcome = entries[0].outcome
    unfinished = Operation.objects.filter(target_id=room_id, status=Operation.Status.UNFINISHED)
    if outcome == Outcome.SUCCEEDED:
        assert now == after
    elif outcome in (Outcome.FAILED, Outcome.UNDONE):
        assert now == before, (outcome, entries[0].error)
        assert not unfinished.exists()
    if outcome != Outcome.PARTIAL:  # in one category, listed by it alone
        listed_by = [
            category_id
            for category_id in {before["category_id"], after["category_id"]}
            if room_id in chat.get_category(category_id).room_ids
        ]
        assert listed_by == [now["category_id"]], (outcome, listed_by)
    else:
        assert outcome == Outcome.PARTIAL
        assert unfinished.exists()  # listed, with Retry and Undo
    return str(outcome)


@pytest.mark.parametrize("name", ACTIONS)
def test_a_fault_at_every_request_ends_whole_and_truly_audited(
    name, client, chat, creator, make_room, target, injected
):
    action = ACTIONS[name]
    client.force_login(creator)
    steps = requests_made(client, chat, make_room, target, injected, action)
    assert steps >= 3
    tally: dict[str, int] = {}
    for at in range(1, steps + 1):
        for fault in FAULTS:
            room = room_for(chat, make_room, action)
            before = state(chat, room.id)
            url, data = action.post(room, target)
            injected.arm(at, fault)
            response = client.post(url, data)
            injected.arm(0, "")
            assert response.status_code < 500 or response.status_code == 503, (at, fault)
            assert b"Traceback" not in response.content
            outcome = judge(chat, room.id, before, action.wanted(before, target), action)
            tally[outcome] = tally.get(outcome, 0) + 1
    # One fault is retried away: every case ends as asked, after at most three tries.
    assert tally == {"succeeded": steps * len(FAULTS)}, tally
    print(json.dumps({"action": name, "requests": steps, "outcomes": tally}))


def lasting(name, client, chat, make_room, target, injected, **fault: bool):
    """Request `at` (each in turn) fails for good (`outage`: so does every later one;
    `sticky`: so does every try of the same request). Yields each case, judged: the room,
    its settings before, the outcome, and the page the person was shown."""
    action = ACTIONS[name]
    steps = requests_made(client, chat, make_room, target, injected, action)
    for at in range(1, steps + 1):
        room = room_for(chat, make_room, action)
        before = state(chat, room.id)
        url, data = action.post(room, target)
        injected.arm(at, "500", **fault)
        response = client.post(url, data, follow=True)
        injected.arm(0, "")
        assert response.status_code < 500 or response.status_code == 503
        outcome = judge(chat, room.id, before, action.wanted(before, target), action)
        yield room, before, outcome, response.content.decode()


@pytest.mark.parametrize("name", ACTIONS)
def test_an_outage_at_every_request_is_told_and_undone_or_listed(
    name, client, chat, creator, make_room, target, injected
):
    """The chat server goes away at request `at` and stays away: nothing can be retried
    or put back, so the change either never began (failed, nothing changed) or is left
    unfinished, listed, told to the person; once the server is back, Retry finishes it."""
    client.force_login(creator)
    tally: dict[str, int] = {}
    for room, before, outcome, text in lasting(
        name, client, chat, make_room, target, injected, outage=True
    ):
        tally[outcome] = tally.get(outcome, 0) + 1
        if outcome == Outcome.PARTIAL:
            assert "only partly made" in text
            for untrue in ("Nothing was changed", "privacy was not changed", "was not moved"):
                assert untrue not in text
            op = operations.unfinished(room.id)[0]
            operations.finish(op, actor=creator, undo=False)
            assert state(chat, room.id) == ACTIONS[name].wanted(before, target)
            assert AuditEntry.objects.get(action="operation.retry", target_id=room.id).outcome == (
                Outcome.SUCCEEDED
            )
    assert tally.get("partial", 0) >= 1, tally
    print(json.dumps({"action": name, "outage outcomes": tally}))


@pytest.mark.parametrize("name", ACTIONS)
def test_a_failure_that_outlasts_the_retries_is_put_back(
    name, client, chat, creator, make_room, target, injected
):
    """Request `at` fails however often it is tried: the change cannot be completed, so
    what was applied is put back (the rest of the server answers): failed before anything
    changed, or undone; never half-made. Partial (listed: judge checked) only when putting
    it back needs the stuck request too: reading the room, or writing the same state key."""
    client.force_login(creator)
    tally: dict[str, int] = {}
    for _, _, outcome, text in lasting(
        name, client, chat, make_room, target, injected, sticky=True
    ):
        tally[outcome] = tally.get(outcome, 0) + 1
        if outcome == Outcome.UNDONE:
            assert "put back: the room is as it was" in text
    assert set(tally) <= {"failed", "undone", "partial", "succeeded"}, tally
    assert tally.get("undone", 0) >= 1, tally
    print(json.dumps({"action": name, "stuck outcomes": tally}))


def test_an_unfinished_change_is_undone_from_the_list(
    client, chat, creator, make_room, target, injected
):
    room = make_room()
    before = state(chat, room.id)
    client.force_login(creator)
    url, data = ACTIONS["move"].post(room, target)
    injected.arm(4, "500", outage=True)
    client.post(url, data)
    injected.arm(0, "")
    [op] = operations.unfinished(room.id)
    client.force_login(AdministratorFactory())
    listed = client.get(reverse("operations:list")).content.decode()
    assert room.name in listed
    assert "Move to another category" in listed
    page = client.get(reverse("rooms:detail", args=[room.id])).content.decode()
    assert "stopped part-way" in page
    done = client.post(reverse("operations:undo", args=[op.pk]), follow=True)
    assert "was undone" in done.content.decode()
    assert state(chat, room.id) == before
    assert AuditEntry.objects.get(action="operation.undo", target_id=room.id).outcome == (
        Outcome.SUCCEEDED
    )
    assert operations.unfinished(room.id) == []


def test_an_operation_left_by_a_stopped_process_is_finished_and_audited(
    chat, creator, make_room, target
):
    """A process killed mid-way leaves its operation running, half applied: the sync
    worker applies it again and writes the audit entry the process never wrote."""
    from datetime import timedelta

    from django.utils import timezone

    room = make_room()
    op = Operation.objects.create(
        kind="room.move",
        target_id=room.id,
        target_label=room.name,
        actor=creator,
        change={"settings": {"category_id": target.id}},
        before={"settings": {"category_id": room.settings.category_id}},
    )
    Operation.objects.filter(pk=op.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    [resumed] = operations.resume_abandoned()
    assert resumed.status == Operation.Status.SUCCEEDED
    assert chat.get_room(room.id).settings.category_id == target.id
    entry = AuditEntry.objects.get(action="room.move", target_id=room.id, actor=creator)
    assert entry.outcome == Outcome.SUCCEEDED
    assert "stopped mid-way" in entry.error


def test_creating_a_room_under_every_fault_makes_one_whole_room_or_none(
    client, chat, creator, category_world, injected
):
    """createRoom's answer lost included: the room is found by its creation alias, never
    made twice, never left outside its category."""
    client.force_login(creator)
    category = category_world["category"]

    def post(name: str):
        data = {"name": name, "description": "", "category": category.id, "privacy": "closed"}
        data |= {"invitations": "inherit", "submission": str(uuid.uuid4())}
        return client.post(reverse("rooms:create"), data)

    injected.arm(0, "")
    assert post(unique("Counted ")).status_code == 302
    steps = injected.count
    tally: dict[str, int] = {}
    for at in range(1, steps + 1):
        for fault in FAULTS:
            name = unique("Faulted ")
            joined = set(chat.joined_room_ids())
            injected.arm(at, fault)
            response = post(name)
            injected.arm(0, "")
            assert response.status_code < 500 or response.status_code == 503, (at, fault)
            made = set(chat.joined_room_ids()) - joined
            [entry] = AuditEntry.objects.filter(action="room.create", target_label=name)
            if entry.outcome == Outcome.SUCCEEDED:
                [room_id] = made
                assert chat.get_room(room_id).name == name
                assert room_id in chat.get_category(category.id).room_ids
            else:
                assert entry.outcome == Outcome.FAILED, entry.outcome
                assert made == set(), (at, fault)
            tally[str(entry.outcome)] = tally.get(str(entry.outcome), 0) + 1
    assert tally == {"succeeded": steps * len(FAULTS)}, tally
    print(json.dumps({"action": "create", "requests": steps, "outcomes": tally}))


def test_deleting_a_room_under_every_fault_deletes_it_or_leaves_it_whole(
    client, chat, make_room, injected
):
    """A lost answer to the delete is asked about before the person is told it failed."""
    client.force_login(AdministratorFactory())

    def post(room):
        return client.post(reverse("rooms:delete", args=[room.id]), {"confirm_name": room.name})

    injected.arm(0, "")
    assert post(make_room()).status_code == 302
    steps = injected.count
    tally: dict[str, int] = {}
    for at in range(1, steps + 1):
        for fault in FAULTS:
            room = make_room()
            injected.arm(at, fault)
            response = post(room)
            injected.arm(0, "")
            assert response.status_code < 500 or response.status_code == 503, (at, fault)
            [entry] = AuditEntry.objects.filter(action="room.delete", target_id=room.id)
            exists = chat.room_exists(room.id)
            if entry.outcome == Outcome.SUCCEEDED:
                assert not exists, (at, fault)
            else:
                assert entry.outcome == Outcome.FAILED
                assert exists, (at, fault, entry.error)
                assert chat.get_room(room.id).name == room.name  # whole, still listed
            tally[str(entry.outcome)] = tally.get(str(entry.outcome), 0) + 1
    print(json.dumps({"action": "delete", "requests": steps, "outcomes": tally}))


ROLE_CHANGES = [  # (role, add or remove)
    ("member", True),
    ("manager", True),
    ("member", False),
    ("presenter", False),
]


@pytest.mark.parametrize(("role", "adding"), ROLE_CHANGES)
def test_a_role_change_under_every_fault_is_made_once_or_not_at_all(
    role, adding, client, chat, creator, category_world, make_room, injected
):
    """Each request of giving or taking a role, with each fault: the person holds the
    role exactly when the audit entry says it succeeded."""
    person = category_world["member"].user_id
    client.force_login(creator)
    action = f"role.{'add' if adding else 'remove'}.{role}"
    url_name = "roles:add" if adding else "roles:remove"

    def arranged():
        room = make_room(auditorium=True)
        if not adding:
            chat.add_to_role(room.id, Role(role), [person])
        return room

    def post(room):
        data = {"role": role, "user_id": person, "confirm": "on"}
        return client.post(reverse(url_name, args=[room.id]), data)

    injected.arm(0, "")
    assert post(arranged()).status_code < 400
    steps = injected.count
    tally: dict[str, int] = {}
    for at in range(1, steps + 1):
        for fault in FAULTS:
            room = arranged()
            injected.arm(at, fault)
            response = post(room)
            injected.arm(0, "")
            assert response.status_code < 500 or response.status_code == 503, (at, fault)
            [entry] = AuditEntry.objects.filter(action=action, target_id=room.id)
            holds = person in chat.get_room(room.id).principals(role)
            assert holds == (adding == (entry.outcome == Outcome.SUCCEEDED)), (
                at,
                fault,
                entry.error,
            )
            tally[str(entry.outcome)] = tally.get(str(entry.outcome), 0) + 1
    print(json.dumps({"action": action, "requests": steps, "outcomes": tally}))


def test_a_login_under_every_fault_is_told_and_audited_once(make_chat_user, injected):
    """Logging in checks the password with the chat server (login, profile, ending the
    check's session): each fault at each request gives a clear answer, one audit entry,
    and a session exactly when the entry says the login succeeded."""
    from django.test import Client

    from tests.conftest import PASSWORD

    person = make_chat_user("loginfault")

    def attempt() -> tuple[Any, bool]:
        browser = Client()
        response = browser.post(
            reverse("login"), {"username": person.user_id, "password": PASSWORD}
        )
        return response, "_auth_user_id" in browser.session

    injected.arm(0, "")
    assert attempt()[1]
    steps = injected.count
    assert steps >= 3
    tally: dict[str, int] = {}
    for at in range(1, steps + 1):
        for fault in FAULTS:
            before = AuditEntry.objects.count()
            injected.arm(at, fault)
            response, logged_in = attempt()
            injected.arm(0, "")
            assert response.status_code < 500 or response.status_code == 503, (at, fault)
            entries = list(AuditEntry.objects.order_by("pk")[before:])
            assert len(entries) == 1, (at, fault, [(e.action, e.outcome) for e in entries])
            entry = entries[0]
            assert logged_in == (entry.outcome == Outcome.SUCCEEDED), (at, fault, entry.action)
            tally[str(entry.outcome)] = tally.get(str(entry.outcome), 0) + 1
    print(json.dumps({"action": "login", "requests": steps, "outcomes": tally}))


def test_a_scope_change_under_every_fault_completes_or_says_to_apply_it_again(
    client, chat, creator, category_world, make_room, make_chat_user, injected
):
    """Taking one person out of a category's scope (and their room role with it) while
    adding another: each fault at each request. The change completes, or the person is
    told it stopped part-way, with one entry for it; applying it again completes it."""
    category = category_world["category"]
    client.force_login(AdministratorFactory())
    url = reverse("categories:scope", args=[category.id])

    def arranged() -> tuple[str, str, Any]:
        leaving, joining = make_chat_user("leaving").user_id, make_chat_user("joining").user_id
        chat.add_to_category_scope(category.id, [leaving])
        room = make_room()
        chat.add_to_role(room.id, Role.MEMBER, [leaving])
        return leaving, joining, room

    def post(leaving: str, joining: str):
        data = {"remove": leaving, "add": joining, "deny": "", "undeny": "", "confirm": "on"}
        return client.post(url, data, follow=True)

    def done(leaving: str, joining: str, room) -> bool:
        now = chat.get_category(category.id)
        return (
            leaving not in now.allowed_members
            and joining in now.allowed_members
            and leaving not in chat.get_room(room.id).members
        )

    first = arranged()
    injected.arm(0, "")
    post(*first[:2])
    steps = injected.count
    assert done(*first)
    tally: dict[str, int] = {}
    for at in range(1, steps + 1):
        for fault in FAULTS:
            leaving, joining, room = arranged()
            before = AuditEntry.objects.count()
            injected.arm(at, fault)
            response = post(leaving, joining)
            injected.arm(0, "")
            assert response.status_code < 500 or response.status_code == 503, (at, fault)
            entries = AuditEntry.objects.order_by("pk")[before:]
            [entry] = [e for e in entries if e.action in ("category.scope", "page.failed")]
            if entry.outcome == Outcome.SUCCEEDED:
                assert done(leaving, joining, room), (at, fault)
            else:
                assert not done(leaving, joining, room)
                if entry.action == "category.scope":  # it had begun: listed, for Retry
                    [op] = Operation.objects.filter(
                        kind="category.scope", status=Operation.Status.UNFINISHED
                    )
                    client.post(reverse("operations:retry", args=[op.pk]))
                    op.refresh_from_db()
                    assert op.status == Operation.Status.SUCCEEDED
                else:
                    post(leaving, joining)  # applied again, as the person is told to
                assert done(leaving, joining, room), (at, fault)
            tally[str(entry.outcome)] = tally.get(str(entry.outcome), 0) + 1
    print(json.dumps({"action": "category.scope", "requests": steps, "outcomes": tally}))


def test_approving_a_request_under_every_fault_creates_its_room_once_or_keeps_it_approved(
    client, chat, creator, member, category_world, injected
):
    """Approval creates the requester's room: each fault at each request. The request
    ends with its one whole room, or approved with the error shown and no room, and Retry
    then creates it."""
    from rooms.models import RoomRequest
    from rooms.services import requests as request_services

    category = category_world["category"]
    client.force_login(creator)

    def asked() -> RoomRequest:
        return request_services.request_submit(
            actor=member,
            settings=RoomSettings(unique("Asked "), "", category.id, Privacy.CLOSED),
            justification="Because",
        )

    def approve(request: RoomRequest):
        data = {"name": request.name, "description": "", "privacy": "closed"}
        data["invitations"] = "inherit"
        return client.post(reverse("requests:approve", args=[request.pk]), data, follow=True)

    injected.arm(0, "")
    approve(asked())
    steps = injected.count
    tally: dict[str, int] = {}
    for at in range(1, steps + 1):
        for fault in FAULTS:
            request = asked()
            joined = set(chat.joined_room_ids())
            injected.arm(at, fault)
            response = approve(request)
            injected.arm(0, "")
            assert response.status_code < 500 or response.status_code == 503, (at, fault)
            request.refresh_from_db()
            made = set(chat.joined_room_ids()) - joined
            if request.status == RoomRequest.Status.CREATED:
                assert made == {request.room_id}
                assert chat.get_room(request.room_id).managers == {member.chat_id}
            else:
                assert request.status == RoomRequest.Status.APPROVED, request.status
                assert made == set()
                client.post(reverse("requests:retry", args=[request.pk]))
                request.refresh_from_db()
                assert request.status == RoomRequest.Status.CREATED
            tally[str(request.status)] = tally.get(str(request.status), 0) + 1
    print(json.dumps({"action": "request.approved", "requests": steps, "outcomes": tally}))


def test_a_bulk_add_under_every_fault_adds_everyone_once(
    client, chat, creator, make_room, make_chat_user, injected
):
    """Three people pasted for Member, each fault at each request of starting and running
    the bulk add and of the job runner's run of it: it is told, never a 500; resumed from
    its page when the chat server stopped it, it ends with every person a Member, and
    each one's last audit entry says added."""
    from rooms.services import roles as role_services

    client.force_login(creator)

    def arranged():
        room, people = make_room(), [make_chat_user("bulk").user_id for _ in range(3)]
        chat.add_to_category_scope(room.settings.category_id, people)
        return room, people

    def run(room, people):
        url = reverse("roles:bulk", args=[room.id])
        data = {"role": "member", "people": "\n".join(people), "apply": "on"}
        return client.post(url, data)

    def finish(room):
        for bulk in Operation.objects.filter(kind="role.bulk", target_id=room.id):
            for _ in range(5):
                role_services.role_changes_turn()
                bulk.refresh_from_db()
                if bulk.status != Operation.Status.UNFINISHED:
                    break
                client.post(reverse("roles:bulk_run", args=[room.id, bulk.pk]))  # Resume

    room, people = arranged()
    injected.arm(0, "")
    run(room, people)
    finish(room)
    steps = injected.count
    tally: dict[str, int] = {}
    for at in range(1, steps + 1):
        for fault in FAULTS:
            room, people = arranged()
            injected.arm(at, fault)
            response = run(room, people)
            finish(room)
            injected.arm(0, "")
            assert response.status_code < 500 or response.status_code == 503, (at, fault)
            if not Operation.objects.filter(kind="role.bulk", target_id=room.id).exists():
                run(room, people)  # refused before it started: started again
                finish(room)
            members = chat.get_room(room.id).members
            for person in people:
                assert person in members, (at, fault)
                last = AuditEntry.objects.filter(
                    action="role.add.member", target_id=room.id, after__person=person
                ).first()  # the newest
                assert last is not None
                assert last.outcome == Outcome.SUCCEEDED
            ended = "restarted" if response.status_code == 503 else "added"
            tally[ended] = tally.get(ended, 0) + 1
    print(json.dumps({"action": "bulk add", "requests": steps, "outcomes": tally}))


def test_a_scope_change_stopped_by_an_outage_is_listed_and_finished_by_retry(
    client, chat, category_world, make_room, make_chat_user, injected
):
    category = category_world["category"]
    leaving, joining = make_chat_user("leaving").user_id, make_chat_user("joining").user_id
    chat.add_to_category_scope(category.id, [leaving])
    room = make_room()
    chat.add_to_role(room.id, Role.MEMBER, [leaving])
    client.force_login(AdministratorFactory())
    data = {"remove": leaving, "add": joining, "deny": "", "undeny": "", "confirm": "on"}
    injected.arm(4, "500", outage=True)  # after the room role went, before the scope did
    told = client.post(reverse("categories:scope", args=[category.id]), data, follow=True)
    injected.arm(0, "")
    assert "stopped part-way" in told.content.decode()
    [op] = Operation.objects.filter(kind="category.scope", status=Operation.Status.UNFINISHED)
    listed = client.get(reverse("operations:list")).content.decode()
    assert category.name in listed
    assert reverse("operations:undo", args=[op.pk]) not in listed  # finished by Retry only
    client.post(reverse("operations:retry", args=[op.pk]))
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    now = chat.get_category(category.id)
    assert leaving not in now.allowed_members
    assert joining in now.allowed_members
    assert [
        e.outcome for e in AuditEntry.objects.filter(action="category.scope").order_by("pk")
    ] == [
        Outcome.FAILED,
        Outcome.SUCCEEDED,
    ]
