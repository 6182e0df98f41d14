from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from rooms.backend.records import Privacy
from tests.browser.helpers import log_in
from tests.conftest import PASSWORD, unique

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_view_update_privacy_disable_enable(page: Page, chat, category_world):
    category = category_world["category"]
    name = unique("Launch room ")
    log_in(page, category_world["creator"].user_id, PASSWORD)

    # Create, from the category's card, with the name checked as it is typed.
    page.get_by_role("link", name="Create a room here").click()
    expect(page.get_by_label("Category", exact=True)).to_have_value(category.id)
    page.get_by_label("Name", exact=True).fill(name)
    expect(page.locator("#name-check")).to_contain_text("is free")
    page.get_by_label("Description", exact=True).fill("Planning the <launch>")
    page.get_by_label("Secret: Only members can find it or get in.").check()
    page.get_by_role("button", name="Create room").click()

    # View.
    expect(page.locator("#messages")).to_contain_text(f"The room “{name}” was created.")
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    room_id = page.url.rstrip("/").split("/")[-1]
    assert chat.get_room(room_id).settings.privacy is Privacy.SECRET

    # Update inline, without leaving the page.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Description", exact=True).fill("Planning the launch, now with dates")
    page.get_by_label("Auditorium", exact=True).check()
    page.get_by_role("button", name="Save").click()
    settings = page.locator("#room-settings")
    expect(settings).to_contain_text("Planning the launch, now with dates")
    expect(settings).to_contain_text("Yes: only Presenters post")
    assert page.url.endswith(f"/rooms/{room_id}/")
    assert chat.get_room(room_id).settings.auditorium

    # Privacy: Open asks first, and says what happens to the member list.
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page.get_by_role("alertdialog")).to_contain_text("member list")
    page.get_by_role("button", name="Make it Open").click()
    expect(page.locator("#messages")).to_contain_text("The room is now Open.")
    assert chat.get_room(room_id).settings.privacy is Privacy.OPEN

    # Disable, after a confirmation page; then enable again.
    page.get_by_role("link", name="Disable the room…").click()
    page.get_by_role("button", name="Disable the room").click()
    expect(page.locator("#messages")).to_contain_text("The room is disabled")
    assert chat.get_room(room_id).disabled
    page.get_by_role("button", name="Enable the room").click()
    expect(page.locator("#messages")).to_contain_text("enabled again")
    room = chat.get_room(room_id)
    assert not room.disabled
    assert room.settings.auditorium


def test_taken_name_is_flagged_before_submit(page: Page, make_room, category_world):
    room = make_room()
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto("/rooms/new/")
    page.get_by_label("Name", exact=True).fill(room.name.upper())
    expect(page.locator("#name-check")).to_contain_text("is not available")


def test_a_name_typed_before_the_page_was_ready_is_checked_on_leaving_the_field(
    page: Page, make_room, category_world
):
    room = make_room()
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto("/rooms/new/")
    # As when typing started before htmx had loaded: the value is there, no input event.
    page.get_by_label("Name", exact=True).evaluate(
        "(field, name) => { field.value = name; field.dispatchEvent(new Event('change')); }",
        room.name,
    )
    expect(page.locator("#name-check")).to_contain_text("is not available")


def test_a_manager_adds_an_add_in_and_takes_it_out_again(
    page: Page, chat, make_room, category_world
):
    from rooms.models import AddInEntry

    room = make_room()
    AddInEntry.objects.create(
        name="Team board",
        url="https://board.example.org/",
        category_ids=[category_world["category"].id],
    )
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto(f"/rooms/{room.id}/")
    page.get_by_label("Add an add-in").select_option(label="Team board")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#messages")).to_contain_text("shown beside the room's conversation")
    expect(page.get_by_role("region", name="Add-ins")).to_contain_text("https://board.example.org/")
    assert [a.url for a in chat.get_room(room.id).add_ins] == ["https://board.example.org/"]
    page.get_by_role("button", name="Take out Team board").click()
    expect(page.locator("#messages")).to_contain_text("taken out of the room")
    assert chat.get_room(room.id).add_ins == ()
