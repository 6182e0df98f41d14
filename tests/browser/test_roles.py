from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from rooms.services.roles import role_changes_turn
from tests.browser.helpers import log_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_picker_removal_bulk_and_explainer(page: Page, chat, make_room, category_world):
    room = make_room()
    member = category_world["member"].user_id
    outsider = category_world["outsider"].user_id
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto(f"/rooms/{room.id}/")

    # Picker: an out-of-scope person is shown as such; an in-scope one is added.
    page.get_by_label("Name or chat ID").fill(outsider[1:12])
    expect(page.locator("#picker-results")).to_contain_text("not in the scope")
    page.get_by_label("Name or chat ID").fill(member[1:12])
    page.get_by_role(
        "button", name=re.compile(f"^Add as Member\\s*: .*{re.escape(member)}")
    ).click()
    members = page.get_by_role("list", name="Members")
    expect(members).to_contain_text(member)
    assert member in chat.get_room(room.id).members

    # Removal, confirmed.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Remove {member} as Member").click()
    expect(members).not_to_contain_text(member)
    assert member not in chat.get_room(room.id).members

    # Bulk: preview first, then apply, with progress.
    page.get_by_role("link", name="Add many people at once…").click()
    page.get_by_label("Chat IDs").fill(f"{member}\n{outsider}\nnonsense")
    page.get_by_role("button", name="Preview").click()
    expect(
        page.get_by_role("heading", name="Preview: 1 of 3 will be added as Member")
    ).to_be_visible()
    page.get_by_role("button", name="Add 1 person as Member").click()
    expect(page.locator("#bulk-progress")).to_contain_text("0 of 1 done")
    assert role_changes_turn() == 1  # the job runner's round; the page follows it
    expect(page.locator("#bulk-progress")).to_contain_text("1 of 1 done: finished.")
    assert member in chat.get_room(room.id).members

    # The explainer.
    page.goto(f"/rooms/{room.id}/roles/explain/")
    page.get_by_label("Chat ID").fill(outsider)
    page.get_by_role("button", name="Explain").click()
    expect(page.locator("#explain-result")).to_contain_text("not in the scope")
    expect(page.locator("#messages")).to_be_empty()


def test_adding_shows_its_confirmation_in_place(page: Page, make_room, category_world):
    room = make_room()
    member = category_world["member"].user_id
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto(f"/rooms/{room.id}/")
    page.get_by_label("Name or chat ID").fill(member[1:12])
    page.get_by_role(
        "button", name=re.compile(f"^Add as Member\\s*: .*{re.escape(member)}")
    ).click()
    expect(page.locator("#messages")).to_contain_text("is now Member")
