"""A Synapse module for a homeserver on SQLite (the embedded one): it keeps SQLite's query
planner statistics current, which Synapse never does (on PostgreSQL, autovacuum does).

Without them SQLite plans some of Synapse's joins room-wide. The edits Synapse bundles with
each page of the admin messages API were looked up by scanning every event of the room
for each event of the page: 1.2 s for a page of 1,000 in a room of 6,000 messages, 2 ms
once analysed (the portal's history pages and exports read that API); full-text search
went from 0.7 s to 0.09 s for 600 matches.

Every CHECK_MS it reads how many events the homeserver holds (the newest event's stream
position: an index lookup) and, the first time and whenever that has grown by a quarter
since the last analysis, runs `ANALYZE` with SQLite's `analysis_limit` (a few
milliseconds), in the homeserver's own database connection, between its other queries.
On PostgreSQL it does nothing. Loaded by the embedded homeserver (`rooms.backend.embedded`):

    modules:
      - module: rooms.chatserver.statistics.PlannerStatistics
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from synapse.module_api import ModuleApi
from synapse.storage.engines import Sqlite3Engine

log = logging.getLogger(__name__)

CHECK_MS = 30_000
GROWTH = 1.25  # analysed again once the homeserver holds this many times the events
ANALYSIS_LIMIT = 1000  # rows SQLite reads per index: approximate, and fast at any size


def due(events: int, analysed_at: int | None) -> bool:
    """Whether the statistics are to be gathered, with `events` held now and
    `analysed_at` held at the last analysis (None: never analysed by this process)."""
    return analysed_at is None or events >= max(analysed_at, 1) * GROWTH


class PlannerStatistics:
    def __init__(self, config: Mapping[str, Any], api: ModuleApi) -> None:
        self.api = api
        self.analysed_at: int | None = None
        api.looping_background_call(self.refresh, CHECK_MS, desc="roomportal_statistics")
        api.delayed_background_call(0, self.refresh, desc="roomportal_statistics_first")

    @staticmethod
    def parse_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
        return config

    async def refresh(self) -> None:
        def analyse(txn: Any) -> int | None:
            if not isinstance(txn.database_engine, Sqlite3Engine):
                return None
            txn.execute("SELECT COALESCE(MAX(stream_ordering), 0) FROM events")
            (events,) = txn.fetchone()
            if not due(events, self.analysed_at):
                return self.analysed_at
            txn.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
            txn.execute("ANALYZE")
            log.info("Query planner statistics gathered at %d events", events)
            return int(events)

        self.analysed_at = await self.api.run_db_interaction("roomportal_statistics", analyse)
