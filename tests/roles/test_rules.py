"""The rules of room roles, as the services apply them: the fast layer, against the
in-memory chat server (their effect on real chat users is in test_services.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from accounts.models import User
from portal.models import AuditEntry, Outcome
from rooms.backend.errors import ChatNotFound
from rooms.backend.records import Privacy, Role, Room, RoomSettings
from rooms.services import roles as role_services
from rooms.services import rooms as room_services
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Category:
    id: str
    people: dict[str, User]  # the Creator, an in-scope person, one out of scope

    def room(self, **changes: Any) -> Room:
        """A room made through the service, as the Creator."""
        settings = RoomSettings(
            **{"name": f"Room {uuid.uuid4().hex[:8]}", "description": "", "category_id": self.id}
            | {"privacy": Privacy.CLOSED}
            | changes
        )
        return room_services.room_create(
            actor=self.people["creator"], settings=settings, submission=uuid.uuid4()
        )


@pytest.fixture
def category(fake_chat) -> Category:
    ids = {
        who: fake_chat.ensure_user(who, password="unused", display_name=who.title()).id
        for who in ("creator", "member", "outsider")
    }
    made = fake_chat.create_category(name="Engineering", description="", creators=[ids["creator"]])
    fake_chat.add_to_category_scope(made.id, [ids["creator"], ids["member"]])
    people = {who: User.objects.create(username=i, chat_id=i) for who, i in ids.items()}
    return Category(made.id, people)


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
    fake_chat, category, room_kwargs, role, who, message
):
    room = category.room(**room_kwargs)
    asked = len(fake_chat.server.changes)
    with pytest.raises(role_services.RoleRefused, match=message):
        role_services.role_add(
            actor=category.people["creator"],
            room_id=room.id,
            role=role,
            user_id=category.people[who].chat_id,
        )
    assert fake_chat.server.changes[asked:] == []
    entry = AuditEntry.objects.get(action=f"role.add.{role}")
    assert entry.outcome == Outcome.DENIED
    assert message in entry.error


def test_unknown_people_are_refused(fake_chat, category):
    room = category.room()
    with pytest.raises(ChatNotFound):
        role_services.role_add(
            actor=category.people["creator"],
            room_id=room.id,
            role=Role.MANAGER,
            user_id="@nobody:fake.test",
        )
    assert fake_chat.server.get_room(room.id).managers == {category.people["creator"].chat_id}


def test_the_last_manager_stays_unless_an_administrator_removes_them(fake_chat, category):
    room, creator = category.room(), category.people["creator"]
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


def test_people_without_the_manager_role_cannot_change_roles(fake_chat, category):
    room, member = category.room(), category.people["member"]
    with pytest.raises(role_services.PermissionDenied):
        role_services.role_add(
            actor=member, room_id=room.id, role=Role.MEMBER, user_id=member.chat_id
        )
    assert member.chat_id not in fake_chat.server.get_room(room.id).members


def test_a_member_added_and_removed_is_audited_and_indexed(fake_chat, category):
    room, member = category.room(), category.people["member"].chat_id
    creator = category.people["creator"]
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
