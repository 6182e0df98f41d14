"""A portal administrator clears a room's history in a real browser, with JavaScript on
and off, at a phone's width: counted, the name typed, cleared."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, expect

from rooms.backend.records import Role
from tests.browser.helpers import log_in
from tests.conftest import unique
from tests.factories import AdministratorFactory
from tests.moderation.test_clear_history import said

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("javascript", [True, False])
def test_an_administrator_clears_a_history_in_the_browser(
    browser: Browser, live_server, chat, make_room, category_world, javascript
):
    room = make_room()
    person = category_world["member"]
    chat.add_to_role(room.id, Role.MEMBER, [person.user_id])
    person.join(room.id)
    assert person.send(room.id, "Said long ago").status_code == 200
    time.sleep(1.1)
    moment = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)
    assert person.send(room.id, "Said now").status_code == 200
    admin = AdministratorFactory(username=unique("admin"))
    context = browser.new_context(
        base_url=live_server.url,
        java_script_enabled=javascript,
        viewport={"width": 390, "height": 844},
    )
    page = context.new_page()
    log_in(page, admin.username, "local-password-1")
    page.goto(f"/rooms/{room.id}/")
    page.get_by_role("link", name="Clear the history…").click()
    page.get_by_label("Clear messages sent before").fill(moment.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Count the messages").click()
    expect(page.get_by_role("status")).to_contain_text("1 message sent before then")
    page.get_by_label("Type the room's name to confirm").fill(room.name)
    page.get_by_role("button", name="Delete 1 message").click()
    expect(page.locator("#messages")).to_contain_text("were cleared")
    assert said(person, room.id) == ["Said now"]
    context.close()
