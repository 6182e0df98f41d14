"""Which process owns a recorded operation, and whether that process is gone.

An operation left `running` by a process that died is finished by the sync worker. When
the owner ran on this machine (same kernel boot, same PID namespace) its death is seen at
once: its PID no longer exists, or now belongs to a process started at another moment.
An owner elsewhere (another machine or container) cannot be looked at; its operations are
taken up once left for `operations.ABANDONED_AFTER`."""

from __future__ import annotations

import functools
import os
from pathlib import Path

PROC = Path("/proc")


@functools.cache
def _machine() -> str:
    """This kernel's boot and this PID namespace: where a PID means one process."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(PROC / "self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def _started(pid: int) -> str:
    """When the process started, in clock ticks since boot ("" when it has ended)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count after its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    return "" if fields[0] == "Z" else fields[19]  # a zombie has ended, unreaped


def identity() -> str:
    """This process, as an operation records its owner ("" where /proc is not there)."""
    machine = _machine()
    pid = os.getpid()
    return f"{machine}|{pid}|{_started(pid)}" if machine else ""


def gone(owner: str) -> bool:
    """Whether the process an operation names as its owner is known to have ended."""
    machine, _, process = owner.partition("|")
    pid, _, started = process.partition("|")
    if not machine or machine != _machine() or not pid.isdigit():
        return False  # not recorded, or another machine's: cannot be told from here
    return _started(int(pid)) != started
