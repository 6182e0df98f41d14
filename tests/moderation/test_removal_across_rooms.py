"""Removing every message of a person, or with a phrase, across a room or a category's
rooms (portal administrators): previewed with a count and a sample, then carried out by
the sync worker a batch at a time, room by room, resumed where it stood, audited."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms import operations, processes
from rooms.backend.matrix import moderation as matrix_moderation
from rooms.backend.records import Role
from rooms.models import Operation
from rooms.services import moderation as moderation_services
from tests.api.test_api import call, make_token
from tests.api.test_roomctl import shell
from tests.factories import AdministratorFactory
from tests.moderation.test_clear_history import said

pytestmark = [pytest.mark.django_db, pytest.mark.chat]


@pytest.fixture
def two_rooms(chat, make_room, category_world):
    """Two rooms of a category where a member said a secret among other things."""
    person = category_world["member"]
    rooms = [make_room(), make_room()]
    said = [("Hello", "The SECRET plan", "a secret too"), ("Another secret", "Bye")]
    for room, texts in zip(rooms, said, strict=True):
        chat.add_to_role(room.id, Role.MEMBER, [person.user_id])
        person.join(room.id)
        for text in texts:
            assert person.send(room.id, text).status_code == 200
    return rooms, person


def run_out(op: Operation, *, turns: int = 50) -> Operation:
    """The job runner's turns, until the removal is no longer running."""
    for _ in range(turns):
        moderation_services.sweep_step()
        op.refresh_from_db()
        if op.status != Operation.Status.RUNNING:
            return op
    pytest.fail(f"The removal did not end in {turns} turns.")


def test_an_administrator_previews_then_removes_a_phrase_across_a_category(
    client, two_rooms, category_world
):
    (first, second), person = two_rooms
    category = category_world["category"]
    admin = AdministratorFactory()
    client.force_login(admin)
    page = client.get(reverse("categories:detail", args=[category.id]))
    assert "Remove matching messages…" in page.text
    url = reverse("moderation:sweep")
    criteria = {"category": category.id, "sender": person.user_id, "text": "secret"}

    counted = client.post(url, criteria)
    assert counted.status_code == 200
    assert "3 messages</strong> match in 2 rooms" in counted.text
    assert "The SECRET plan" in counted.text  # a sample of them
    previewed = counted.context["previewed"]
    no_reason = client.post(url, criteria | {"previewed": previewed, "confirm": "yes"})
    assert no_reason.status_code == 400
    assert "Say why" in no_reason.text
    assert no_reason.context["form"]["text"].value() == "secret"  # what was typed stays
    other = client.post(
        url, criteria | {"text": "hello", "previewed": previewed, "confirm": "yes", "reason": "x"}
    )
    assert "1 message</strong> match" in other.text  # other criteria: counted, not removed
    assert not Operation.objects.filter(kind="moderation.sweep").exists()

    started = client.post(
        url,
        criteria | {"previewed": previewed, "confirm": "yes", "reason": "Leak", "notice": "on"},
    )
    [op] = Operation.objects.filter(kind="moderation.sweep")
    assert started.url == reverse("moderation:sweep_progress", args=[op.pk])
    running = client.get(started.url)
    assert "0 of 2</strong> rooms done…" in running.text
    assert run_out(op).status == Operation.Status.SUCCEEDED

    assert said(person, first.id)[1:] == ["Hello"]  # newest first: the notice, then what stays
    assert said(person, first.id)[0] == "2 messages removed by a moderator: Leak"
    assert said(person, second.id) == ["1 message removed by a moderator: Leak", "Bye"]
    done = client.get(started.url)
    assert "3 messages</strong> removed; <strong>2 of 2</strong> rooms done: finished." in (
        done.text
    )
    start = AuditEntry.objects.get(action="moderation.sweep")
    assert (start.outcome, start.actor_id, start.target_id) == (
        Outcome.SUCCEEDED,
        admin.pk,
        category.id,
    )
    assert start.after["rooms"] == 2
    per_room = AuditEntry.objects.filter(action="moderation.remove").order_by("id")
    assert {(e.target_id, e.after["removed"], e.outcome) for e in per_room} == {
        (first.id, 2, Outcome.SUCCEEDED),
        (second.id, 1, Outcome.SUCCEEDED),
    }


