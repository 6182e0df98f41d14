"""Finding and joining rooms, and a person's page, as people use them in Chromium: a person
finds an Open room and joins it, asks to join a Closed one, its Manager lets them in from
the approval queue, and they post from their own chat login; an administrator removes a
person from everything, after which their chat login gets into none of those rooms."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from rooms.backend.records import Privacy, Role
from tests.browser.helpers import log_in
from tests.conftest import PASSWORD, unique
from tests.factories import AdministratorFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_person_joins_an_open_room_asks_for_a_closed_one_and_is_let_in(
    page: Page, browser: Browser, live_server, chat, make_room, category_world
):
    stem = unique("Findable ")
    open_room = make_room(name=f"{stem} open", privacy=Privacy.OPEN)
    closed = make_room(name=f"{stem} closed")
    person = category_world["member"]

    log_in(page, person.user_id, PASSWORD)
    page.get_by_role("link", name="Find a room").click()
    page.get_by_label("Search by name").fill(stem)  # the results follow the typing
    page.get_by_role("button", name=f"Join {open_room.name}").click()
    expect(page.locator("#messages")).to_contain_text("You joined")
    assert person.user_id in chat.get_room(open_room.id).members

    page.goto(f"/rooms/find/?q={stem}")
    page.get_by_label(f"Message to the Managers of {closed.name} (optional)").fill(
        "New on the team"
    )
    page.get_by_role("button", name=f"Ask to join {closed.name}").click()
    expect(page.locator("#messages")).to_contain_text("asked to join")

    context = browser.new_context(base_url=live_server.url)
    manager = context.new_page()
    log_in(manager, category_world["creator"].user_id, PASSWORD)
    expect(manager.get_by_role("link", name="Approvals 1 waiting")).to_be_visible()
    manager.get_by_role("link", name="Approvals 1 waiting").click()
    expect(manager.get_by_text("New on the team")).to_be_visible()
    manager.get_by_role(
        "button", name=re.compile(rf"Let in .*\({re.escape(person.user_id)}\) as a Member")
    ).click()
    expect(manager.locator("#messages")).to_contain_text("is now a Member")
    expect(manager.get_by_text("Nobody is asking to join a room you manage.")).to_be_visible()
    context.close()

    person.join(closed.id)  # accepts the invitation (or is in already)
    assert person.send(closed.id, "Hello from my own login").status_code == 200


def test_an_administrator_removes_a_person_from_everything(
    page: Page, chat, make_room, category_world
):
    person, creator = category_world["member"], category_world["creator"]
    closed, open_room = make_room(), make_room(privacy=Privacy.OPEN)
    chat.add_to_role(closed.id, Role.MEMBER, [person.user_id])
    chat.add_to_role(closed.id, Role.MANAGER, [person.user_id])
    chat.remove_from_role(closed.id, Role.MANAGER, [creator.user_id])  # the only Manager
    person.join(closed.id)
    person.join(open_room.id)
    chat.reindex(closed.id, open_room.id)
    admin = AdministratorFactory(username=unique("admin"))

    log_in(page, admin.username, "local-password-1")
    page.get_by_role("link", name="People").click()
    page.get_by_label("Chat ID or name").fill(person.user_id)
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name=person.user_id).click()
    expect(page.get_by_text("only Manager")).to_be_visible()
    page.get_by_role("link", name="Remove from rooms and scopes…").click()
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("list", name="What goes")).to_contain_text(
        f"Manager of “{closed.name}”"
    )
    # Two room roles in one room, a Member of another, in the scope: four items.
    page.get_by_label(f"Successor in “{closed.name}”").fill(creator.user_id)
    page.get_by_role("button", name="Remove 4 items").click()
    expect(page.locator("#messages")).to_contain_text("was removed from everything chosen")
    expect(page.get_by_role("table")).not_to_contain_text("not reached")

    for room in (closed, open_room):
        assert person.join(room.id).status_code == 403
        assert person.send(room.id, "Still here?").status_code == 403
    assert chat.get_room(closed.id).managers == {creator.user_id}


def test_a_knock_from_outside_the_scope_is_turned_away_by_the_sync_worker_and_audited(
    page: Page, browser: Browser, live_server, chat, make_room, category_world
):
    from portal.models import AuditEntry
    from rooms import sync
    from rooms.models import IndexStream
    from tests.factories import AuditorFactory

    room = make_room(name=unique("Knocked "))
    IndexStream.objects.update_or_create(
        key=sync.STREAM, defaults={"next_batch": chat.stream_position()}
    )
    outsider = category_world["outsider"]
    # Through the client API, as a chat client would: no spam check of Synapse's sees a
    # knock, so it lands, and the sync worker turns it away.
    assert outsider.knock(room.id).is_success
    for _ in range(20):  # the sync worker's rounds, until the breach is recorded
        sync.sync_once(chat, timeout_ms=300)
        if AuditEntry.objects.filter(action="policy.breach", target_id=room.id).exists():
            break
    assert outsider.user_id not in chat.get_room(room.id).knocking

    log_in(page, category_world["creator"].user_id, PASSWORD)  # the room's Manager
    page.goto(f"/rooms/{room.id}/")
    expect(page.get_by_role("heading", name=room.name)).to_be_visible()
    expect(page.get_by_text("Asking to join")).to_have_count(0)

    context = browser.new_context(base_url=live_server.url)
    auditor = context.new_page()
    log_in(auditor, AuditorFactory(username=unique("auditor")).username, "local-password-1")
    auditor.goto("/audit/?action=policy.breach")
    row = auditor.locator("#audit-results tbody tr").filter(has_text=room.name)
    expect(row).to_have_count(1)
    row.get_by_role("link").click()
    expect(auditor.get_by_text("outside the scope").first).to_be_visible()
    expect(auditor.get_by_text(outsider.user_id).first).to_be_visible()
    context.close()
