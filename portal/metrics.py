"""Prometheus metrics: requests (django-prometheus), chat-server calls and errors by
kind (counted by the chat client), and what is read from the database at scrape time:
the room index's lag and the work left unfinished."""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector


class PortalCollector(Collector):
    """Read at scrape time from the database: how far behind the index is, and how much
    started work is left unfinished."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count

        from rooms.enforcement import open_breaches
        from rooms.models import Operation, RoomRequest
        from rooms.sync import index_age

        age = index_age()
        lag = GaugeMetricFamily(
            "portal_index_lag_seconds",
            "Seconds since the room index's sync worker last heard from the chat server "
            "(-1: never).",
        )
        lag.add_metric([], age.total_seconds() if age is not None else -1)
        yield lag
        unfinished = GaugeMetricFamily(
            "portal_unfinished_operations",
            "Started changes not finished: operations neither completed nor undone (by "
            "kind), approved requests whose room is not made yet.",
            labels=["kind"],
        )
        unfinished.add_metric(
            ["room_request"],
            RoomRequest.objects.filter(status=RoomRequest.Status.APPROVED).count(),
        )
        rows = (
            Operation.objects.filter(status=Operation.Status.UNFINISHED)
            .values_list("kind")
            .annotate(count=Count("pk"))
        )
        for kind, count in rows:
            unfinished.add_metric([kind], count)
        yield unfinished
        breaches = GaugeMetricFamily(
            "portal_open_policy_breaches",
            "Changes made in a chat client against the rules that the portal could not put "
            "back (rooms whose state on the chat server is outside the rules).",
        )
        breaches.add_metric([], open_breaches())
        yield breaches


def exposition() -> bytes:
    """The metrics of every process of this server (gunicorn's workers write theirs to
    PROMETHEUS_MULTIPROC_DIR), then the portal's own, read now."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        processes = generate_latest(registry)
    else:
        processes = generate_latest(REGISTRY)
    own = CollectorRegistry()
    own.register(PortalCollector())
    return processes + generate_latest(own)


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit hook: a worker's live gauges go with it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
