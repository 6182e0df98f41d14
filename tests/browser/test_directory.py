"""A room's Manager makes a group of the directory (a real slapd) the Members of a Closed
room in a real browser, with JavaScript on and off, at a phone's width."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from accounts.directory import normal_dn
from rooms.services import directory as directory_services
from tests.browser.helpers import log_in
from tests.conftest import PASSWORD
from tests.factories import AdministratorFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("javascript", [True, False])
def test_a_manager_makes_a_group_the_members_of_a_room_in_the_browser(
    browser: Browser, live_server, chat, make_room, category_world, org, javascript
):
    ids = org["id"]
    ou = normal_dn("ou=Support,ou=People," + org["connection"].base)
    directory_services.principal_add(
        actor=AdministratorFactory(), category_id=org["category"].id, dn=ou
    )
    room = make_room()
    context = browser.new_context(
        base_url=live_server.url,
        java_script_enabled=javascript,
        viewport={"width": 390, "height": 844},
    )
    page = context.new_page()
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto(f"/rooms/{room.id}/")
    page.get_by_label("Find a group or an OU").fill("support eng")
    if not javascript:
        page.get_by_label("Find a group or an OU").press("Enter")
    page.get_by_role("button", name=re.compile("^Make Members….*Support engineers")).click()
    expect(page.get_by_role("heading")).to_contain_text("the Members of")
    expect(page.get_by_role("listitem").first).to_contain_text("2 people are given a role")
    page.get_by_role("button", name="Make them Members").click()
    expect(page.locator("#messages")).to_contain_text("Done: 2 given a role.")
    members = page.get_by_role("list", name="Members")
    expect(members).to_contain_text("member of Support engineers via Tier 2")
    assert {ids["cy"], ids["di"]} <= chat.get_room(room.id).members
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390  # nothing wider than the phone's screen
    context.close()
