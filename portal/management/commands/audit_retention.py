from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from portal.audit.retention import remove_older_than


class Command(BaseCommand):
    help = (
        "Export audit entries older than --days to a JSON Lines file, then remove them, "
        "leaving a checkpoint entry so the hash chain still verifies."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, required=True, help="Keep this many days.")
        parser.add_argument("--export-dir", type=Path, default=Path("."))

    def handle(self, *args: Any, days: int, export_dir: Path, **options: Any) -> None:
        cutoff = timezone.now() - timedelta(days=days)
        export_dir.mkdir(parents=True, exist_ok=True)
        target = export_dir / f"audit-before-{cutoff:%Y%m%d-%H%M%S}.jsonl"
        removed = remove_older_than(cutoff, export_to=target)
        if removed:
            self.stdout.write(f"Exported and removed {removed} entries; export: {target}")
        else:
            self.stdout.write(f"Nothing older than {days} days.")
