from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import log_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_creator_logs_in_and_sees_their_categories(page: Page, category_world):
    log_in(page, category_world["creator"].user_id, PASSWORD)
    expect(page).to_have_url("/categories/")
    expect(page.get_by_role("heading", name="Categories", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name=category_world["category"].name)).to_be_visible()
    expect(page.get_by_text("0 rooms")).to_be_visible()


def test_wrong_password_shows_a_clear_message_and_keeps_the_username(page: Page, category_world):
    username = category_world["member"].user_id
    log_in(page, username, "not it")
    expect(page.get_by_role("alert")).to_contain_text("do not match an account")
    expect(page.get_by_label("Chat username")).to_have_value(username)


def test_person_without_create_rights_sees_the_empty_state_on_a_phone(page: Page, category_world):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, category_world["member"].user_id, PASSWORD)
    expect(page.get_by_text("You cannot create rooms in any category yet")).to_be_visible()
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390  # nothing wider than the phone's screen
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url("/accounts/login/")
