"""E-mail goes through the outbox: recorded, delivered, tried again when the mail server
will not take it, given up in the end; the request page and the administrators' list say
which, never "sent" for a message that was not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from rooms import outbox
from rooms.backend.records import Privacy, RoomSettings
from rooms.models import Mail
from rooms.services import requests as request_services
from tests.conftest import unique
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_mail_server(settings):
    """SMTP to a port where nothing listens: every try is refused, as by a server down."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9


def test_a_refused_message_waits_is_tried_again_and_at_last_given_up(
    no_mail_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        posted = outbox.post("Hello", "Body", ["someone@example.org"], about="request:1")
    assert posted is not None
    posted.refresh_from_db()
    assert (posted.status, posted.tries) == (Mail.Status.WAITING, 1)
    assert "ConnectionRefusedError" in posted.error
    assert posted.next_try_at > timezone.now()
    assert outbox.deliver_due() == 0  # not due yet
    for _ in outbox.RETRY_AFTER:
        Mail.objects.filter(pk=posted.pk).update(next_try_at=timezone.now())
        assert outbox.deliver_due() == 1
    posted.refresh_from_db()
    assert (posted.status, posted.tries) == (Mail.Status.FAILED, len(outbox.RETRY_AFTER) + 1)
    assert list(outbox.undelivered()) == [posted]


def test_a_waiting_message_is_sent_once_the_server_takes_it():
    waiting = Mail.objects.create(about="request:2", recipients=["a@example.org"], subject="S")
    assert outbox.deliver_due() == 1
    waiting.refresh_from_db()
    assert waiting.status == Mail.Status.SENT
    assert [m.subject for m in mail.outbox] == ["S"]
    assert outbox.deliver_due() == 0  # never twice


def test_a_message_a_dead_process_was_sending_is_sent_again():
    dropped = Mail.objects.create(
        about="request:3",
        recipients=["a@example.org"],
        subject="S",
        status=Mail.Status.SENDING,
        next_try_at=timezone.now() - outbox.SENDING_FOR_AT_MOST - timedelta(seconds=1),
    )
    assert outbox.deliver_due() == 1
    dropped.refresh_from_db()
    assert dropped.status == Mail.Status.SENT


def test_the_request_page_and_the_administrators_say_the_mail_was_not_sent(
    client, chat, member, category_world, no_mail_server, django_capture_on_commit_callbacks
):
    creator = category_world["creator"].user_id
    chat.ensure_user(
        creator[1:].split(":")[0], password="x" * 12, display_name="C", email="c@example.org"
    )
    with django_capture_on_commit_callbacks(execute=True):
        asked = request_services.request_submit(
            actor=member,
            settings=RoomSettings(
                unique("Asked "), "", category_world["category"].id, Privacy.CLOSED
            ),
            justification="Because",
        )
    client.force_login(member)
    page = client.get(reverse("requests:detail", args=[asked.pk])).content.decode()
    assert "not sent yet: tried 1 time" in page
    client.force_login(AdministratorFactory())
    listed = client.get(reverse("operations:list")).content.decode()
    assert "E-mail not delivered" in listed
    assert "c@example.org" in listed
