"""A category's message retention ("keep messages for N days": every room's retention
policy, which the homeserver honours and its module holds against chat clients) and its
"Managers read the history" option, against a real Synapse."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms import index
from rooms.backend.records import ChatOptions, Role
from rooms.chatserver.policy import DAY_MS
from rooms.models import Operation
from rooms.services import categories as category_services
from tests.api.test_api import call, make_token
from tests.api.test_roomctl import shell
from tests.categories.test_chat_options import run_worker, said
from tests.factories import AdministratorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.chat]

KEPT = ChatOptions(keep_days=30, managers_read=True)


@pytest.fixture
def kept(make_room, category_world):
    """A category whose rooms keep messages 30 days and whose Managers read them."""
    admin = AdministratorFactory()
    room = make_room()
    _, op = category_services.category_set_options(
        actor=admin, category_id=category_world["category"].id, options=KEPT
    )
    assert op is not None
    run_worker()
    return room


def test_an_administrator_sets_retention_from_the_page_and_every_room_carries_it(
    client, make_room, category_world, chat
):
    category = category_world["category"]
    room = make_room()
    client.force_login(AdministratorFactory())
    url = reverse("categories:options", args=[category.id])
    chosen = {"chat_history": "on", "file_uploads": "on", "keep_days": "30"}
    preview = client.post(url, chosen)
    assert "Messages kept: for ever → <strong>30 days</strong>" in preview.text
    assert "this cannot be undone" in preview.text
    wrong = client.post(url, chosen | {"keep_days": "-1"})
    assert wrong.status_code == 400
    applied = client.post(url, chosen | {"confirm": "on"})
    assert applied.status_code == 302
    run_worker()
    state = chat.read_state(room.id)
    assert state.content("m.room.retention") == {"max_lifetime": 30 * DAY_MS}
    assert index.room(room.id).options.keep_days == 30
    shown = client.get(reverse("categories:detail", args=[category.id])).text
    assert 'name="keep_days" value="30"' in shown
    entry = AuditEntry.objects.get(action="category.options", outcome=Outcome.SUCCEEDED)
    assert (entry.before["keep_days"], entry.after["keep_days"]) == (0, 30)
    assert make_room().options.keep_days == 30  # a room made later takes it
    assert chat.read_state(make_room().id).content("m.room.retention") == {
        "max_lifetime": 30 * DAY_MS
    }


def test_a_chat_client_cannot_change_or_drop_the_retention(kept, category_world):
    manager = category_world["creator"]
    assert manager.join(kept.id).is_success
    for content in ({"max_lifetime": DAY_MS}, {}):
        answer = manager.put_state(kept.id, "m.room.retention", content)
        assert answer.status_code == 403, content
        assert "keeps messages for 30 days" in answer.json()["error"]


def test_a_room_without_retention_cannot_be_given_one_from_a_chat_client(make_room, category_world):
    room, manager = make_room(), category_world["creator"]
    assert manager.join(room.id).is_success
    answer = manager.put_state(room.id, "m.room.retention", {"max_lifetime": 1000})
    assert answer.status_code == 403
    assert "keeps messages for ever" in answer.json()["error"]


def test_the_homeserver_honours_a_rooms_retention(make_room, category_world, chat):
    """Retention is on in the embedded homeserver: a message older than the room's
    lifetime is no longer given to chat clients (the purge deletes it later)."""
    room, manager = make_room(), category_world["creator"]
    assert manager.join(room.id).is_success
    assert manager.send(room.id, "soon expired").is_success
    time.sleep(1.5)
    chat._put_state(room.id, "m.room.retention", {"max_lifetime": 1000})  # what a day does
    assert "soon expired" not in said(manager, room.id)


def test_managers_read_their_rooms_history_only_where_the_category_lets_them(
    client, creator, kept, make_room, category_world
):
    client.force_login(creator)  # the room's Manager
    page = client.get(reverse("rooms:detail", args=[kept.id]))
    assert "Read the history" in page.text
    history = client.get(reverse("moderation:history", args=[kept.id]))
    assert history.status_code == 200
    assert "Export these days" not in history.text  # exporting stays with compliance
    assert client.get(reverse("moderation:export", args=[kept.id])).status_code == 403
    read = AuditEntry.objects.get(action="moderation.read", outcome=Outcome.SUCCEEDED)
    assert (read.actor_id, read.target_id) == (creator.pk, kept.id)

    admin = AdministratorFactory()
    category_services.category_set_options(
        actor=admin,
        category_id=category_world["category"].id,
        options=ChatOptions(keep_days=30, managers_read=False),
    )
    run_worker()
    assert client.get(reverse("moderation:history", args=[kept.id])).status_code == 403
    assert "Read the history" not in client.get(reverse("rooms:detail", args=[kept.id])).text
    token = make_token(client, creator)
    refused = call(client, "GET", f"/moderation/rooms/{kept.id}/messages", token)
    assert refused.status_code == 403


def test_a_member_who_is_not_a_manager_never_reads_the_history(client, kept, chat, category_world):
    from tests.conftest import portal_user

    member = category_world["member"]
    chat.add_to_role(kept.id, Role.MEMBER, [member.user_id])
    client.force_login(portal_user(member))
    assert client.get(reverse("moderation:history", args=[kept.id])).status_code == 403


def test_through_the_api(client, make_room, category_world, chat):
    room = make_room()
    category = category_world["category"]
    admin = AdministratorFactory()
    token = make_token(client, admin)
    path = f"/categories/{category.id}/options"
    bad = call(client, "PUT", path, token, {"keep_days": -3})
    assert bad.status_code == 422
    what_if = call(client, "PUT", path, token, {"keep_days": 7}, dry_run="true")
    assert what_if.json()["rooms"] == [room.id]
    done = call(client, "PUT", path, token, {"keep_days": 7, "managers_read": True})
    assert done.status_code == 202, done.json()  # the rooms change in the background
    assert (done.json()["category"]["keep_days"], done.json()["category"]["managers_read"]) == (
        7,
        True,
    )
    run_worker()
    assert call(client, "GET", f"/rooms/{room.id}", token).json()["keep_days"] == 7
    assert chat.read_state(room.id).content("m.room.retention") == {"max_lifetime": 7 * DAY_MS}


@pytest.mark.django_db(transaction=True)
def test_roomctl_sets_the_retention(live_server, make_room, category_world, chat):
    room = make_room()
    admin = shell(live_server, AdministratorFactory())
    category = category_world["category"].id
    done = admin(f"roomctl category options '{category}' --keep-days 90")
    assert done.returncode == 0, done.stderr
    [op] = Operation.objects.filter(kind="rooms.bulk")
    run_worker()
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert chat.read_state(room.id).content("m.room.retention") == {"max_lifetime": 90 * DAY_MS}
    forever = admin(f"roomctl category options '{category}' --keep-days 0")
    assert forever.returncode == 0, forever.stderr
    run_worker()
    assert chat.read_state(room.id).content("m.room.retention") == {}