def test_from_a_rooms_history_the_filters_carry_over_to_a_removal_of_every_page(client, two_rooms):
    (first, _), _ = two_rooms
    client.force_login(AdministratorFactory())
    history = client.get(reverse("moderation:history", args=[first.id]), {"text": "secret"})
    link = reverse("moderation:sweep") + f"?room={first.id}"
    assert link.replace("!", "%21").replace(":", "%3A") in history.text.replace("&amp;", "&")
    form = client.get(reverse("moderation:sweep"), {"room": first.id, "text": "secret"})
    assert f"in “<bdi>{first.name}</bdi>”" in form.text
    counted = client.post(reverse("moderation:sweep"), {"room": first.id, "text": "secret"})
    assert "2 messages</strong> match in 1 room" in counted.text


def test_only_administrators_remove_across_rooms(client, creator, two_rooms, category_world):
    client.force_login(creator)  # a Creator and the rooms' Manager
    url = reverse("moderation:sweep")
    data = {"category": category_world["category"].id, "text": "secret", "reason": "x"}
    assert client.get(url).status_code == 403
    assert client.post(url, data | {"confirm": "yes"}).status_code == 403
    token = make_token(client, creator)
    body = {"category": category_world["category"].id, "text": "secret", "reason": "x"}
    assert call(client, "POST", "/moderation/removals", token, body).status_code == 403
    assert not Operation.objects.filter(kind="moderation.sweep").exists()
    refused = AuditEntry.objects.filter(outcome=Outcome.DENIED)
    assert refused.count() == 3
    assert (
        "Remove matching"
        not in client.get(reverse("categories:detail", args=[category_world["category"].id])).text
    )


def test_nothing_to_match_is_refused_before_anything_starts(client, two_rooms, category_world):
    client.force_login(AdministratorFactory())
    answer = client.post(reverse("moderation:sweep"), {"category": category_world["category"].id})
    assert answer.status_code == 400
    assert "Give a person, a phrase, or both" in answer.text


def test_a_worker_that_stops_mid_way_is_resumed_where_it_stood(
    client, two_rooms, category_world, monkeypatch
):
    (first, second), person = two_rooms
    monkeypatch.setattr(moderation_services, "SWEEP_BATCH", 1)
    op = moderation_services.sweep_start(
        actor=AdministratorFactory(),
        matching=moderation_services.Matching(text="secret"),
        reason="Leak",
        notice=False,
        category_id=category_world["category"].id,
    )
    moderation_services.sweep_step(seconds=0)  # one batch of one message, then it stops
    op.refresh_from_db()
    assert (op.status, moderation_services.Sweep.of(op).removed) == (Operation.Status.RUNNING, 1)
    machine = processes.identity().rsplit("|", 2)[0]
    op.owner = f"{machine}|999999999|0"  # its process died: the worker is its owner, not it
    op.save()
    assert operations.resume_abandoned() == []
    op.refresh_from_db()
    assert op.status == Operation.Status.RUNNING  # not listed as abandoned: it waits its turn
    assert run_out(op).status == Operation.Status.SUCCEEDED
    assert moderation_services.Sweep.of(op).removed == 3
    assert {r["room"]: r["removed"] for r in op.change["results"]} == {first.id: 2, second.id: 1}
    assert (said(person, first.id), said(person, second.id)) == (["Hello"], ["Bye"])


