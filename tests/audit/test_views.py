"""Audit review: access, filters, keyset pages, an entry's page, export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from accounts.models import User
from portal.audit import audit_record
from portal.audit.chain import anchor
from portal.audit.filters import KNOWN_ACTIONS, AuditFilterForm
from portal.models import AuditEntry, Outcome
from tests.factories import AdministratorFactory, AuditorFactory, UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def auditor(client):
    user = AuditorFactory()
    client.force_login(user)
    return user


@pytest.fixture
def log():
    alice = UserFactory(username="@alice:portal.test", chat_id="@alice:portal.test")
    entries = []
    for n in range(120):
        entries.append(
            audit_record(
                action="room.update" if n % 2 else "room.create",
                actor=alice if n % 3 == 0 else None,
                outcome=Outcome.FAILED if n % 5 == 0 else Outcome.SUCCEEDED,
                target_kind="room",
                target_id=f"!room{n}:portal.test",
                target_label=f"Room {n}",
                category_id="!eng:portal.test",
                category_label="Engineering",
                before={"name": f"Room {n}"},
                after={"name": f"Room {n} renamed"},
                request_id="shared" if n in (10, 11) else f"req{n}",
            )
        )
    return entries


@pytest.mark.parametrize("name", ["audit:list", "audit:verify"])
def test_everyone_but_auditors_and_administrators_is_refused(client, name):
    client.force_login(UserFactory())
    assert client.get(reverse(name)).status_code == 403
    assert client.get(reverse("audit:export", args=["csv"])).status_code == 403
    client.force_login(AdministratorFactory())
    assert client.get(reverse(name)).status_code == 200


def test_an_entry_page_is_refused_to_others(client, log):
    client.force_login(UserFactory())
    assert client.get(reverse("audit:entry", args=[log[0].pk])).status_code == 403


def test_newest_first_with_keyset_pages(client, auditor, log):
    first = client.get(reverse("audit:list"))
    shown = [e.pk for e in first.context["entries"]]
    assert shown == sorted((e.pk for e in log), reverse=True)[:50]
    second = client.get(reverse("audit:list"), {"before": first.context["older"]})
    assert second.context["entries"][0].pk == shown[-1] - 1
    back = client.get(reverse("audit:list"), {"after": second.context["newer"]})
    assert [e.pk for e in back.context["entries"]] == shown


def test_filters_combine_and_stay_in_the_links(client, auditor, log):
    response = client.get(
        reverse("audit:list"),
        {"actor": "@alice:portal.test", "action": "room.", "outcome": "failed", "target": "Room 1"},
        **HTMX,
    )
    fragment = response.content.decode()  # the results alone, not the page
    assert fragment.lstrip().startswith('<div id="audit-results">')
    assert "<h1" not in fragment
    found = response.context["entries"]
    assert found
    for entry in found:
        assert entry.actor_username == "@alice:portal.test"
        assert entry.outcome == "failed"
        assert "Room 1" in entry.target_label
    assert "outcome=failed" in response.context["query"]


def test_target_by_id_and_free_text(client, auditor, log):
    by_id = client.get(reverse("audit:list"), {"target": "!room7:portal.test"})
    assert [e.target_id for e in by_id.context["entries"]] == ["!room7:portal.test"]
    text = client.get(reverse("audit:list"), {"q": "Room 119"})
    assert [e.target_label for e in text.context["entries"]] == ["Room 119"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "2026-13-45"}, "Enter a date as YYYY-MM-DD."),
        ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "“To” is before “From”"),
        ({"outcome": "exploded"}, "Choose an outcome from the list."),
        ({"q": "x" * 10_000}, "at most 200 characters"),
    ],
)
def test_bad_filters_are_a_clear_message(client, auditor, log, params, message):
    response = client.get(reverse("audit:list"), params)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["entries"] == []


@pytest.mark.parametrize(
    "value", ["' OR 1=1 --", '"; DROP TABLE portal_auditentry; --', "%", "_", "\\", "<script>"]
)
def test_injection_attempts_find_nothing_and_break_nothing(client, auditor, log, value):
    count = AuditEntry.objects.count()
    for field in ("actor", "action", "target", "q"):
        response = client.get(reverse("audit:list"), {field: value})
        assert response.status_code == 200
        assert response.context["entries"] == []
    assert AuditEntry.objects.count() == count


def test_date_range(client, auditor, log):
    today = log[0].created_at.date().isoformat()
    response = client.get(reverse("audit:list"), {"date_from": today, "date_to": today})
    assert len(response.context["entries"]) == 50
    assert client.get(reverse("audit:list"), {"date_to": "2000-01-01"}).context["entries"] == []


def test_entry_page_shows_the_difference_and_its_request(client, auditor, log):
    response = client.get(reverse("audit:entry", args=[log[10].pk]))
    diff = response.context["diff"]
    assert diff == [
        {"key": "name", "before": "Room 10", "after": "Room 10 renamed", "changed": True}
    ]
    assert [e.pk for e in response.context["same_request"]] == [log[11].pk]


def test_csv_export_streams_the_filtered_set_and_is_recorded(client, auditor, log):
    response = client.get(reverse("audit:export", args=["csv"]), {"outcome": "failed"})
    assert response.streaming
    assert "outcome-failed" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 24
    assert {row["outcome"] for row in rows} == {"failed"}
    assert json.loads(rows[0]["after"]) == {"name": "Room 0 renamed"}
    recorded = AuditEntry.objects.get(action="audit.export")
    assert recorded.actor == auditor
    assert recorded.after == {"format": "csv", "filters": {"outcome": "failed"}}


def test_jsonl_export(client, auditor, log):
    response = client.get(reverse("audit:export", args=["jsonl"]), {"action": "room.create"})
    lines = b"".join(response.streaming_content).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 60
    assert records[0]["id"] < records[-1]["id"]  # oldest first, as a file is read
    assert {r["action"] for r in records} == {"room.create"}


def test_unknown_export_format_is_404(client, auditor):
    assert client.get("/audit/export.xlsx").status_code == 404


def test_verify_page(client, auditor, log):
    # The entries of this test are never committed, so nothing anchored their head yet.
    unanchored = client.post(reverse("audit:verify"), **HTMX).content.decode()
    assert "Not confirmed" in unanchored
    assert "intact" not in unanchored
    anchor(AuditEntry.objects.latest("id"))
    response = client.post(reverse("audit:verify"), **HTMX)
    expected = f"The chain is intact: {AuditEntry.objects.count()} entries checked, up to"
    assert expected in response.content.decode()


FORMULAS = [
    '=HYPERLINK("http://evil.example","x")',
    "=1+2",
    "+1",
    "-2+3",
    "@SUM(A1)",
    "\tTabbed",
    "\rReturned",
    "=cmd|' /C calc'!A0",
    '+"x"',
    "-",
    "@",
]


def export(client, fmt: str, **filters: str) -> str:
    response = client.get(reverse("audit:export", args=[fmt]), filters)
    return b"".join(response.streaming_content).decode()


def test_csv_cells_never_start_a_spreadsheet_formula(client, auditor):
    for label in FORMULAS:
        audit_record(
            action="room.create",
            target_kind="room",
            target_label=label,
            category_label=label,
            error=label,
        )
    rows = list(csv.DictReader(io.StringIO(export(client, "csv", action="room.create"))))
    assert sorted(row["target_label"] for row in rows) == sorted("'" + f for f in FORMULAS)
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (column, value)
    assert any(row["before"] == "" for row in rows)  # empty stays empty


def test_jsonl_keeps_the_values_exactly(client, auditor):
    for label in FORMULAS:
        audit_record(action="room.create", target_kind="room", target_label=label)
    lines = export(client, "jsonl", action="room.create").splitlines()
    assert sorted(json.loads(line)["target_label"] for line in lines) == sorted(FORMULAS)


@pytest.mark.parametrize("query", [{"before": "²"}, {"after": "²"}, {"before": "9" * 40}])
def test_a_page_link_nobody_made_is_a_clear_400(client, auditor, query):
    response = client.get(reverse("audit:list"), query)
    assert response.status_code == 400
    assert "page link is not valid" in response.content.decode()


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_a_date_no_timestamp_can_hold_is_a_form_error(client, auditor, day):
    page = client.get(reverse("audit:list"), {"date_to": day, "date_from": day})
    assert page.status_code == 200
    assert "Enter a date between" in page.content.decode()
    download = client.get(reverse("audit:export", args=["csv"]), {"date_to": day})
    assert download.status_code == 400


def test_every_suggested_action_finds_its_entries(client, auditor):
    """Each action the filter suggests finds its entries (and those of the actions under
    it, as an area), nothing else; the page shows what the filter finds."""
    for action in [*KNOWN_ACTIONS, "something.else"]:
        audit_record(action=action)
    for suggested in KNOWN_ACTIONS:
        form = AuditFilterForm({"action": suggested})
        assert form.is_valid(), form.errors
        found = set(form.apply(AuditEntry.objects.all()).values_list("action", flat=True))
        assert suggested in found, suggested
        assert all(a == suggested or a.startswith(f"{suggested}.") for a in found), found
    shown = client.get(reverse("audit:list"), {"action": KNOWN_ACTIONS[0]}).context["entries"]
    assert {e.action for e in shown} == set(
        AuditFilterForm({"action": KNOWN_ACTIONS[0]})
        .apply(AuditEntry.objects.all())
        .values_list("action", flat=True)
    )


@pytest.mark.parametrize(("typed", "expected"), [("room", 2), ("room.", 2), ("room.knock", 1)])
def test_an_area_finds_every_action_in_it(client, auditor, typed, expected):
    audit_record(action="room.knock.declined")
    audit_record(action="room.create")
    audit_record(action="roomy.other")
    found = client.get(reverse("audit:list"), {"action": typed}).context["entries"]
    assert len(found) == expected


def test_the_actor_is_found_by_username_chat_id_localpart_or_display_name(client, auditor):
    carol = User.objects.create(
        username="@carol:portal.test", chat_id="@carol:portal.test", display_name="Carol Creator"
    )
    audit_record(action="room.create", actor=carol)
    audit_record(action="room.create", actor=auditor)
    for typed in ("@carol:portal.test", "carol", "Carol Creator", "carol creator"):
        found = client.get(reverse("audit:list"), {"actor": typed}).context["entries"]
        assert [e.actor_chat_id for e in found] == ["@carol:portal.test"], typed
