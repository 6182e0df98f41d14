"""The rules of a room's life, as the services apply them: the fast layer, against the
in-memory chat server (what real chat users then can do is in test_services.py). Each
refusal asks nothing of the chat server and is audited."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from django.core.exceptions import PermissionDenied

from portal.models import AuditEntry, Outcome
from rooms.backend.records import Invitations, Privacy, RoomSettings
from rooms.models import RoomSubmission
from rooms.services import rooms as room_services
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db


def last_audit(action: str) -> AuditEntry | None:
    return AuditEntry.objects.filter(action=action).order_by("-id").first()


def outcome(action: str) -> str:
    entry = last_audit(action)
    assert entry is not None, action
    return entry.outcome


def test_a_person_without_create_rights_is_refused_and_audited(fake_chat, fake_category):
    member = fake_category.people["member"]
    with pytest.raises(PermissionDenied):
        room_services.room_create(
            actor=member,
            settings=RoomSettings(name="Mine", description="", category_id=fake_category.id),
            submission=uuid.uuid4(),
        )
    assert "create_room" not in fake_chat.server.changes
    entry = last_audit("room.create")
    assert entry is not None
    assert (entry.outcome, entry.actor) == (Outcome.DENIED, member)


def test_a_name_taken_in_other_letter_case_is_refused(fake_chat, fake_category):
    room = fake_category.room()
    asked = len(fake_chat.server.changes)
    with pytest.raises(room_services.RoomSettingsInvalid) as raised:
        fake_category.room(name=room.name.swapcase())
    assert raised.value.field == "name"
    assert fake_chat.server.changes[asked:] == []
    assert outcome("room.create") == Outcome.FAILED
    assert RoomSubmission.objects.filter(room_id="").count() == 0  # may be posted again


def test_the_second_of_two_concurrent_edits_is_refused(fake_chat, fake_category):
    room = fake_category.room()
    edit = {
        "actor": fake_category.people["creator"],
        "room_id": room.id,
        "auditorium": False,
        "invitations": Invitations.INHERIT,
        "version": room_services.room_version(room),
    }
    room_services.room_update(name=room.name + " one", description="first", **edit)
    with pytest.raises(room_services.StaleEdit) as raised:
        room_services.room_update(name=room.name + " two", description="second", **edit)
    assert raised.value.current.name == room.name + " one"
    assert fake_chat.server.get_room(room.id).settings.description == "first"
    assert outcome("room.update") == Outcome.FAILED


def test_a_non_manager_cannot_change_a_room(fake_chat, fake_category):
    room = fake_category.room()
    with pytest.raises(PermissionDenied):
        room_services.room_set_privacy(
            actor=fake_category.people["member"], room_id=room.id, privacy=Privacy.OPEN
        )
    assert fake_chat.server.get_room(room.id).settings.privacy is Privacy.CLOSED
    assert outcome("room.privacy") == Outcome.DENIED


def test_a_move_needs_create_rights_in_the_target(fake_chat, fake_category):
    room = fake_category.room()
    elsewhere = fake_chat.create_category(name="Elsewhere", description="")
    with pytest.raises(PermissionDenied):
        room_services.room_move(
            actor=fake_category.people["creator"],
            room_id=room.id,
            category_id=elsewhere.id,
            version=room_services.room_version(room),
        )
    assert fake_chat.server.get_room(room.id).settings.category_id == fake_category.id
    assert outcome("room.move") == Outcome.DENIED


def test_only_administrators_delete_and_they_confirm_the_name(fake_chat, fake_category):
    room = fake_category.room()
    with pytest.raises(PermissionDenied):
        room_services.room_delete(
            actor=fake_category.people["creator"], room_id=room.id, confirm_name=room.name
        )
    admin = AdministratorFactory()
    with pytest.raises(room_services.RoomSettingsInvalid):
        room_services.room_delete(actor=admin, room_id=room.id, confirm_name="something else")
    assert fake_chat.server.room_exists(room.id)
    room_services.room_delete(actor=admin, room_id=room.id, confirm_name=room.name)
    assert not fake_chat.server.room_exists(room.id)
    outcomes = list(
        AuditEntry.objects.filter(action="room.delete")
        .order_by("id")
        .values_list("outcome", flat=True)
    )
    assert outcomes == [Outcome.DENIED, Outcome.FAILED, Outcome.SUCCEEDED]


def test_privacy_warnings_say_what_happens(fake_chat, fake_category):
    room = fake_category.room()
    category = fake_chat.get_category(fake_category.id)
    assert "disappear" in room_services.privacy_change_warning(room, category, Privacy.SECRET)
    assert "kept" in room_services.privacy_change_warning(room, category, Privacy.OPEN)
    assert room_services.privacy_change_warning(room, category, Privacy.CLOSED) == ""
    for start, said in ((Privacy.OPEN, "only members get in"), (Privacy.SECRET, "listed")):
        was = replace(room, settings=replace(room.settings, privacy=start))
        assert said in room_services.privacy_change_warning(was, category, Privacy.CLOSED)
