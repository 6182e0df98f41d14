from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User, looks_like_chat_id
from portal.audit import audit_record
from rooms.backend.records import is_chat_id

ROLES = {
    "administrator": "is_portal_admin",
    "auditor": "is_auditor",
    "compliance-officer": "is_compliance_officer",
}


class Command(BaseCommand):
    help = (
        "Grant or revoke a portal role (administrator, auditor, compliance-officer) for a "
        "local or chat account."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "username", help="A local username, or a chat ID such as @a:example.org"
        )
        parser.add_argument("role", choices=sorted(ROLES))
        parser.add_argument("--revoke", action="store_true", help="Take the role away instead.")

    def handle(self, *args: Any, username: str, role: str, revoke: bool, **options: Any) -> None:
        if looks_like_chat_id(username) and not is_chat_id(username):
            raise CommandError(f"{username!r} is not a chat ID (such as @alice:example.org).")
        user = User.objects.filter(username=username).first()
        if user is not None and user.chat_id is None and looks_like_chat_id(username):
            raise CommandError(
                f"The local account {username!r} is named like a chat ID: rename it first "
                "(a local account's username cannot start with “@”)."
            )
        if user is None and username.startswith("@"):
            # A chat user who has not logged in yet: their account is made now.
            user = User.objects.create(username=username, chat_id=username)
            user.set_unusable_password()
            user.save()
        if user is None:
            raise CommandError(f"No account named {username!r}. Create it with createsuperuser.")
        field = ROLES[role]
        before = getattr(user, field)
        setattr(user, field, not revoke)
        user.save(update_fields=[field])
        audit_record(
            action=f"account.role_{'revoke' if revoke else 'grant'}",
            target_kind="user",
            target_id=user.chat_id or user.username,
            target_label=user.label,
            before={role: before},
            after={role: not revoke},
        )
        verb = "no longer has" if revoke else "now has"
        self.stdout.write(self.style.SUCCESS(f"{username} {verb} the {role} role."))
