from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from accounts.tokens import LONGEST_LIFE, TokenInvalid, token_create


class Command(BaseCommand):
    help = (
        "Make a personal access token for an account that has signed in to the portal (or a "
        "local account), with no browser, and print it: it is shown this once. Audited as "
        "the account's own token.create, made from the command line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "username", help="A local username, a chat ID such as @a:b.org, or its first part"
        )
        parser.add_argument("--name", required=True, help="What the token is for.")
        parser.add_argument("--scope", choices=["read", "write"], default="read")
        parser.add_argument(
            "--days", type=int, default=30, help=f"1 to {LONGEST_LIFE.days} (default 30)."
        )

    def handle(
        self, *args: Any, username: str, name: str, scope: str, days: int, **options: Any
    ) -> None:
        active = User.objects.filter(is_active=True)
        user = active.filter(username=username).first()
        if user is None and not username.startswith("@"):  # alice for @alice:example.org
            chat_users = list(active.filter(chat_id__startswith=f"@{username}:")[:2])
            user = chat_users[0] if len(chat_users) == 1 else None
        if user is None:
            raise CommandError(
                f"No active account named {username!r}: a chat user has one once they have "
                "signed in to the portal."
            )
        try:
            _, secret = token_create(actor=user, name=name, scope=scope, days=days)
        except TokenInvalid as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(secret)
