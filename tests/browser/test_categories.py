from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import log_in
from tests.conftest import PASSWORD, unique
from tests.factories import AdministratorFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_a_category_set_scope_and_creators_then_the_creator_sees_it(
    page: Page, browser: Browser, live_server, make_chat_user
):
    admin = AdministratorFactory()
    creator = make_chat_user("newcreator")
    name = unique("Research ")
    log_in(page, admin.username, "local-password-1")
    page.get_by_role("link", name="Manage categories").click()
    page.get_by_role("link", name="New category").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Description").fill("Labs and experiments")
    page.get_by_role("button", name="Create category").click()
    expect(page.locator("#messages")).to_contain_text(f"The category “{name}” was created.")

    page.get_by_placeholder("Type part of a name or chat ID").fill(creator.user_id[1:14])
    page.get_by_role(
        "button", name=re.compile(f"^Add to scope…\\s*: .*{re.escape(creator.user_id)}")
    ).click()
    expect(page.get_by_text("Nobody leaves the scope")).to_be_visible()
    page.get_by_role("button", name="Apply the change").click()
    expect(page.get_by_role("list", name="In scope")).to_contain_text(creator.user_id)

    page.get_by_label(creator.user_id).check()
    page.get_by_role("button", name="Save Creators").click()
    expect(page.locator("#messages")).to_contain_text("The Creators were saved.")

    context = browser.new_context(base_url=live_server.url)
    other = context.new_page()
    log_in(other, creator.user_id, PASSWORD)
    expect(other.get_by_role("heading", name=name)).to_be_visible()
    expect(other.get_by_text("Labs and experiments")).to_be_visible()
    context.close()


def test_a_space_made_in_a_chat_client_is_adopted_into_my_rooms(
    page: Page, browser: Browser, live_server, space
):
    """The administrator finds the space, sees how it maps, adopts it; its rooms are then in
    My rooms of their Manager (the space's maker)."""
    admin = AdministratorFactory(username=unique("admin"))
    log_in(page, admin.username, "local-password-1")
    page.goto("/categories/manage/")
    page.get_by_role("link", name="Adopt a space or room…").click()
    page.get_by_label("Name of a space or room").fill(space["name"])
    page.get_by_role("button", name="Find", exact=True).click()
    page.get_by_role("link", name=space["name"]).click()
    expect(page.get_by_text("Public on the chat server")).to_be_visible()
    expect(page.get_by_text("Cannot be adopted")).to_be_visible()
    page.get_by_role("button", name=f"Adopt “{space['name']}” and 2 rooms").click()
    expect(page.locator("#messages")).to_contain_text("was adopted")
    expect(page.get_by_role("heading", level=1)).to_contain_text(space["name"])

    context = browser.new_context(base_url=live_server.url)
    maker = context.new_page()
    log_in(maker, space["alice"].user_id, PASSWORD)
    maker.goto("/rooms/")
    expect(maker.get_by_role("link", name=re.compile("^Knock room"))).to_be_visible()
    expect(maker.get_by_role("link", name=re.compile("^Public room"))).to_be_visible()
    context.close()


def test_turn_file_upload_off_for_a_category_and_follow_its_rooms(page: Page, make_room):
    """The what-if names the room; the progress page follows the worker (here run when
    the page asks again) to the end; the room's page says files are refused."""
    from rooms.services import rooms as room_services

    admin = AdministratorFactory()
    room = make_room()
    log_in(page, admin.username, "local-password-1")

    def worker_runs_first(route) -> None:
        if route.request.headers.get("hx-request"):
            while room_services.bulk_change_step():
                pass
        route.continue_()

    page.route(re.compile(r"/options/[0-9a-f-]{36}/$"), worker_runs_first)
    page.goto(f"/categories/{room.settings.category_id}/")
    page.get_by_label("File upload").uncheck()
    page.get_by_role("button", name="Change chat options…").click()
    expect(page.get_by_role("heading", name=re.compile("Change the chat options"))).to_be_visible()
    expect(page.get_by_text(room.name)).to_be_visible()
    page.get_by_role("button", name="Change 1 room").click()
    progress = page.locator("#options-progress")
    expect(progress).to_contain_text("1 of 1 room done: finished.")
    expect(progress).to_contain_text("Changed")
    page.get_by_role("link", name=room.name).click()
    expect(page.get_by_text("File upload: off.")).to_be_visible()
