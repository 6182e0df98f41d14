"""The rules of room roles, as the services apply them: the fast layer, against the
in-memory chat server (their effect on real chat users is in test_services.py)."""

from __future__ import annotations

import pytest

from portal.models import AuditEntry, Outcome
from rooms.backend.errors import ChatNotFound
from rooms.backend.records import Privacy, Role
from rooms.services import roles as role_services
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("room_kwargs", "role", "who", "message"),
    [
        ({}, Role.MEMBER, "outsider", "not in the scope"),
        ({}, Role.MANAGER, "outsider", "not in the scope"),
        ({}, Role.PRESENTER, "member", "only in auditorium rooms"),
        ({"auditorium": True}, Role.PRESENTER, "member", "must be a Member"),
        ({"privacy": Privacy.OPEN}, Role.MEMBER, "member", "Open rooms have no member list"),
    ],
)
def test_the_rules_refuse_with_a_reason_and_are_audited(
    fake_chat, fake_category, room_kwargs, role, who, message
):
    room = fake_category.room(**room_kwargs)
    asked = len(fake_chat.server.changes)
    with pytest.raises(role_services.RoleRefused, match=message):
        role_services.role_add(
            actor=fake_category.people["creator"],
            room_id=room.id,
            role=role,
            user_id=fake_category.people[who].chat_id,
        )
    assert fake_chat.server.changes[asked:] == []
    entry = AuditEntry.objects.get(action=f"role.add.{role}")
    assert entry.outcome == Outcome.DENIED
    assert message in entry.error


def test_unknown_people_are_refused(fake_chat, fake_category):
    room = fake_category.room()
    with pytest.raises(ChatNotFound):
        role_services.role_add(
            actor=fake_category.people["creator"],
            room_id=room.id,
            role=Role.MANAGER,
            user_id="@nobody:fake.test",
        )
    assert fake_chat.server.get_room(room.id).managers == {fake_category.people["creator"].chat_id}


def test_the_last_manager_stays_unless_an_administrator_removes_them(fake_chat, fake_category):
    room, creator = fake_category.room(), fake_category.people["creator"]
    with pytest.raises(role_services.RoleRefused, match="at least one Manager"):
        role_services.role_remove(
            actor=creator, room_id=room.id, role=Role.MANAGER, user_id=creator.chat_id
        )
    assert fake_chat.server.get_room(room.id).managers == {creator.chat_id}
    role_services.role_remove(
        actor=AdministratorFactory(), room_id=room.id, role=Role.MANAGER, user_id=creator.chat_id
    )
    assert fake_chat.server.get_room(room.id).managers == set()
    assert fake_chat.get_room(room.id).managers == set()  # and the index says so


def test_people_without_the_manager_role_cannot_change_roles(fake_chat, fake_category):
    room, member = fake_category.room(), fake_category.people["member"]
    with pytest.raises(role_services.PermissionDenied):
        role_services.role_add(
            actor=member, room_id=room.id, role=Role.MEMBER, user_id=member.chat_id
        )
    assert member.chat_id not in fake_chat.server.get_room(room.id).members


def test_a_member_added_and_removed_is_audited_and_indexed(fake_chat, fake_category):
    room, member = fake_category.room(), fake_category.people["member"].chat_id
    creator = fake_category.people["creator"]
    role_services.role_add(actor=creator, room_id=room.id, role=Role.MEMBER, user_id=member)
    assert member in fake_chat.server.get_room(room.id).members
    assert member in fake_chat.get_room(room.id).members
    role_services.role_remove(actor=creator, room_id=room.id, role=Role.MEMBER, user_id=member)
    assert member not in fake_chat.get_room(room.id).members
    entries = AuditEntry.objects.filter(target_id=room.id, action__startswith="role.")
    assert [(e.action, e.outcome) for e in entries.order_by("id")] == [
        ("role.add.member", Outcome.SUCCEEDED),
        ("role.remove.member", Outcome.SUCCEEDED),
    ]
