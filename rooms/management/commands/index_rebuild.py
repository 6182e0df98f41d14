from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from rooms import sync
from rooms.backend import server_client


class Command(BaseCommand):
    help = (
        "Rebuild the room index from the chat server: read every room and space the "
        "service account is in, and drop what the server no longer has."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        since = sync.resync(server_client(), reason="rebuilt by an administrator")
        took = time.monotonic() - started
        self.stdout.write(f"Index rebuilt in {took:.1f} s; the stream resumes at {since}.")
