from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.audit import audit_record
from portal.audit.chain import LEGACY_SEAL_ACTION, legacy_head


class Command(BaseCommand):
    help = (
        "Re-sign the audit entries written before chain keys existed: checks that they "
        "still verify as written, then records a keyed `audit.legacy_sealed` entry naming "
        "the last of them, after which verify accepts them (and no unkeyed entry after)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            through_id, through_hash, count = legacy_head()
        except ValueError as exc:
            raise CommandError(f"Not sealed: {exc} Nothing was recorded.") from exc
        if not count:
            self.stdout.write("Every entry is keyed: nothing to seal.")
            return
        audit_record(
            action=LEGACY_SEAL_ACTION,
            target_kind="audit",
            target_label="Audit log",
            after={"through_id": through_id, "through_hash": through_hash, "count": count},
        )
        self.stdout.write(
            self.style.SUCCESS(f"Sealed {count} entries from before keys (up to {through_id}).")
        )
