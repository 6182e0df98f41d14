from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from portal.secrets import tighten
from rooms import sync
from rooms.backend import server_client
from rooms.backend.embedded import EmbeddedSynapse, prepare_child
from rooms.demo import seed_demo
from rooms.index import chat_backend


@contextlib.contextmanager
def sync_worker() -> Iterator[None]:
    """The index's sync worker, in its own process, for as long as the portal runs."""
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "index_sync"],
        cwd=settings.BASE_DIR,
        preexec_fn=prepare_child,  # umask and prctl only: safe between fork and exec
    )
    try:
        yield
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


class Command(BaseCommand):
    help = (
        "Serve the portal: start the embedded chat server (unless CHAT_SERVER_URL names one) "
        "and the room index's sync worker, seed the demo data, print the demo logins and "
        "run the web server."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument(
            "--seed",
            action="store_true",
            help="Seed demo data on an existing homeserver too (always done on the embedded one).",
        )

    def handle(self, *args: Any, addrport: str, seed: bool, **options: Any) -> None:
        os.umask(0o077)  # whatever the portal and its chat server write is theirs alone
        tighten(settings.STATE_DIR)
        with contextlib.ExitStack() as stack:
            if not settings.CHAT_SERVER_URL:
                server = stack.enter_context(
                    EmbeddedSynapse(
                        settings.CHAT_EMBEDDED_DIR,
                        port=settings.CHAT_EMBEDDED_PORT,
                        server_name=settings.CHAT_EMBEDDED_SERVER_NAME,
                    )
                )
                server.bootstrap()
                self.stdout.write(f"Embedded chat server {server.server_name} at {server.url}")
                seed = True
            else:
                self.stdout.write(f"Using the chat server at {settings.CHAT_SERVER_URL}")
            # The index first: seeding reads it to never make twice what exists.
            self.stdout.write("Bringing the room index up to date...")
            sync.sync_once(server_client(), timeout_ms=0)
            stack.enter_context(sync_worker())
            if seed:
                self.stdout.write("Seeding demo data...")
                logins = seed_demo(chat_backend())
                self.stdout.write(self.style.SUCCESS(f"\nPortal: http://{addrport}/  Demo logins:"))
                for login in logins:
                    self.stdout.write(login.line())
                self.stdout.write("")
            # No autoreloader: it would restart this command and the chat server with it.
            call_command("runserver", addrport, use_reloader=False)
