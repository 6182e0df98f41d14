"""Room requests against the real Synapse: every transition, audited, and failure + retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.utils import timezone

from portal.models import AuditEntry, Outcome
from rooms.backend.matrix.base import TRIES
from rooms.backend.records import Privacy, RoomSettings
from rooms.index import IndexedChatBackend
from rooms.models import Mail, RoomRequest
from rooms.selectors import requests as request_selectors
from rooms.services import requests as request_services
from rooms.services import rooms as room_services
from tests.conftest import unique
from tests.factories import AdministratorFactory, LocalUserFactory

pytestmark = pytest.mark.django_db
Status = RoomRequest.Status


def settings_for(category_id: str, **changes) -> RoomSettings:
    values = {
        "name": unique("Asked "),
        "description": "Please",
        "category_id": category_id,
        "privacy": Privacy.CLOSED,
    } | changes
    return RoomSettings(**values)


@pytest.fixture
def asked(member, category_world):
    return request_services.request_submit(
        actor=member,
        settings=settings_for(category_world["category"].id),
        justification="We need it",
    )


def actions(request: RoomRequest) -> list[tuple[str, str]]:
    entries = AuditEntry.objects.filter(target_kind="request", target_id=str(request.pk))
    return [(e.action, e.outcome) for e in entries.order_by("id")]


def test_submit_tells_the_approvers(chat, asked, category_world):
    assert asked.status == Status.PENDING
    assert actions(asked) == [("request.submitted", Outcome.SUCCEEDED)]
    assert mail.outbox == []  # these approvers have no e-mail address: nobody to tell


def test_approvers_are_mailed_at_their_chat_server_address(
    chat, category_world, member, django_capture_on_commit_callbacks
):
    creator = category_world["creator"].user_id
    localpart = creator[1:].split(":")[0]
    chat.ensure_user(localpart, password="x" * 12, display_name="C", email="approver@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        request = request_services.request_submit(
            actor=member, settings=settings_for(category_world["category"].id), justification="Why"
        )
    assert mail.outbox[-1].to == ["approver@example.org"]
    [sent] = Mail.objects.filter(about=f"request:{request.pk}")
    assert (sent.status, sent.tries) == (Mail.Status.SENT, 1)
    assert "asks for a room" in mail.outbox[-1].body


def test_outside_the_scope_is_refused_and_audited(outsider, category_world):
    with pytest.raises(PermissionDenied):
        request_services.request_submit(
            actor=outsider, settings=settings_for(category_world["category"].id), justification="x"
        )
    assert AuditEntry.objects.get(action="request.submitted").outcome == Outcome.DENIED
    assert not RoomRequest.objects.exists()


def test_a_name_asked_for_in_a_pending_request_is_flagged(member, asked, category_world):
    with pytest.raises(room_services.RoomSettingsInvalid, match="is not available"):
        request_services.request_submit(
            actor=member,
            settings=settings_for(category_world["category"].id, name=asked.name.upper()),
            justification="again",
        )


def test_approve_creates_the_room_with_the_requester_as_manager(chat, creator, member, asked):
    approved = request_services.request_approve(
        actor=creator,
        pk=asked.pk,
        settings=replace_name(asked, asked.name + " adjusted"),
    )
    assert approved.status == Status.CREATED
    room = chat.get_room(approved.room_id)
    assert room.name == asked.name + " adjusted"
    assert room.managers == {member.chat_id}
    assert member.chat_id in room.members
    assert actions(asked) == [
        ("request.submitted", Outcome.SUCCEEDED),
        ("request.approved", Outcome.SUCCEEDED),
        ("request.created", Outcome.SUCCEEDED),
    ]


def replace_name(request: RoomRequest, name: str) -> RoomSettings:
    settings = request_services.request_settings(request)
    return RoomSettings(
        name,
        settings.description,
        settings.category_id,
        settings.privacy,
        settings.auditorium,
        settings.invitations,
    )


def test_the_second_of_two_approvers_is_told(creator, asked, category_world):
    other = AdministratorFactory()
    request_services.request_approve(
        actor=creator, pk=asked.pk, settings=request_services.request_settings(asked)
    )
    with pytest.raises(request_services.RequestConflict, match="no longer pending"):
        request_services.request_approve(
            actor=other, pk=asked.pk, settings=request_services.request_settings(asked)
        )
    with pytest.raises(request_services.RequestConflict):
        request_services.request_decline(actor=other, pk=asked.pk, reason="late")


def test_nobody_approves_their_own_request_without_create_rights(member, asked):
    with pytest.raises(PermissionDenied):
        request_services.request_approve(
            actor=member, pk=asked.pk, settings=request_services.request_settings(asked)
        )
    assert RoomRequest.objects.get(pk=asked.pk).status == Status.PENDING
    assert ("request.approved", Outcome.DENIED) in actions(asked)


def test_a_name_taken_meanwhile_keeps_the_request_pending(creator, asked, make_room):
    make_room(name=asked.name)
    with pytest.raises(room_services.RoomSettingsInvalid, match="is not available"):
        request_services.request_approve(
            actor=creator, pk=asked.pk, settings=request_services.request_settings(asked)
        )
    assert RoomRequest.objects.get(pk=asked.pk).status == Status.PENDING


def test_creation_failure_is_kept_visible_and_retry_makes_one_room(
    chat, failing_chat, creator, asked, category_world, monkeypatch
):
    failing = failing_chat("m.space.child", times=TRIES)
    monkeypatch.setattr(room_services, "chat_backend", lambda: failing)
    approved = request_services.request_approve(
        actor=creator, pk=asked.pk, settings=request_services.request_settings(asked)
    )
    assert approved.status == Status.APPROVED
    assert approved.error
    assert ("request.creation_failed", Outcome.FAILED) in actions(asked)
    assert ("request.created", Outcome.FAILED) not in actions(asked)  # one entry, not two
    assert not chat.room_name_taken(asked.name)

    monkeypatch.setattr(room_services, "chat_backend", lambda: IndexedChatBackend(lambda: chat))
    retried = request_services.request_retry(actor=creator, pk=asked.pk)
    assert retried.status == Status.CREATED
    again = request_services.request_retry  # a second retry is refused: nothing doubles
    with pytest.raises(request_services.RequestConflict):
        again(actor=creator, pk=asked.pk)
    names = [
        chat.get_room(r).name for r in chat.get_category(category_world["category"].id).room_ids
    ]
    assert names.count(asked.name) == 1


def test_decline_tells_the_requester_why(
    chat, creator, member, asked, django_capture_on_commit_callbacks
):
    localpart = member.chat_id[1:].split(":")[0]
    chat.ensure_user(localpart, password="x" * 12, display_name="M", email="asker@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        request_services.request_decline(actor=creator, pk=asked.pk, reason="Use the existing room")
    assert RoomRequest.objects.get(pk=asked.pk).status == Status.DECLINED
    assert mail.outbox[-1].to == ["asker@example.org"]
    assert "Use the existing room" in mail.outbox[-1].body


def test_edit_and_cancel_by_the_requester_only(creator, member, asked):
    changed = replace_name(asked, asked.name + " v2")
    with pytest.raises(PermissionDenied):
        request_services.request_edit(
            actor=creator, pk=asked.pk, settings=changed, justification="x"
        )
    edited = request_services.request_edit(
        actor=member, pk=asked.pk, settings=changed, justification="Better reason"
    )
    assert (edited.name, edited.justification) == (asked.name + " v2", "Better reason")
    request_services.request_cancel(actor=member, pk=asked.pk)
    with pytest.raises(request_services.RequestConflict):
        request_services.request_cancel(actor=member, pk=asked.pk)
    assert [a for a, _ in actions(asked)] == [
        "request.submitted",
        "request.edited",
        "request.edited",
        "request.cancelled",
        "request.cancelled",
    ]


def test_expiry_command_for_cron(asked, member):
    RoomRequest.objects.filter(pk=asked.pk).update(created_at=timezone.now() - timedelta(days=30))
    call_command("expire_room_requests", "--days", "14")
    assert RoomRequest.objects.get(pk=asked.pk).status == Status.EXPIRED
    assert ("request.expired", Outcome.SUCCEEDED) in actions(asked)


def test_queue_shows_pending_requests_to_their_approvers(creator, member, asked, category_world):
    assert list(request_selectors.approval_queue(user=creator)) == [asked]
    assert list(request_selectors.approval_queue(user=member)) == []
    assert list(request_selectors.approval_queue(user=AdministratorFactory())) == [asked]


def test_the_badge_counts_what_the_queues_list(creator, member, asked, make_room):
    """The badge's statement, built once for a stand-in, counts for each person what
    their own queues hold."""
    from rooms.models import JoinRequest

    room = make_room()  # the creator manages it
    JoinRequest.objects.create(room_id=room.id, requester=member, message="Please")
    administrator, local = AdministratorFactory(), LocalUserFactory()
    for person, waiting in [(creator, 2), (member, 0), (administrator, 2), (local, 0)]:
        assert request_selectors.waiting_count(user=person) == waiting, person
        assert waiting == len(request_selectors.approval_queue(user=person)) + len(
            request_selectors.join_queue(user=person)
        )
