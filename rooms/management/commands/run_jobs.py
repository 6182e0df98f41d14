from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand

from rooms import jobs


class Command(BaseCommand):
    help = (
        "Run the job runner: operations a stopped process left, changes to many rooms, "
        "removals of messages across rooms, mail. Several may run: one leads."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = []

        def stop(signum: int, frame: Any) -> None:
            stopping.append(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write("Job runner started; Ctrl-C stops it.")
        jobs.run(should_stop=lambda: bool(stopping))