@pytest.mark.parametrize("fault", ["500", "timeout-before"])
def test_a_room_the_chat_server_fails_is_left_for_retry_and_retry_finishes_it(
    client, two_rooms, category_world, injected, fault
):
    (first, second), person = two_rooms
    admin = AdministratorFactory()
    op = moderation_services.sweep_start(
        actor=admin,
        matching=moderation_services.Matching(sender=person.user_id, text="secret"),
        reason="Leak",
        notice=True,
        category_id=category_world["category"].id,
    )
    order = op.change["rooms"]
    injected.arm(1, fault, sticky=True)  # the first room's read, however often it is tried
    moderation_services.sweep_step(seconds=0)
    injected.arm(0, "")
    op = run_out(op)
    assert op.status == Operation.Status.UNFINISHED
    assert op.error == "1 of 2 rooms were not finished."
    failed = AuditEntry.objects.get(action="moderation.remove", outcome=Outcome.FAILED)
    assert failed.target_id == order[0]
    client.force_login(admin)
    listed = client.get(reverse("moderation:sweep_progress", args=[op.pk]))
    assert "1 room may still hold matching messages" in listed.text

    client.post(reverse("operations:retry", args=[op.pk]))
    op.refresh_from_db()
    assert op.status == Operation.Status.RUNNING
    assert run_out(op).status == Operation.Status.SUCCEEDED
    assert said(person, first.id) == ["2 messages removed by a moderator: Leak", "Hello"]
    assert said(person, second.id) == ["1 message removed by a moderator: Leak", "Bye"]


def test_through_the_api_a_what_if_then_the_removal_followed_to_its_end(
    client, two_rooms, category_world
):
    (first, _), person = two_rooms
    token = make_token(client, AdministratorFactory())
    body = {"category": category_world["category"].id, "sender": person.user_id, "text": "plan"}
    counted = call(client, "POST", "/moderation/removals", token, body, dry_run="true")
    assert counted.status_code == 200, counted.json()
    found = counted.json()
    assert (found["messages"], found["rooms"], found["operation"]) == (1, 2, None)
    assert [s["body"] for s in found["sample"]] == ["The SECRET plan"]
    unreasoned = call(client, "POST", "/moderation/removals", token, body)
    assert (unreasoned.status_code, unreasoned.json()["field"]) == (422, "reason")
    both = call(client, "POST", "/moderation/removals", token, body | {"room": first.id})
    assert both.status_code == 422
    started = call(client, "POST", "/moderation/removals", token, body | {"reason": "Plans"})
    assert started.status_code == 200
    op = run_out(Operation.objects.get(pk=started.json()["operation"]))
    followed = call(client, "GET", f"/operations/{op.pk}", token).json()
    assert (followed["status"], followed["done"], followed["total"]) == ("succeeded", 2, 2)
    assert followed["change"]["removed"] == 1
    assert said(person, first.id) == ["a secret too", "Hello"]


@pytest.mark.django_db(transaction=True)
def test_roomctl_counts_then_removes_a_persons_messages_across_a_category(
    live_server, two_rooms, category_world
):
    (first, second), person = two_rooms
    admin = shell(live_server, AdministratorFactory())
    category = category_world["category"].id
    args = f"--category '{category}' --person '{person.user_id}' --since 2020-01-01T00:00:00Z"
    counted = admin(f"roomctl room remove-matching {args} --what-if")
    assert counted.returncode == 0, counted.stderr
    assert "5 message(s) match in 2 room(s)." in counted.stdout
    assert admin(f"roomctl room remove-matching {args}").returncode == 2  # not confirmed
    started = admin(f"roomctl room remove-matching {args} --reason Spam --yes")
    assert started.returncode == 0, started.stderr
    [op] = Operation.objects.filter(kind="moderation.sweep")
    assert str(op.pk) in started.stdout
    run_out(op)
    waited = admin(f"roomctl operation wait {op.pk} --json")
    assert json.loads(waited.stdout)["change"]["removed"] == 5
    assert said(person, first.id) == said(person, second.id) == []


