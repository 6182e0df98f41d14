from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import log_in
from tests.conftest import PASSWORD, unique

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def second_person(browser: Browser, live_server) -> Page:
    context = browser.new_context(base_url=live_server.url)
    return context.new_page()


def ask(page: Page, category_name: str, name: str) -> str:
    page.get_by_role("link", name="My requests").click()
    page.get_by_role("link", name="Ask for a room", exact=True).click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Category", exact=True).select_option(label=category_name)
    page.get_by_label("Why do you need this room?").fill("Our team needs a place to talk.")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#messages")).to_contain_text("sent to the category's approvers")
    return page.url


def test_request_approve_and_the_requester_manages_the_room(
    page: Page, browser, live_server, chat, category_world
):
    name = unique("Requested room ")
    category = category_world["category"]
    log_in(page, category_world["member"].user_id, PASSWORD)
    request_url = ask(page, category.name, name)

    approver = second_person(browser, live_server)
    log_in(approver, category_world["creator"].user_id, PASSWORD)
    approver.get_by_role("link", name="Approvals").click()
    approver.get_by_role("link", name=name).click()
    approver.get_by_label("Secret: Only members can find it or get in.").check()
    approver.get_by_role("button", name="Approve and create the room").click()
    expect(approver.locator("#messages")).to_contain_text("was created for its requester")

    page.goto(request_url)
    expect(page.get_by_text("Room created")).to_be_visible()
    page.get_by_role("link", name="Open the room").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    page.get_by_role("link", name="Edit").click()  # the requester manages it
    page.get_by_label("Description", exact=True).fill("Ours now")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#room-settings")).to_contain_text("Ours now")


def test_request_declined_with_a_reason(page: Page, browser, live_server, category_world):
    name = unique("Declined room ")
    log_in(page, category_world["member"].user_id, PASSWORD)
    request_url = ask(page, category_world["category"].name, name)

    approver = second_person(browser, live_server)
    log_in(approver, category_world["creator"].user_id, PASSWORD)
    approver.goto(request_url)
    approver.get_by_label("Why is it declined?").fill("Please use the existing team room.")
    approver.get_by_role("button", name="Decline").click()
    expect(approver.locator("#messages")).to_contain_text("declined")

    page.goto(request_url)
    expect(page.get_by_text("Declined", exact=True)).to_be_visible()
    expect(page.get_by_text("Please use the existing team room.")).to_be_visible()
