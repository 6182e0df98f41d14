from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.audit import audit_record
from rooms import sync
from rooms.backend import server_client


class Command(BaseCommand):
    help = (
        "Compare the room index with the chat server and list every difference; --fix "
        "makes the index what the server has. Exits 1 when differences remain."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fix", action="store_true", help="Make the index match the server.")

    def handle(self, *args: Any, fix: bool, **options: Any) -> None:
        found = sync.reconcile(server_client(), fix=fix)
        for difference in found:
            self.stdout.write(difference.line())
        if fix:
            audit_record(
                action="index.reconciled",
                target_kind="index",
                target_label="Room index",
                after={"differences": len(found)},
            )
            remaining = sync.reconcile(server_client())
            self.stdout.write(f"{len(found)} difference(s) found; {len(remaining)} remain.")
        else:
            remaining = found
            self.stdout.write(f"{len(found)} difference(s).")
        if remaining:
            raise CommandError("The index and the chat server differ.", returncode=1)
