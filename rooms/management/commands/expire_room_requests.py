from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from rooms.services.requests import requests_expire


class Command(BaseCommand):
    help = "Expire room requests pending for longer than the configured days (run from cron)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=settings.ROOM_REQUEST_EXPIRY_DAYS)

    def handle(self, *args: Any, days: int, **options: Any) -> None:
        expired = requests_expire(older_than_days=days)
        self.stdout.write(f"Expired {len(expired)} request(s) pending for over {days} days.")
