from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.audit_chain import verify_chain


class Command(BaseCommand):
    help = "Check the audit log's hash chain; exits non-zero and names the entries if broken."

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_chain()
        if report.intact:
            self.stdout.write(self.style.SUCCESS(f"Intact: {report.checked} entries checked."))
            return
        for problem in report.breaks:
            self.stdout.write(f"entry {problem.entry_id}: {problem.reason}")
        raise CommandError(f"The audit chain is broken ({report.checked} entries checked).")