def test_a_notice_the_chat_server_fails_is_left_for_retry_which_posts_it_counted_once(
    client, two_rooms, monkeypatch
):
    from rooms.backend.errors import ChatServerUnavailable
    from rooms.backend.matrix.moderation import ModerationOperations

    (first, _), person = two_rooms

    def unavailable(self, room_id, text, *, key):
        raise ChatServerUnavailable("The chat server cannot be reached.")

    monkeypatch.setattr(ModerationOperations, "post_notice", unavailable)
    op = moderation_services.sweep_start(
        actor=AdministratorFactory(),
        matching=moderation_services.Matching(text="secret"),
        reason="Leak",
        notice=True,
        room_id=first.id,
    )
    op = run_out(op)
    assert op.status == Operation.Status.UNFINISHED
    [result] = op.change["results"]
    assert (result["result"], result["removed"]) == ("failed", 2)  # removed, not twice
    assert said(person, first.id) == ["Hello"]

    monkeypatch.undo()
    op = run_out(moderation_services.sweep_retry(op))  # nothing is left to remove there
    assert op.status == Operation.Status.SUCCEEDED
    [result] = op.change["results"]
    assert (result["result"], result["removed"]) == ("removed", 2)
    assert moderation_services.Sweep.of(op).removed == 2
    assert said(person, first.id) == ["2 messages removed by a moderator: Leak", "Hello"]


def test_older_matches_are_found_behind_many_removed_ones_and_a_removal_skips_none(
    chat, chatting, monkeypatch
):
    """The homeserver's search leaves removed messages out and gives up after ten times a
    page's size of them: the portal asks for a wide window and keeps its place in it."""
    room, person = chatting
    for n in range(3):
        assert person.send(room.id, f"Old secret {n}").status_code == 200
    fresh = [person.send(room.id, f"New secret {n}").json()["event_id"] for n in range(22)]
    for event_id in fresh:
        chat.remove_message(room.id, event_id, "Gone", files=())

    def page(start: str = "", limit: int = 2) -> tuple[list[str], str]:
        found = chat.read_messages(room.id, text="secret", start=start, limit=limit)
        return [m.body for m in found.messages], found.next

    first, following = page()  # 22 removed ones first: asked for 2, it reads past them
    second, last = page(following)
    assert first + second == ["Old secret 2", "Old secret 1", "Old secret 0"]
    assert last == ""  # the end

    # A removal reads a window of matches, removes them, and reads on after it: never
    # again a window it removed from (read again, it looked like the end of the room).
    for n in range(10):
        assert person.send(room.id, f"The plan {n}").status_code == 200
    monkeypatch.setattr(matrix_moderation, "SEARCH_WINDOW", 2)
    monkeypatch.setattr(matrix_moderation, "SEARCH_WINDOW_MOST", 4)
    monkeypatch.setattr(moderation_services, "SWEEP_WINDOW", 2)
    monkeypatch.setattr(moderation_services, "SWEEP_BATCH", 1)
    op = moderation_services.sweep_start(
        actor=AdministratorFactory(),
        matching=moderation_services.Matching(text="plan"),
        reason="Leak",
        notice=False,
        room_id=room.id,
    )
    op = run_out(op, turns=100)
    assert (op.status, moderation_services.Sweep.of(op).removed) == (Operation.Status.SUCCEEDED, 10)
    assert chat.read_messages(room.id, text="plan").messages == []
    kept = chat.read_messages(room.id, text="old", limit=10).messages
    assert [m.body for m in kept] == ["Old secret 2", "Old secret 1", "Old secret 0"]


def test_a_preview_counts_up_to_its_bound_and_the_removal_takes_them_all(
    client, two_rooms, category_world, monkeypatch
):
    monkeypatch.setattr(moderation_services, "PREVIEW_COUNT_AT_MOST", 2)
    client.force_login(AdministratorFactory())
    url = reverse("moderation:sweep")
    criteria = {"category": category_world["category"].id, "text": "secret"}
    counted = client.post(url, criteria)
    assert "2 or more messages</strong> match" in counted.text
    assert "Remove 2+ messages" in counted.text
    client.post(
        url,
        criteria | {"previewed": counted.context["previewed"], "confirm": "yes", "reason": "Leak"},
    )
    op = run_out(Operation.objects.get(kind=moderation_services.SWEEP))
    assert sum(result["removed"] for result in op.change["results"]) == 3
