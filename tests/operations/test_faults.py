"""Fault injection into the real traffic between the portal and Synapse: each fault kind
at every request of every room operation, through the pages, as a person uses them.

For every case: no 5xx; the room on the chat server is wholly as it was or wholly as
asked, or the operation is listed as unfinished; exactly one audit entry for the action,
whose outcome says which."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms import operations
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.models import Operation
from rooms.services import rooms as room_services
from tests.conftest import unique
from tests.factories import AdministratorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.chat]

FAULTS = ("500", "429", "timeout-before", "timeout-after", "not-json", "nested")


class InjectingTransport(httpx.BaseTransport):
    """The real Synapse, except that request number `at` (counted from arming) gets
    `fault`; with `outage`, every request from then on gets a 500; with `sticky`, every
    later request to the same method and URL fails the same way (a step that keeps
    failing however often it is retried)."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.arm(0, "")

    def arm(self, at: int, fault: str, *, outage: bool = False, sticky: bool = False) -> None:
        self.count, self.at, self.fault, self.outage, self.sticky = 0, at, fault, outage, sticky
        self.failing: tuple[str, str] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        key = (request.method, str(request.url))
        hit = self.fault and (
            self.count == self.at
            or (self.outage and self.count >= self.at)
            or (self.sticky and key == self.failing)
        )
        if not hit:
            return self.real.handle_request(request)
        self.failing = key
        if self.outage or self.fault == "500":
            return httpx.Response(500, json={"errcode": "M_UNKNOWN", "error": "boom"})
        if self.fault == "429":
            return httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 9e6})
        if self.fault == "timeout-before":
            raise httpx.ReadTimeout("injected", request=request)
        if self.fault == "timeout-after":  # the server did it; the answer is lost
            self.real.handle_request(request).read()
            raise httpx.ReadTimeout("injected", request=request)
        if self.fault == "not-json":
            return httpx.Response(200, text="<html>Bad gateway</html>")
        return httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000)


@pytest.fixture
def injected(synapse, monkeypatch) -> InjectingTransport:
    transport = InjectingTransport()
    client = MatrixChatBackend(
        base_url=synapse.url,
        server_name=synapse.server_name,
        token=synapse.token,
        transport=transport,
    )
    monkeypatch.setattr("rooms.index.server_client", lambda: client)
    monkeypatch.setattr(operations, "RETRY_DELAYS", (0, 0))
    return transport


@dataclass
class Action:
    name: str  # the audit action
    post: Callable[[Any, Any], tuple[str, dict[str, Any]]]  # (room, target) → url, data
    wanted: Callable[[dict[str, Any], Any], dict[str, Any]]  # before, target → after


def state(chat, room_id: str) -> dict[str, Any]:
    return room_services.snapshot(chat.get_room(room_id))


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
}


@pytest.fixture
def target(chat, creator):
    made = chat.create_category(
        name=unique("Elsewhere "), description="", creators=[creator.chat_id]
    )
    chat.add_to_category_scope(made.id, [creator.chat_id])
    return made


def requests_made(client, chat, make_room, target, injected, action: Action) -> int:
    room = make_room()
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
            room = make_room()
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


@pytest.mark.parametrize("name", ACTIONS)
def test_an_outage_at_every_request_is_told_and_undone_or_listed(
    name, client, chat, creator, make_room, target, injected
):
    """The chat server goes away at request `at` and stays away: nothing can be retried
    or put back, so the change either never began (failed, nothing changed) or is left
    unfinished, listed, told to the person; once the server is back, Retry finishes it."""
    action = ACTIONS[name]
    client.force_login(creator)
    steps = requests_made(client, chat, make_room, target, injected, action)
    tally: dict[str, int] = {}
    for at in range(1, steps + 1):
        room = make_room()
        before = state(chat, room.id)
        url, data = action.post(room, target)
        injected.arm(at, "500", outage=True)
        response = client.post(url, data, follow=True)
        injected.arm(0, "")
        assert response.status_code < 500 or response.status_code == 503
        outcome = judge(chat, room.id, before, action.wanted(before, target), action)
        tally[outcome] = tally.get(outcome, 0) + 1
        text = response.content.decode()
        if outcome == Outcome.PARTIAL:
            assert "only partly made" in text
            for untrue in ("Nothing was changed", "privacy was not changed", "was not moved"):
                assert untrue not in text
            op = operations.unfinished(room.id)[0]
            operations.finish(op, actor=creator, undo=False)
            assert state(chat, room.id) == action.wanted(before, target)
            assert AuditEntry.objects.get(action="operation.retry", target_id=room.id).outcome == (
                Outcome.SUCCEEDED
            )
    assert tally.get("partial", 0) >= 1, tally
    print(json.dumps({"action": name, "requests": steps, "outage outcomes": tally}))


@pytest.mark.parametrize("name", ACTIONS)
def test_a_failure_that_outlasts_the_retries_is_put_back(
    name, client, chat, creator, make_room, target, injected
):
    """Request `at` fails however often it is tried: the change cannot be completed, so
    what was applied is put back (the rest of the server answers): failed before anything
    changed, or undone; never half-made."""
    action = ACTIONS[name]
    client.force_login(creator)
    steps = requests_made(client, chat, make_room, target, injected, action)
    tally: dict[str, int] = {}
    for at in range(1, steps + 1):
        room = make_room()
        before = state(chat, room.id)
        url, data = action.post(room, target)
        injected.arm(at, "500", sticky=True)
        response = client.post(url, data, follow=True)
        stuck = injected.failing
        injected.arm(0, "")
        assert response.status_code < 500 or response.status_code == 503
        outcome = judge(chat, room.id, before, action.wanted(before, target), action)
        tally[outcome] = tally.get(outcome, 0) + 1
        if outcome == Outcome.UNDONE:
            assert "put back: the room is as it was" in response.content.decode()
        if outcome == Outcome.PARTIAL:
            # Only when what is stuck is needed to put it back too: reading the room's
            # state, or one of the three parts of disabling (block, settings, power
            # levels), which are sent whole both ways. Listed (judge checked).
            assert stuck is not None
            assert stuck[0] == "GET" or name == "disable", stuck
    assert set(tally) <= {"failed", "undone", "partial", "succeeded"}, tally
    if name != "disable":  # disabling sends its parts whole both ways: listed, not undone
        assert tally.get("undone", 0) >= 1, tally
    print(json.dumps({"action": name, "requests": steps, "stuck outcomes": tally}))


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
    assert "room.move" in listed
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
