"""The job runner: the portal's recorded work, carried out apart from the index's sync
worker, which only follows the chat server's stream (so a change to 5,000 rooms or a
removal of 10,000 messages never keeps the index waiting):

- operations a stopped portal process left part-way (`operations.resume_abandoned`);
- changes to many rooms, a few rooms a turn (`services.rooms.bulk_change_step`);
- changes of a role for many people (a pasted list, the API's), a chunk a turn, and
  those a web process began and died doing (`services.roles.role_changes_turn`);
- removals of messages across rooms, a batch a turn (`services.moderation.sweep_step`);
- mail that is due (`outbox.deliver_due`);
- the directory's groups and OUs in categories' scopes and rooms' roles, read every
  DIRECTORY_POLL_SECONDS and applied (`services.directory_roles.keep_in_step`);
- room names claimed by a creation or rename whose process died, given back after
  ten minutes (`index.give_back_stale_claims`).

Several may run (on several machines): one leads, holding a lease of its own in the
database, the others wait. `runportal` supervises it as it does the sync worker: started
again whenever it dies, each death counted on /health/ready. A database that is away (a
locked SQLite file, a PostgreSQL restart) or a chat server that is away is waited out."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from django.db import DatabaseError, close_old_connections

from rooms import index, operations, outbox, sync
from rooms.backend.errors import ChatBackendError
from rooms.services.directory_roles import keep_in_step
from rooms.services.moderation import sweep_step
from rooms.services.roles import role_changes_turn
from rooms.services.rooms import bulk_change_step

log = logging.getLogger(__name__)

JOBS = "jobs"  # its lease and its deaths, beside the sync worker's
IDLE_SECONDS = 1.0  # between turns that found nothing to do


def turn() -> int:
    """One round of every kind of job that is due; how many things were done."""
    done = 0
    for op in operations.resume_abandoned():
        log.warning(
            "Took up %s on %s, left by a stopped process: %s", op.kind, op.target_id, op.status
        )
        done += 1
    if changed := bulk_change_step():
        log.info("Changed %d room(s) of changes to many rooms.", changed)
    if people := role_changes_turn():
        log.info("Changed the roles of %d person(s) of changes of roles.", people)
    if removed := sweep_step():
        log.info("Removed %d message(s) of removals across rooms.", removed)
    if followed := keep_in_step():
        log.info("Applied %d change(s) of the directory to scopes and roles.", followed)
    if given := index.give_back_stale_claims():
        log.warning("Gave back %d room name(s) claimed by changes that never finished.", given)
    return done + changed + people + removed + followed + given + outbox.deliver_due()


def run(
    *,
    should_stop: Callable[[], bool],
    name: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run jobs until told to stop: lead or wait, go straight on while there is work,
    back off while the chat server or the database is away, and let go of the lead on
    the way out."""
    name = name or sync.worker_name()
    backoff = 1.0
    try:
        while not should_stop():
            try:
                leading = sync.take_lead(name, key=JOBS)
                done = turn() if leading else 0
            except (ChatBackendError, DatabaseError) as exc:
                away = "chat server" if isinstance(exc, ChatBackendError) else "database"
                log.warning("The %s is away (%s); trying again in %.0f s.", away, exc, backoff)
                if isinstance(exc, DatabaseError):
                    close_old_connections()
                sync.pause(backoff, should_stop=should_stop, sleep=sleep)
                backoff = min(backoff * 2, sync.MAX_BACKOFF_SECONDS)
                continue
            backoff = 1.0
            if not done:
                wait = IDLE_SECONDS if leading else sync.POLL_SECONDS
                sync.pause(wait, should_stop=should_stop, sleep=sleep)
    finally:
        with contextlib.suppress(DatabaseError):
            sync.let_go(name, key=JOBS)
