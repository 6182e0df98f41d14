"""Room roles against the real Synapse, with their effect on real chat users."""

from __future__ import annotations

import httpx
import pytest

from portal.models import AuditEntry, Outcome
from rooms import jobs
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.backend.records import Role
from rooms.index import IndexedChatBackend
from rooms.models import Operation
from rooms.services import roles as role_services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_added_member_gets_in_and_reads_a_removed_one_cannot(
    chat, creator, make_room, category_world
):
    room = make_room()
    person = category_world["member"]
    role_services.role_add(actor=creator, room_id=room.id, role=Role.MEMBER, user_id=person.user_id)
    assert person.join(room.id).status_code == 200
    assert person.read(room.id).status_code == 200
    role_services.role_remove(
        actor=creator, room_id=room.id, role=Role.MEMBER, user_id=person.user_id
    )
    assert person.user_id not in chat.get_room(room.id).members
    assert person.join(room.id).status_code == 403
    # Matrix keeps what they saw before leaving; nothing said afterwards reaches them.
    manager = category_world["creator"]
    manager.join(room.id)
    assert manager.send(room.id, "said after the removal").status_code == 200
    assert "said after the removal" not in person.read(room.id).text
    entries = AuditEntry.objects.filter(target_id=room.id, action__startswith="role.")
    assert [(e.action, e.outcome) for e in entries.order_by("id")] == [
        ("role.add.member", Outcome.SUCCEEDED),
        ("role.remove.member", Outcome.SUCCEEDED),
    ]


def test_a_presenter_posts_in_an_auditorium_a_plain_member_cannot(
    creator, make_room, category_world
):
    room = make_room(auditorium=True)
    person = category_world["member"]
    role_services.role_add(actor=creator, room_id=room.id, role=Role.MEMBER, user_id=person.user_id)
    person.join(room.id)
    assert person.send(room.id, "may I?").status_code == 403
    role_services.role_add(
        actor=creator, room_id=room.id, role=Role.PRESENTER, user_id=person.user_id
    )
    assert person.send(room.id, "now I may").status_code == 200


def test_bulk_preview_gives_each_line_its_fate(creator, make_room, category_world, make_chat_user):
    room = make_room()
    inside, outsider = category_world["member"].user_id, category_world["outsider"].user_id
    text = "\n".join(
        [inside, f"{creator.chat_id}, {outsider}", "not a chat id", "@ghost:portal.test", inside]
    )
    preview = role_services.bulk_preview(
        actor=creator, room_id=room.id, role=Role.MEMBER, text=text
    )
    assert [(line.line, line.fate) for line in preview] == [
        (inside, "add"),
        (creator.chat_id, "has"),
        (outsider, "refused"),
        ("not a chat id", "malformed"),
        ("@ghost:portal.test", "unknown"),
        (inside, "duplicate"),
    ]


def test_a_huge_paste_is_refused_and_nothing_is_applied(creator, make_room):
    room = make_room()
    text = "\n".join(f"@person{n}:portal.test" for n in range(5000))
    with pytest.raises(role_services.RoleRefused, match="At most 1000 people at once"):
        role_services.bulk_start(actor=creator, room_id=room.id, role=Role.MEMBER, text=text)
    assert not Operation.objects.exists()


@pytest.fixture
def many_in_scope(chat, category_world, make_chat_user):
    people = [make_chat_user(f"bulk{n}").user_id for n in range(6)]
    chat.add_to_category_scope(category_world["category"].id, people)
    return people


def test_bulk_run_adds_everyone_linked_by_one_request_id(chat, creator, make_room, many_in_scope):
    room = make_room()
    op = role_services.bulk_start(
        actor=creator, room_id=room.id, role=Role.MEMBER, text="\n".join(many_in_scope)
    )
    assert op.kind == role_services.ROLES
    assert op.status == Operation.Status.RUNNING
    assert jobs.turn() >= 6  # the job runner's round: every person, a chunk at a time
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert role_services.RoleChanges.of(op).progress == (6, 6)
    assert set(many_in_scope) <= chat.get_room(room.id).members
    entries = AuditEntry.objects.filter(request_id=op.request_id)
    assert entries.filter(action="role.add.member", outcome=Outcome.SUCCEEDED).count() == 6
    assert entries.filter(action="role.bulk.member").count() == 1


class FailAfter(httpx.BaseTransport):
    """The real Synapse, until `allowed` invitations have gone through; then 429s."""

    def __init__(self, allowed: int) -> None:
        self.real, self.allowed = httpx.HTTPTransport(), allowed

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/invite"):
            if self.allowed == 0:
                return httpx.Response(
                    429, json={"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 600_000}
                )
            self.allowed -= 1
        return self.real.handle_request(request)


def test_bulk_run_rate_limited_half_way_then_resumed_without_doubling(
    chat, synapse, creator, make_room, many_in_scope, monkeypatch
):
    room = make_room()
    op = role_services.bulk_start(
        actor=creator, room_id=room.id, role=Role.MEMBER, text="\n".join(many_in_scope)
    )
    limited = MatrixChatBackend(
        base_url=synapse.url,
        server_name=synapse.server_name,
        token=synapse.token,
        transport=FailAfter(allowed=3),
    )
    monkeypatch.setattr(role_services, "chat_backend", lambda: IndexedChatBackend(lambda: limited))
    role_services.role_changes_turn()
    op.refresh_from_db()
    assert op.status == Operation.Status.UNFINISHED
    assert "busy" in op.error
    lines = role_services.RoleChanges.of(op).lines
    assert [line.result for line in lines] == ["done"] * 3 + ["failed"] * 3
    assert lines[4].detail.startswith("Not tried")
    failed = AuditEntry.objects.get(request_id=op.request_id, outcome=Outcome.FAILED)
    assert failed.after["person"] == many_in_scope[3]  # the one tried; the rest were not
    assert role_services.role_changes_turn() == 0  # unfinished: left for its owner

    monkeypatch.setattr(
        role_services, "chat_backend", lambda: IndexedChatBackend(lambda: chat)
    )  # the server has calmed down
    role_services.role_changes_resume(op, actor=creator)
    role_services.role_changes_turn()
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert set(many_in_scope) <= chat.get_room(room.id).members
    added = AuditEntry.objects.filter(
        request_id=op.request_id, action="role.add.member", outcome=Outcome.SUCCEEDED
    )
    assert sorted(e.after["person"] for e in added) == sorted(many_in_scope)  # once each
    assert AuditEntry.objects.filter(action="operation.retry", actor=creator).count() == 1


def test_someone_elses_bulk_add_is_not_theirs_to_resume(creator, make_room):
    room = make_room()
    op = role_services.role_changes_start(
        actor=creator, room=room, changes=role_services.RoleChanges(Role.MEMBER, [])
    )
    with pytest.raises(role_services.PermissionDenied):
        role_services.role_changes_resume(op, actor=UserFactory())
