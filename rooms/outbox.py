"""The outbox: every e-mail the portal sends is recorded first, then delivered, and
tried again with growing pauses when the mail server will not take it. Pages show each
message's state, so nobody is told "you will get an e-mail" about one that failed.

Delivery is tried as soon as the change that wrote the message is committed; the sync
worker tries what is due again (`deliver_due`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from rooms.models import Mail

log = logging.getLogger(__name__)

# Pauses before the second, third, ... try; after the last, the message has failed.
RETRY_AFTER = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
# A message left "being sent" this long was dropped by a process that died.
SENDING_FOR_AT_MOST = timedelta(minutes=5)


def post(
    subject: str, body: str, recipients: Iterable[str], *, about: str, person: User | None = None
) -> Mail | None:
    """Record a message, and deliver it once what wrote it is committed."""
    addresses = sorted({a for a in recipients if a})
    if not addresses:
        return None
    # A subject is one header line: names from older data may hold line breaks.
    mail = Mail.objects.create(
        about=about,
        person=person,
        recipients=addresses,
        subject=" ".join(subject.split()),
        body=body,
    )
    transaction.on_commit(lambda: deliver(mail.pk), robust=True)
    return mail


def deliver(pk: int) -> None:
    """Send one message if it is still waiting (and nobody else is sending it)."""
    taken = Mail.objects.filter(pk=pk, status=Mail.Status.WAITING).update(
        status=Mail.Status.SENDING
    )
    if not taken:
        return
    mail = Mail.objects.get(pk=pk)
    mail.tries += 1
    try:
        send_mail(mail.subject, mail.body, settings.DEFAULT_FROM_EMAIL, mail.recipients)
    except Exception as exc:  # whatever the mail server or backend raised: tried again
        mail.error = f"{type(exc).__name__}: {exc}"
        if mail.tries > len(RETRY_AFTER):
            mail.status = Mail.Status.FAILED
            log.error("Gave up sending “%s” to %s: %s", mail.subject, mail.recipients, exc)
        else:
            mail.status = Mail.Status.WAITING
            mail.next_try_at = timezone.now() + RETRY_AFTER[mail.tries - 1]
            log.warning("Could not send “%s” (try %d): %s", mail.subject, mail.tries, exc)
    else:
        mail.status, mail.sent_at, mail.error = Mail.Status.SENT, timezone.now(), ""
    mail.save(update_fields=["status", "tries", "next_try_at", "error", "sent_at"])


def deliver_due() -> int:
    """Try again what is due, and what a stopped process left being sent; how many."""
    now = timezone.now()
    Mail.objects.filter(
        status=Mail.Status.SENDING, next_try_at__lt=now - SENDING_FOR_AT_MOST
    ).update(status=Mail.Status.WAITING)
    due = list(
        Mail.objects.filter(status=Mail.Status.WAITING, next_try_at__lte=now).values_list(
            "pk", flat=True
        )
    )
    for pk in due:
        deliver(pk)
    return len(due)


def about(kind: str, pk: object) -> str:
    return f"{kind}:{pk}"


def undelivered() -> Iterable[Mail]:
    """Messages not sent yet, or given up on, for administrators."""
    return Mail.objects.exclude(status=Mail.Status.SENT).select_related("person")
