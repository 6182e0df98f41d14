from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from portal.audit import audit_record
from portal.models import Outcome
from tests.browser.helpers import log_in
from tests.factories import AuditorFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_auditor_filters_reads_an_entry_and_exports(page: Page, tmp_path):
    auditor = AuditorFactory()
    for n in range(5):
        audit_record(
            action="room.update",
            outcome=Outcome.FAILED if n == 3 else Outcome.SUCCEEDED,
            target_kind="room",
            target_id=f"!r{n}:portal.test",
            target_label=f"Roadmap {n}",
            before={"description": "old"},
            after={"description": f"new {n}"},
            error="The chat server is not available right now." if n == 3 else "",
        )
    log_in(page, auditor.username, "local-password-1")
    page.get_by_role("link", name="Audit log").click()
    rows = page.locator("#audit-results tbody tr")
    expect(rows).to_have_count(6)  # five entries and the auditor's own login

    page.get_by_label("Outcome").select_option("failed")
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"outcome=failed"))  # kept in the URL, to share

    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="room.update Failed")).to_be_visible()
    changed = page.locator("table.diff tr.changed")
    expect(changed).to_contain_text("new 3")
    expect(page.get_by_text("The chat server is not available right now.")).to_be_visible()

    page.go_back()
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert "outcome-failed" in saved.name
    lines = saved.read_text().splitlines()
    assert len(lines) == 2  # the header and the one failed entry
    assert "Roadmap 3" in lines[1]
