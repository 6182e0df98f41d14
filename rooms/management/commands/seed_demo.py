from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from rooms import sync
from rooms.backend import server_client
from rooms.demo import seed_demo
from rooms.index import chat_backend


class Command(BaseCommand):
    help = "Create the demo people, categories and rooms on the chat server (only what is missing)."

    def handle(self, *args: Any, **options: Any) -> None:
        sync.sync_once(server_client(), timeout_ms=0)  # seeding reads what exists from the index
        for login in seed_demo(chat_backend()):
            self.stdout.write(login.line())
