"""The htmx contract, as a person sees it: refusals and failures are shown in place and
the page stays whole; changes re-render what changed; names never break the layout."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from rooms.backend.records import Privacy
from rooms.services import roles as role_services
from rooms.services import rooms as room_services
from tests.browser.helpers import log_in
from tests.conftest import PASSWORD, unique

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}


# Chromium logs every 4xx/5xx answer as a console error; a refusal is such an answer by
# design. Errors of scripts (htmx's included) are what must never appear.
NETWORK_STATUS = "Failed to load resource: the server responded with a status of"


class Watched:
    """A page with its script errors collected."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith(NETWORK_STATUS):
            self.errors.append(message.text)


@pytest.fixture
def watched(page: Page) -> Watched:
    return Watched(page)


def assert_whole(watched: Watched) -> None:
    """One heading, one navigation, the stylesheet, no duplicate ids, no console error."""
    page = watched.page
    assert page.locator("h1").count() == 1
    assert page.locator("nav[aria-label=Main]").count() == 1
    assert page.locator("link[rel=stylesheet]").count() == 1
    duplicates = page.evaluate(
        """() => {
            const seen = {}, twice = [];
            document.querySelectorAll('[id]').forEach(e => {
                if (seen[e.id]) twice.push(e.id); seen[e.id] = true;
            });
            return twice;
        }"""
    )
    assert duplicates == []
    assert watched.errors == []


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width


def edit(page: Page, room_id: str, name: str) -> None:
    page.goto(f"/rooms/{room_id}/")
    page.get_by_role("link", name="Edit").click()
    field = page.get_by_label("Name", exact=True)
    # Set the value as a script would, past the field's maxlength, to test the server.
    field.evaluate("(f, v) => { f.value = v; }", name)
    page.get_by_role("button", name="Save").click()


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("TAKEN", "is not available"),
        ("n" * 257, "at most 256"),
        ("   ", "Give the room a name."),
    ],
)
def test_a_refused_inline_edit_shows_its_errors_in_a_whole_page(
    watched, make_room, category_world, typed, message
):
    page = watched.page
    taken = make_room()
    room = make_room()
    log_in(page, category_world["creator"].user_id, PASSWORD)
    edit(page, room.id, taken.name.upper() if typed == "TAKEN" else typed)
    expect(page.locator("#room-settings")).to_contain_text(message)
    expect(page.get_by_role("button", name="Save")).to_be_visible()  # the form, in place
    expect(page).to_have_title(f"{room.name} · Room portal")
    assert_whole(watched)


def test_a_stale_save_shows_the_current_values_beside_the_persons_own(
    watched, chat, creator, make_room, category_world
):
    page = watched.page
    room = make_room()
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto(f"/rooms/{room.id}/")
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Description", exact=True).fill("Mine")
    # Someone else saves first.
    room_services.room_update(
        actor=creator,
        room_id=room.id,
        name=room.name,
        description="Theirs",
        auditorium=False,
        invitations=room.settings.invitations,
        version=room_services.room_version(room),
    )
    page.get_by_role("button", name="Save").click()
    settings = page.locator("#room-settings")
    expect(settings).to_contain_text("Someone else changed this room")
    expect(page.get_by_label("Description", exact=True)).to_have_value("Theirs")
    expect(settings.locator(".theirs")).to_contain_text("Mine")
    assert chat.get_room(room.id).settings.description == "Theirs"
    assert_whole(watched)


def test_a_rename_updates_the_heading_and_the_title(watched, make_room, category_world):
    page = watched.page
    room = make_room()
    new_name = unique("Renamed ")
    log_in(page, category_world["creator"].user_id, PASSWORD)
    edit(page, room.id, new_name)
    expect(page.locator("#messages")).to_contain_text("settings were saved")
    expect(page.get_by_role("heading", level=1)).to_have_text(new_name)
    expect(page).to_have_title(f"{new_name} · Room portal")
    assert_whole(watched)


@pytest.mark.parametrize("start", [Privacy.SECRET, Privacy.OPEN])
def test_making_a_room_closed_changes_the_panel_in_place(
    watched, chat, make_room, category_world, start
):
    page = watched.page
    room = make_room(privacy=start)
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto(f"/rooms/{room.id}/")
    page.locator("#privacy-panel").get_by_role("button", name="Closed").click()
    # Shown to the category, or its door shut: asked first, saying which.
    expect(page.locator("#privacy-panel")).to_contain_text(
        "will be listed in the category" if start is Privacy.SECRET else "only members get in"
    )
    page.get_by_role("button", name="Make it Closed").click()
    expect(page.locator("#messages")).to_contain_text("The room is now Closed")
    expect(page.locator("#room-settings")).to_contain_text("Closed")
    expect(page.locator("#privacy-panel").get_by_role("button", name="Closed")).to_be_disabled()
    assert chat.get_room(room.id).settings.privacy is Privacy.CLOSED
    assert_whole(watched)


def test_making_a_room_secret_asks_first_then_changes_in_place(
    watched, chat, make_room, category_world
):
    page = watched.page
    room = make_room(privacy=Privacy.CLOSED)
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto(f"/rooms/{room.id}/")
    page.locator("#privacy-panel").get_by_role("button", name="Secret").click()
    page.get_by_role("button", name="Make it Secret").click()
    expect(page.locator("#messages")).to_contain_text("The room is now Secret")
    assert chat.get_room(room.id).settings.privacy is Privacy.SECRET
    assert_whole(watched)


