"""An operation's owner: whether the process that recorded it is known to be gone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portal.models import AuditEntry, Outcome
from rooms import operations, processes
from rooms.models import Operation


def machine_of(owner: str) -> str:
    return owner.partition("|")[0]


def free_pid() -> int:
    """A PID no process holds now."""
    taken = {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}
    return next(pid for pid in range(os.getpid() + 1, 4_194_304) if pid not in taken)


def test_this_process_is_not_gone():
    me = processes.identity()
    assert me.endswith(f"|{os.getpid()}|{me.rpartition('|')[2]}")
    assert not processes.gone(me)


def test_a_pid_no_longer_there_or_now_another_process_is_gone():
    here = machine_of(processes.identity())
    assert processes.gone(f"{here}|{free_pid()}|12345")
    started = processes.identity().rpartition("|")[2]
    assert processes.gone(f"{here}|{os.getpid()}|{int(started) + 1}")  # the PID taken again


@pytest.mark.parametrize("owner", ["", "another-boot/pid:[1]|1|1", "garbage"])
def test_an_owner_not_recorded_or_on_another_machine_cannot_be_told_gone(owner):
    assert not processes.gone(owner)


@pytest.mark.django_db
def test_the_worker_takes_up_at_once_what_a_gone_process_left_running():
    here = machine_of(processes.identity())
    orphan = Operation.objects.create(
        kind="category.adopt", target_id="!a:x", owner=f"{here}|{free_pid()}|1"
    )
    alive = Operation.objects.create(
        kind="category.adopt", target_id="!b:x", owner=processes.identity()
    )
    elsewhere = Operation.objects.create(
        kind="category.adopt", target_id="!c:x", owner="another-boot/pid:[1]|1|1"
    )
    assert operations.resume_abandoned() == []  # not rooms': listed for Retry
    statuses = {
        op.target_id: op.status
        for op in Operation.objects.filter(pk__in=[orphan.pk, alive.pk, elsewhere.pk])
    }
    assert statuses == {
        "!a:x": Operation.Status.UNFINISHED,
        "!b:x": Operation.Status.RUNNING,
        "!c:x": Operation.Status.RUNNING,  # taken up after ABANDONED_AFTER instead
    }
    [entry] = AuditEntry.objects.filter(action="category.adopt")
    assert (entry.target_id, entry.outcome) == ("!a:x", Outcome.PARTIAL)
