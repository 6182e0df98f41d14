"""Every page, as each kind of person reaches it: no serious or critical accessibility
violation (axe-core), and no sideways scrolling on a 390 by 844 phone."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from rooms.backend.records import Privacy, RoomSettings
from rooms.services import requests as request_services
from tests.browser.helpers import log_in
from tests.conftest import PASSWORD, unique
from tests.factories import AdministratorFactory, AuditorFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def problems_of(page: Page, path: str) -> list[str]:
    """What is wrong with one page: a failed load, serious or critical axe violations,
    sideways scrolling."""
    response = page.goto(path)
    found = []
    if response is None or response.status >= 500:
        return [f"{path}: answered {response.status if response else 'nothing'}"]
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: run `make test`.")
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    for violation in violations:
        if violation["impact"] in ("serious", "critical"):
            targets = [node["target"] for node in violation["nodes"][:3]]
            found.append(f"{path}: {violation['id']} ({violation['impact']}) at {targets}")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if width > page.viewport_size["width"]:
        found.append(f"{path}: {width} px wide at {page.viewport_size['width']} px")
    return found


def walk(browser: Browser, base_url: str, login: tuple[str, str] | None, paths: list[str]):
    problems = []
    for name, viewport in VIEWPORTS.items():
        context = browser.new_context(base_url=base_url, viewport=viewport)
        page = context.new_page()
        if login:
            log_in(page, *login)
        for path in paths:
            problems += [f"[{name}] {p}" for p in problems_of(page, path)]
        context.close()
    assert problems == [], "\n".join(problems)


@pytest.fixture
def room(make_room):
    return make_room(name=unique("Walked room "), privacy=Privacy.CLOSED, auditorium=True)


def test_the_login_page(browser, live_server):
    walk(browser, live_server.url, None, ["/accounts/login/", "/no-such-page/"])


def test_every_page_a_creator_and_manager_reaches(browser, live_server, room, member):
    from rooms.models import JoinRequest

    asked = request_services.request_submit(
        actor=member,
        settings=RoomSettings(unique("Asked "), "", room.settings.category_id, Privacy.SECRET),
        justification="Because",
    )
    # The room's page and the approval queue list them, with Let in and Turn down.
    JoinRequest.objects.create(room_id=room.id, requester=member, message="On the team")
    paths = [
        "/categories/",
        "/rooms/",
        "/rooms/find/",
        "/rooms/new/",
        f"/rooms/{room.id}/",
        f"/rooms/{room.id}/edit/",
        f"/rooms/{room.id}/disable/",
        f"/rooms/{room.id}/move/",
        f"/rooms/{room.id}/roles/bulk/",
        f"/rooms/{room.id}/roles/people/?q=me&role=member",
        f"/rooms/{room.id}/roles/explain/?person={member.chat_id}",
        "/requests/",
        "/requests/queue/",
        f"/requests/{asked.pk}/",
    ]
    walk(browser, live_server.url, (room.managers and sorted(room.managers)[0], PASSWORD), paths)


def test_every_page_a_requester_reaches(browser, live_server, room, member, category_world):
    asked = request_services.request_submit(
        actor=member,
        settings=RoomSettings(unique("Mine "), "", room.settings.category_id, Privacy.SECRET),
        justification="Because",
    )
    # Find a room offers them "Ask to join" on the Closed room (a message field per row).
    paths = [
        "/requests/new/",
        f"/requests/{asked.pk}/",
        f"/requests/{asked.pk}/edit/",
        f"/rooms/find/?q={room.name}",
    ]
    walk(browser, live_server.url, (category_world["member"].user_id, PASSWORD), paths)


def test_every_page_an_administrator_reaches(browser, live_server, room, space):
    from rooms.models import Operation
    from rooms.services import addins as addin_services
    from rooms.services import rooms as room_services

    admin = AdministratorFactory(username=unique("admin"))
    category = room.settings.category_id
    wiki = addin_services.addin_register(
        actor=admin, name="Walked wiki", url="https://wiki.example.org/", category_ids=[category]
    )
    room_services.room_add_in_attach(actor=admin, room_id=room.id, add_in_id=wiki.pk)
    options = Operation.objects.create(  # a change of chat options, one room failed
        kind="rooms.bulk",
        target_label="Chat options: 2 rooms",
        status=Operation.Status.UNFINISHED,
        change={
            "rooms": [room.id, "!gone:portal.test"],
            "changes": {"category_options": True},
            "results": [
                {"room": room.id, "result": "changed", "after": {"name": room.name}},
                {"room": "!gone:portal.test", "result": "not found", "detail": "No such room."},
            ],
        },
    )
    Operation.objects.create(  # the list, the badge and the room's banner show it
        kind="room.move",
        target_id=room.id,
        target_label=room.name,
        status=Operation.Status.UNFINISHED,
        error="The chat server is not available right now.",
    )
    manager = sorted(room.managers)[0]
    removal = Operation.objects.create(
        kind="person.remove",
        target_id=manager,
        target_label=manager,
        status=Operation.Status.UNFINISHED,
        error="The chat server is not available right now.",
        change={
            "items": [
                {"kind": "role", "role": "manager", "label": room.name, "result": "removed"},
                {"kind": "scope", "label": "A category", "result": "failed: unavailable"},
            ],
            "successors": {room.id: {"person": "@someone:portal.test", "result": "made Manager"}},
        },
    )
    sweep = Operation.objects.create(  # a removal across rooms, one room failed
        kind="moderation.sweep",
        target_id=category,
        target_label="A category",
        status=Operation.Status.UNFINISHED,
        change={
            "sender": manager,
            "text": "spam",
            "since": "2026-01-01T00:00:00+00:00",
            "until": "",
            "reason": "Spam",
            "notice": True,
            "rooms": [room.id, "!gone:portal.test"],
            "results": [
                {"room": room.id, "name": room.name, "removed": 12, "result": "removed"},
                {
                    "room": "!gone:portal.test",
                    "name": "A gone room",
                    "removed": 0,
                    "result": "failed",
                    "detail": "The chat server is not available right now.",
                },
            ],
            "at": {"start": "", "removed": 0},
        },
    )
    paths = [
        f"/rooms/{room.id}/",
        f"/rooms/{room.id}/delete/",
        f"/moderation/rooms/{room.id}/clear/",
        f"/moderation/rooms/{room.id}/history/",
        "/moderation/reports/",
        "/moderation/export/",
        f"/moderation/remove/?category={category}&text=hello",
        f"/moderation/removals/{sweep.pk}/",
        "/categories/",
        "/categories/manage/",
        "/operations/",
        "/categories/new/",
        f"/categories/{category}/",
        f"/categories/{category}/delete/",
        f"/categories/{category}/options/{options.pk}/",
        "/addins/",
        f"/addins/{wiki.pk}/remove/",
        f"/people/?q={manager[1:8]}",
        f"/people/{manager}/",
        f"/people/{manager}/remove/",
        f"/people/{manager}/removals/{removal.pk}/",
        f"/categories/adopt/?q={space['name']}",
        f"/categories/adopt/?space={space['id']}",  # the preview, with a room that cannot be
        f"/categories/adopt/?room={space['knock']}&category={category}",
    ]
    walk(browser, live_server.url, (admin.username, "local-password-1"), paths)


def test_every_page_an_auditor_reaches(browser, live_server, room):
    from portal.models import AuditEntry

    auditor = AuditorFactory(username=unique("auditor"))
    entry = AuditEntry.objects.filter(action="room.create").first()
    assert entry is not None
    paths = ["/audit/", "/audit/?date_from=2026-02-01&date_to=2026-01-01", f"/audit/{entry.pk}/"]
    paths += ["/audit/verify/", f"/people/{entry.actor_chat_id}/"]
    walk(browser, live_server.url, (auditor.username, "local-password-1"), paths)
