from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from rooms import sync
from rooms.backend import server_client


class Command(BaseCommand):
    help = (
        "Run the room index's sync worker: follow the chat server's event stream and keep "
        "the index true. Several may run (on several machines): one leads, the others wait."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Apply what is waiting in the stream and stop."
        )

    def handle(self, *args: Any, once: bool, **options: Any) -> None:
        if once:
            result = sync.sync_once(server_client(), timeout_ms=0)
            self.stdout.write(f"Indexed {result.rooms} changed room(s).")
            return
        stopping = []

        def stop(signum: int, frame: Any) -> None:
            stopping.append(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write("Sync worker started; Ctrl-C stops it.")
        sync.run(server_client, should_stop=lambda: bool(stopping))
