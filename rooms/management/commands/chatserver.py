from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from rooms.backend.embedded import EmbeddedSynapse


class Command(BaseCommand):
    help = "Run the embedded Synapse homeserver in the foreground until Ctrl-C."

    def handle(self, *args: Any, **options: Any) -> None:
        server = EmbeddedSynapse(
            settings.CHAT_EMBEDDED_DIR,
            port=settings.CHAT_EMBEDDED_PORT,
            server_name=settings.CHAT_EMBEDDED_SERVER_NAME,
        )
        with server:
            server.bootstrap()
            self.stdout.write(f"Chat server {server.server_name} running at {server.url}")
            self.stdout.write("Press Ctrl-C to stop it.")
            try:
                signal.pause()
            except KeyboardInterrupt:
                self.stdout.write("Stopping the chat server.")
