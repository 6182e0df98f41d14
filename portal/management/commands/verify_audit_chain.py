from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.audit.chain import verify_chain


class Command(BaseCommand):
    help = (
        "Check the audit log's keyed hash chain and its newest anchor; exits non-zero and "
        "names the entries if broken."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_chain()
        if report.unanchored:
            raise CommandError(
                f"Not confirmed: {report.checked} entries are linked and sealed, but no anchor "
                "was found in AUDIT_ANCHOR_FILE to check the newest against, so entries "
                "removed from the end of the log (or a rewritten log) cannot be ruled out."
            )
        if report.intact:
            self.stdout.write(self.style.SUCCESS(f"Intact: {report.checked} entries checked."))
            return
        for problem in report.breaks:
            where = f"entry {problem.entry_id}" if problem.entry_id else "anchor file"
            self.stdout.write(f"{where}: {problem.reason}")
        raise CommandError(f"The audit chain is broken ({report.checked} entries checked).")
