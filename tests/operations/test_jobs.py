"""The job runner, apart from the index's sync worker: it carries out the recorded work
(a change to many rooms here), the sync worker only follows the stream; one runner leads;
a database or chat server that is away is waited out, not fatal."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from rooms import jobs, sync
from rooms.backend.records import ChatOptions
from rooms.models import IndexStream, Operation
from rooms.services import categories as category_services
from tests.factories import AdministratorFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.chat]


@pytest.fixture
def waiting(make_room, category_world) -> Operation:
    """A change to many rooms (a category's chat options), handed to the workers."""
    make_room()
    make_room()
    _, op = category_services.category_set_options(
        actor=AdministratorFactory(),
        category_id=category_world["category"].id,
        options=ChatOptions(file_uploads=False),
    )
    assert op is not None
    return op


def test_the_runner_carries_out_the_work_and_the_sync_worker_only_follows_the_stream(chat, waiting):
    IndexStream.objects.update_or_create(
        key=sync.STREAM, defaults={"next_batch": chat.stream_position()}
    )
    asked: list[int] = []  # one turn of the sync worker
    sync.run(lambda: chat, should_stop=lambda: asked.append(1) or len(asked) > 1, name="s")
    waiting.refresh_from_db()
    assert (waiting.status, waiting.change["results"]) == (Operation.Status.RUNNING, [])

    slept: list[float] = []
    jobs.run(should_stop=lambda: bool(slept), name="j", sleep=slept.append)
    waiting.refresh_from_db()
    assert waiting.status == Operation.Status.SUCCEEDED  # straight on while there was work
    assert {r["result"] for r in waiting.change["results"]} == {"changed"}
    assert slept == [pytest.approx(0.2)]  # idle once it was done
    assert IndexStream.objects.get(key=jobs.JOBS).leader == ""  # let go on the way out


def test_one_runner_leads_and_the_others_wait(waiting):
    assert sync.take_lead("elsewhere", key=jobs.JOBS)
    slept: list[float] = []
    jobs.run(should_stop=lambda: sum(slept) >= 1, name="j", sleep=slept.append)
    waiting.refresh_from_db()
    assert waiting.change["results"] == []  # not its turn
    assert IndexStream.objects.get(key=jobs.JOBS).leader == "elsewhere"
    assert sync.take_lead("s", key=sync.STREAM)  # the sync workers' lead is another


def test_a_locked_database_is_waited_out_not_fatal(waiting, monkeypatch):
    real_turn = jobs.turn
    tries: list[int] = []

    def locked_twice() -> int:
        tries.append(1)
        if len(tries) <= 2:
            raise OperationalError("database is locked")
        return real_turn()

    monkeypatch.setattr(jobs, "turn", locked_twice)
    paused: list[float] = []
    monkeypatch.setattr(sync, "pause", lambda seconds, **how: paused.append(seconds))
    jobs.run(should_stop=lambda: len(paused) >= 3, name="j")
    waiting.refresh_from_db()
    assert waiting.status == Operation.Status.SUCCEEDED
    assert paused == [1.0, 2.0, jobs.IDLE_SECONDS]  # backed off twice, worked, then idle