def test_a_chat_server_failure_on_privacy_is_told_in_the_panel(
    watched, make_room, category_world, monkeypatch
):
    page = watched.page
    room = make_room(privacy=Privacy.SECRET)
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto(f"/rooms/{room.id}/")

    def down(**kwargs):
        raise room_services.ChatBackendError("The chat server is not available.")

    monkeypatch.setattr(room_services, "room_set_privacy", down)
    page.locator("#privacy-panel").get_by_role("button", name="Closed").click()
    page.get_by_role("button", name="Make it Closed").click()
    expect(page.locator("#privacy-panel")).to_contain_text("The privacy was not changed.")
    assert_whole(watched)


@pytest.fixture
def no_js_page(browser: Browser, live_server) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_without_javascript_edit_and_privacy_work_as_pages(
    no_js_page, chat, make_room, category_world
):
    page = no_js_page
    room = make_room(privacy=Privacy.SECRET)
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto(f"/rooms/{room.id}/")
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Name", exact=True).fill("")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("Give the room a name.")
    assert page.locator("h1").count() == 1
    page.goto(f"/rooms/{room.id}/")
    page.locator("#privacy-panel").get_by_role("button", name="Closed").click()
    page.get_by_role("button", name="Make it Closed").click()  # the confirmation, a page
    expect(page.locator("#messages")).to_contain_text("The room is now Closed")
    assert chat.get_room(room.id).settings.privacy is Privacy.CLOSED


def test_names_are_isolated_and_wrapped(browser: Browser, live_server, make_room, category_world):
    right_to_left = unique("\u05e9\u05dc\u05d5\u05dd evil ")  # Hebrew, then Latin
    long_name = "x" * 250
    make_room(name=right_to_left)
    room = make_room(name=long_name)
    for viewport in ({"width": 1280, "height": 800}, PHONE):
        context = browser.new_context(base_url=live_server.url, viewport=viewport)
        page = context.new_page()
        log_in(page, category_world["creator"].user_id, PASSWORD)
        page.goto(f"/rooms/{room.id}/")
        no_sideways_scroll(page)
        page.goto("/rooms/")
        no_sideways_scroll(page)
        # The reversing character stays inside its own name.
        assert page.locator("bdi", has_text="evil").count() >= 1
        context.close()


def test_the_phone_navigation_shows_every_link(
    browser: Browser, live_server, make_room, category_world
):
    make_room()
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto("/rooms/")
    no_sideways_scroll(page)
    for link in page.locator("nav[aria-label=Main] a").all():
        box = link.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]
    context.close()


def test_name_checks_log_no_console_error(watched, category_world):
    page = watched.page
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto("/rooms/new/")
    page.get_by_label("Name", exact=True).fill(unique("Fresh "))
    expect(page.locator("#name-check")).to_contain_text("is free")
    assert_whole(watched)


def test_an_audit_filter_error_is_named_and_results_never_nest(watched, live_server):
    from tests.factories import AuditorFactory

    page = watched.page
    auditor = AuditorFactory(username=unique("auditor"))
    page.goto("/accounts/login/")
    page.get_by_label("Chat username").fill(auditor.username)
    page.get_by_label("Password").fill("local-password-1")
    page.get_by_role("button", name="Log in").click()
    page.goto("/audit/")
    page.get_by_label("Action").fill("auth.")
    expect(page).to_have_url(re.compile(r"action=auth\."))
    assert page.locator("#audit-results").count() == 1
    page.get_by_label("From", exact=True).fill("2026-02-01")
    page.get_by_label("To", exact=True).fill("2026-01-01")
    errors = page.locator("#audit-filter-errors")
    expect(errors).to_contain_text("To")
    expect(errors).to_contain_text("is before")
    assert_whole(watched)


def test_removing_the_last_manager_is_refused_in_the_panel(
    watched, chat, make_room, category_world
):
    page = watched.page
    room = make_room()
    creator = category_world["creator"].user_id
    log_in(page, creator, PASSWORD)
    page.goto(f"/rooms/{room.id}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Remove {creator} as Manager").click()
    expect(page.locator("#messages")).to_contain_text("at least one Manager")
    expect(page.get_by_role("list", name="Managers")).to_contain_text(creator)
    assert chat.get_room(room.id).managers == {creator}
    assert_whole(watched)


def test_a_chat_server_failure_on_adding_is_told_in_the_panel(
    watched, make_room, category_world, monkeypatch
):
    page = watched.page
    room = make_room()
    member = category_world["member"].user_id
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto(f"/rooms/{room.id}/")

    def down(**kwargs):
        raise room_services.ChatBackendError("The chat server is not available.")

    monkeypatch.setattr(role_services, "role_add", down)
    page.get_by_label("Name or chat ID").fill(member[1:12])
    page.get_by_role(
        "button", name=re.compile(f"^Add as Member\\s*: .*{re.escape(member)}")
    ).click()
    expect(page.locator("#messages")).to_contain_text("was not added")
    assert_whole(watched)


def test_without_javascript_roles_change_as_pages(no_js_page, chat, make_room, category_world):
    page = no_js_page
    room = make_room()
    member = category_world["member"].user_id
    log_in(page, category_world["creator"].user_id, PASSWORD)
    page.goto(f"/rooms/{room.id}/roles/people/?role=member&q={member[1:12]}")
    page.get_by_role(
        "button", name=re.compile(f"^Add as Member\\s*: .*{re.escape(member)}")
    ).click()
    expect(page.locator("#messages")).to_contain_text("is now Member")
    assert page.locator("h1").count() == 1
    assert member in chat.get_room(room.id).members
