"""IDs answer the same for "not yours" and "not there", and each such refusal leaves a
trace in the audit log."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tokens import token_create
from portal.models import AuditEntry, Outcome
from tests.factories import LocalUserFactory

pytestmark = pytest.mark.django_db


def test_someone_elses_token_and_no_token_are_answered_alike_and_audited():
    owner, prober = LocalUserFactory(), LocalUserFactory()
    token, _ = token_create(actor=owner, name="ci", scope="write", days=1)
    client = Client()
    client.force_login(prober)
    theirs = client.post(reverse("token_revoke", args=[token.pk]))
    absent = client.post(reverse("token_revoke", args=[token.pk + 1000]))
    assert theirs.status_code == absent.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    refusals = AuditEntry.objects.filter(action="token.revoke", outcome=Outcome.DENIED)
    assert sorted(e.target_id for e in refusals) == sorted([str(token.pk), str(token.pk + 1000)])
    assert refusals.count() == 2


def test_the_api_answers_alike_and_audits(client):
    owner, prober = LocalUserFactory(), LocalUserFactory()
    token, _ = token_create(actor=owner, name="ci", scope="write", days=1)
    _, secret = token_create(actor=prober, name="probe", scope="write", days=1)
    headers = {"Authorization": f"Bearer {secret}"}
    theirs = client.delete(f"/api/v1/tokens/{token.pk}", headers=headers)
    absent = client.delete(f"/api/v1/tokens/{token.pk + 1000}", headers=headers)
    assert theirs.status_code == absent.status_code == 404
    assert theirs.json()["detail"] == absent.json()["detail"]
    assert AuditEntry.objects.filter(action="token.revoke", outcome=Outcome.DENIED).count() == 2


def test_changing_a_room_that_is_not_there_through_the_api_is_audited(client):
    _, secret = token_create(actor=LocalUserFactory(), name="probe", scope="write", days=1)
    answer = client.patch(
        "/api/v1/rooms/!nowhere:portal.test",
        data={"description": "x"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 404
    entry = AuditEntry.objects.get(outcome=Outcome.DENIED)
    assert entry.target_id.endswith("!nowhere:portal.test") or "nowhere" in entry.target_label
