from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from portal.models import AuditEntry
from tests.factories import LocalUserFactory

pytestmark = pytest.mark.django_db


def test_grant_and_revoke_auditor():
    user = LocalUserFactory()
    call_command("grant_role", user.username, "auditor")
    user.refresh_from_db()
    assert user.is_auditor
    assert user.can_audit
    assert not user.is_administrator
    call_command("grant_role", user.username, "auditor", "--revoke")
    user.refresh_from_db()
    assert not user.is_auditor
    assert list(AuditEntry.objects.values_list("action", flat=True)) == [
        "account.role_revoke",
        "account.role_grant",
    ]


def test_grant_compliance_officer():
    user = LocalUserFactory()
    call_command("grant_role", user.username, "compliance-officer")
    user.refresh_from_db()
    assert user.is_compliance_officer
    assert user.can_read_history
    assert not user.can_audit
    assert not user.is_administrator
    entry = AuditEntry.objects.get(action="account.role_grant")
    assert entry.after == {"compliance-officer": True}


def test_grant_administrator_to_a_chat_user_before_first_login():
    call_command("grant_role", "@newcomer:portal.test", "administrator")
    user = User.objects.get(chat_id="@newcomer:portal.test")
    assert user.is_administrator
    assert not user.has_usable_password()


def test_unknown_local_account_is_an_error():
    with pytest.raises(CommandError, match="No account named"):
        call_command("grant_role", "ghost", "auditor")
