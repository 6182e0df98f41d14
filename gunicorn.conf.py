"""gunicorn's settings for the portal (read from the working folder; `make run` and the
systemd units start gunicorn there). Workers, binding and timeouts come from the command
line or GUNICORN_CMD_ARGS."""

from __future__ import annotations

import os
from typing import Any

# Threads in each worker: a connection that sends nothing (a browser's preconnect) waits
# a few seconds in a thread and then in the worker's poller, holding none, so idle
# connections cannot stall the pages as they did one sync worker each for 30 s.
# Four threads: a page is CPU-bound Python under one lock per process, so more threads
# only queue behind it. With 16 connections on the 2-core machine, 8 threads served the
# room page at 465/s with a p99 of 168 ms, 4 threads at 598/s with a p99 of 64 ms
# (bench/load.py --setup single).
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))

# Each request is logged once, as a JSON line with its request ID and person, by the
# portal itself (portal.logs.RequestLogMiddleware).
accesslog = None

# No control socket (`gunicornc`): its default path is one per account, shared by every
# gunicorn that account starts, so two portals would manage each other's workers.
control_socket_disable = True


def child_exit(server: Any, worker: Any) -> None:
    """A worker that stops takes its live metrics with it."""
    from portal.metrics import mark_process_dead

    mark_process_dead(worker.pid)
