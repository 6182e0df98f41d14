"""Every URL, method and role: the answer each person gets, and nothing changed on refusal;
the API with a token of each role as well.

The table below is the portal's access policy written out. A URL pattern added without
its row fails `test_every_url_pattern_has_a_row`. Refusals (a redirect to the login
page, 403, 404, 405) must leave the chat server and the portal's records as they were,
and a 403, or a 404 for what is there but not the person's, must be in the audit log.
Allowed requests are sent without form data: they show the page, or refuse the empty
form, and change nothing either.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import User
from accounts.tokens import token_create
from portal.audit import audit_record
from portal.models import AuditEntry, Outcome
from rooms.backend.embedded import Connection
from rooms.backend.interface import ChatChanges, ChatServer
from rooms.backend.records import Privacy, RoomSettings
from rooms.index import IndexedChatBackend
from rooms.models import AddInEntry, Operation, RoomRequest
from tests.arranging import ArrangingChat
from tests.conftest import PASSWORD, unique
from tests.factories import AdministratorFactory, AuditorFactory, LocalUserFactory
from tests.fake_chat import FakeChatServer

pytestmark = pytest.mark.django_db

ROLES = (
    "anonymous",
    "outsider",
    "in_scope",
    "member",
    "manager",
    "creator",
    "auditor",
    "compliance",  # a compliance officer: sees rooms as an auditor does, reads their history
    "administrator",
)
LOGIN = 302  # an anonymous person is sent to the login page


def expected(role: str, default: int, by_role: dict[str, int]) -> int:
    """A role's expected status; a compliance officer's, unless named, is the auditor's
    (both are local accounts that see every room and change nothing)."""
    if role == "compliance" and role not in by_role:
        return by_role.get("auditor", default)
    return by_role.get(role, default)


def row(default: int, anonymous: int = LOGIN, **by_role: int) -> dict[str, int]:
    """Expected statuses: `default` for every signed-in role unless named."""
    return {"anonymous": anonymous} | {r: expected(r, default, by_role) for r in ROLES[1:]}


NOT_ALLOWED = row(405, anonymous=405)
AUDITORS = row(403, auditor=200, compliance=403, administrator=200)
ADMINS = row(403, administrator=200)
# Room pages: people who cannot see the (Closed) room get 404, as if it did not exist.
ROOM_VIEWERS = row(200, outsider=404)
ROOM_MANAGERS = row(403, outsider=404, manager=200, administrator=200)
# A request is seen by its requester (in_scope) and its deciders; to anyone else it is
# not there (404, as for an ID that is not).
REQUEST_VIEWERS = row(404, in_scope=200, creator=200, administrator=200)


def refused(role: str, status: int) -> bool:
    """Whether this answer refuses the person (the login page, 403, 404, 405)."""
    return status in (403, 404, 405) or (role == "anonymous" and status == LOGIN)


MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("dashboard", "GET"): row(302),
    ("dashboard", "POST"): NOT_ALLOWED,
    ("health", "GET"): row(200, anonymous=200),
    ("health", "POST"): row(405, anonymous=405),
    ("ready", "GET"): row(200, anonymous=200),
    ("ready", "POST"): row(405, anonymous=405),
    ("live", "GET"): row(200, anonymous=200),
    ("live", "POST"): row(405, anonymous=405),
    # From the scraper's address (the test client's is loopback); others: 403, tested apart.
    ("metrics", "GET"): row(200, anonymous=200),
    ("metrics", "POST"): row(405, anonymous=405),
    ("audit:list", "GET"): AUDITORS,
    ("audit:list", "POST"): NOT_ALLOWED,
    ("audit:entry", "GET"): AUDITORS,
    ("audit:entry", "POST"): NOT_ALLOWED,
    ("audit:export", "GET"): AUDITORS,
    ("audit:export", "POST"): NOT_ALLOWED,
    ("audit:verify", "GET"): AUDITORS,
    ("audit:verify", "POST"): AUDITORS,
    ("login", "GET"): row(302, anonymous=200),
    ("login", "POST"): row(302, anonymous=200),
    ("logout", "GET"): row(405, anonymous=405),
    ("logout", "POST"): row(302, anonymous=302),
    # Single sign-on, on a homeserver that offers none: back to the login page; a return
    # not begun in this session is refused (and audited as a failed sign-in).
    ("sso_start", "GET"): row(302, anonymous=302),
    ("sso_start", "POST"): NOT_ALLOWED,
    ("sso_return", "GET"): row(403, anonymous=403),
    ("sso_return", "POST"): NOT_ALLOWED,
    ("sso_failed", "GET"): row(302, anonymous=302),
    ("sso_failed", "POST"): NOT_ALLOWED,
    ("rooms:list", "GET"): row(200),
    ("rooms:list", "POST"): NOT_ALLOWED,
    ("rooms:find", "GET"): row(200),
    ("rooms:find", "POST"): NOT_ALLOWED,
    # The world's room is Closed: nobody joins it on their own.
    ("rooms:join", "GET"): NOT_ALLOWED,
    ("rooms:join", "POST"): row(403, outsider=404),
    ("rooms:ask", "GET"): NOT_ALLOWED,
    # Asked (302 to Find a room), or told there why not (302, audited as denied).
    ("rooms:ask", "POST"): row(302, outsider=404),
    ("rooms:create", "GET"): row(200),
    ("rooms:create", "POST"): row(400),
    ("rooms:check_name", "GET"): row(403, creator=200, administrator=200, in_scope=403),
    ("rooms:check_name", "POST"): NOT_ALLOWED,
    ("categories:list", "GET"): row(200),
    ("categories:list", "POST"): NOT_ALLOWED,
    ("rooms:detail", "GET"): ROOM_VIEWERS,
    ("rooms:detail", "POST"): NOT_ALLOWED,
    ("rooms:edit", "GET"): ROOM_MANAGERS,
    ("rooms:edit", "POST"): row(403, outsider=404, manager=400, administrator=400),
    ("rooms:privacy", "GET"): NOT_ALLOWED,
    ("rooms:privacy", "POST"): row(403, outsider=404, manager=302, administrator=302),
    ("rooms:disable", "GET"): ROOM_MANAGERS,
    ("rooms:disable", "POST"): row(403, outsider=404, manager=302, administrator=302),
    ("rooms:move", "GET"): ROOM_MANAGERS,
    ("rooms:move", "POST"): row(403, outsider=404, manager=400, administrator=400),
    ("rooms:delete", "GET"): row(403, outsider=404, administrator=200),
    ("rooms:delete", "POST"): row(403, outsider=404, administrator=400),
    ("moderation:clear", "GET"): row(403, outsider=404, administrator=200),
    ("moderation:history", "GET"): row(403, outsider=404, compliance=200, administrator=200),
    ("moderation:history", "POST"): NOT_ALLOWED,
    ("moderation:remove", "GET"): NOT_ALLOWED,
    # Everyone sees the reports of the rooms they manage (none: an empty list).
    ("moderation:reports", "GET"): row(200),
    ("moderation:export", "GET"): row(403, outsider=404, compliance=200, administrator=200),
    ("moderation:export", "POST"): NOT_ALLOWED,
    ("moderation:export_many", "GET"): row(403, compliance=200, administrator=200),  # the form
    ("moderation:export_many", "POST"): NOT_ALLOWED,
    ("moderation:reports", "POST"): NOT_ALLOWED,
    ("moderation:decide", "GET"): NOT_ALLOWED,
    ("moderation:decide", "POST"): row(302),  # no decision chosen: nothing is done
    ("moderation:remove", "POST"): row(403, outsider=404, administrator=302),
    ("moderation:clear", "POST"): row(403, outsider=404, administrator=400),
    ("moderation:sweep", "GET"): row(403, administrator=200),
    ("moderation:sweep", "POST"): row(403, administrator=400),  # nothing chosen
    ("moderation:sweep_progress", "GET"): row(403, administrator=200),
    ("moderation:sweep_progress", "POST"): NOT_ALLOWED,
    ("roles:panel", "GET"): row(302, outsider=404),  # the page; htmx gets the panel
    ("roles:panel", "POST"): NOT_ALLOWED,
    ("roles:people", "GET"): ROOM_MANAGERS,
    ("roles:people", "POST"): NOT_ALLOWED,
    ("roles:add", "GET"): NOT_ALLOWED,
    ("roles:add", "POST"): row(403, outsider=404, manager=400, administrator=400),
    ("roles:remove", "GET"): NOT_ALLOWED,
    ("roles:remove", "POST"): row(403, outsider=404, manager=400, administrator=400),
    ("roles:decide", "GET"): NOT_ALLOWED,
    ("roles:decide", "POST"): row(403, outsider=404, manager=400, administrator=400),
    ("roles:bulk", "GET"): ROOM_MANAGERS,
    ("roles:bulk", "POST"): ROOM_MANAGERS,
    ("roles:bulk_run", "GET"): ROOM_MANAGERS,
    ("roles:bulk_run", "POST"): row(403, outsider=404, manager=302, administrator=302),
    ("roles:explain", "GET"): row(
        403, outsider=404, manager=200, auditor=200, compliance=403, administrator=200
    ),
    ("roles:explain", "POST"): NOT_ALLOWED,
    # No directory is configured here: nothing is found, and a role or a group is needed.
    ("roles:directory", "GET"): ROOM_MANAGERS,
    ("roles:directory", "POST"): NOT_ALLOWED,
    ("roles:directory_add", "GET"): NOT_ALLOWED,
    ("roles:directory_add", "POST"): row(403, outsider=404, manager=400, administrator=400),
    ("roles:directory_remove", "GET"): NOT_ALLOWED,
    ("roles:directory_remove", "POST"): row(403, outsider=404, manager=400, administrator=400),
    ("requests:list", "GET"): row(200),
    ("requests:list", "POST"): NOT_ALLOWED,
    ("requests:new", "GET"): row(200),
    ("requests:new", "POST"): row(400),
    ("requests:queue", "GET"): row(200),
    ("requests:queue", "POST"): NOT_ALLOWED,
    # A request is seen by its requester (in_scope), its category's Creators, and
    # administrators; decided by the Creators and administrators, not by its requester.
    ("requests:detail", "GET"): REQUEST_VIEWERS,
    ("requests:detail", "POST"): NOT_ALLOWED,
    ("requests:edit", "GET"): row(404, in_scope=200, creator=403, administrator=403),
    ("requests:edit", "POST"): row(404, in_scope=400, creator=403, administrator=403),
    ("requests:cancel", "GET"): NOT_ALLOWED,
    ("requests:cancel", "POST"): row(404, in_scope=302, creator=403, administrator=403),
    ("requests:approve", "GET"): NOT_ALLOWED,
    ("requests:approve", "POST"): row(404, in_scope=403, creator=400, administrator=400),
    ("requests:decline", "GET"): NOT_ALLOWED,
    ("requests:decline", "POST"): row(404, in_scope=403, creator=400, administrator=400),
    ("requests:retry", "GET"): NOT_ALLOWED,
    ("requests:retry", "POST"): row(404, in_scope=403, creator=302, administrator=302),
    ("categories:manage", "GET"): ADMINS,
    ("categories:manage", "POST"): NOT_ALLOWED,
    ("categories:new", "GET"): ADMINS,
    ("categories:new", "POST"): row(403, administrator=400),
    ("categories:detail", "GET"): ADMINS,
    ("categories:detail", "POST"): row(403, administrator=400),
    ("categories:people", "GET"): ADMINS,
    ("categories:people", "POST"): NOT_ALLOWED,
    ("categories:scope", "GET"): NOT_ALLOWED,
    ("categories:scope", "POST"): row(403, administrator=400),
    ("categories:creators", "GET"): NOT_ALLOWED,
    ("categories:creators", "POST"): row(403, administrator=302),
    # No directory is configured here: naming a group is refused, no group is named.
    ("categories:directory", "GET"): ADMINS,
    ("categories:directory", "POST"): NOT_ALLOWED,
    ("categories:directory_add", "GET"): NOT_ALLOWED,
    ("categories:directory_add", "POST"): row(403, administrator=400),
    ("categories:directory_remove", "GET"): NOT_ALLOWED,
    ("categories:directory_remove", "POST"): row(403, administrator=404),
    # An empty form turns both options off: the what-if of that, changing nothing.
    ("categories:options", "GET"): NOT_ALLOWED,
    ("categories:options", "POST"): row(403, administrator=200),
    ("categories:options_progress", "GET"): ADMINS,
    ("categories:options_progress", "POST"): NOT_ALLOWED,
    ("addins:list", "GET"): ADMINS,
    ("addins:list", "POST"): row(403, administrator=400),
    ("addins:remove", "GET"): ADMINS,
    ("addins:remove", "POST"): row(403, administrator=302),
    ("addins:attach", "GET"): NOT_ALLOWED,
    ("addins:attach", "POST"): row(403, outsider=404, manager=400, administrator=400),
    ("addins:detach", "GET"): NOT_ALLOWED,
    ("addins:detach", "POST"): row(403, outsider=404, manager=400, administrator=400),
    ("categories:delete", "GET"): ADMINS,
    ("categories:delete", "POST"): row(403, administrator=302),
    ("operations:list", "GET"): ADMINS,
    ("operations:list", "POST"): NOT_ALLOWED,
    ("operations:retry", "GET"): NOT_ALLOWED,
    ("operations:retry", "POST"): row(403, administrator=302),
    ("operations:breaches", "GET"): AUDITORS,
    ("operations:breaches", "POST"): NOT_ALLOWED,
    ("operations:undo", "GET"): NOT_ALLOWED,
    ("operations:undo", "POST"): row(403, administrator=302),
    ("categories:adopt", "GET"): ADMINS,
    ("categories:adopt", "POST"): row(403, administrator=400),  # no space chosen
    # The API takes tokens only, never the session: signed in or not, no token is a 401.
    ("api:api-root", "GET"): row(404, anonymous=404),
    ("api:api-root", "POST"): row(404, anonymous=404),
    ("api:openapi-json", "GET"): row(200, anonymous=200),
    ("api:openapi-json", "POST"): row(200, anonymous=200),  # django-ninja's: any method reads
    ("api:openapi-view", "GET"): row(200, anonymous=200),
    ("api:openapi-view", "POST"): row(200, anonymous=200),
    ("api:room_list", "GET"): row(401, anonymous=401),
    ("api:room_list", "POST"): row(401, anonymous=401),  # creating a room: token first
    ("api:room_create", "GET"): row(401, anonymous=401),  # the same address as room_list
    ("api:room_create", "POST"): row(401, anonymous=401),
    ("api:room_delete", "GET"): row(401, anonymous=401),  # the same address as room_get
    ("api:room_delete", "POST"): row(405, anonymous=405),
    ("api:room_move", "GET"): row(405, anonymous=405),
    ("api:room_move", "POST"): row(401, anonymous=401),
    ("api:clear_history", "GET"): row(405, anonymous=405),
    ("api:history", "GET"): row(401, anonymous=401),
    ("api:history", "POST"): row(405, anonymous=405),
    ("api:remove_messages", "GET"): row(405, anonymous=405),
    ("api:export", "GET"): row(401, anonymous=401),
    ("api:export_many", "GET"): row(401, anonymous=401),
    ("api:export_many", "POST"): row(405, anonymous=405),
    ("api:export", "POST"): row(405, anonymous=405),
    ("api:remove_messages", "POST"): row(401, anonymous=401),
    ("api:clear_history", "POST"): row(401, anonymous=401),
    ("api:sweep", "GET"): row(405, anonymous=405),
    ("api:sweep", "POST"): row(401, anonymous=401),
    ("api:role_change", "GET"): row(405, anonymous=405),
    ("api:role_change", "POST"): row(401, anonymous=401),
    ("api:room_bulk_change", "GET"): row(405, anonymous=405),
    ("api:room_bulk_change", "POST"): row(401, anonymous=401),
    ("api:token_list", "GET"): row(401, anonymous=401),
    ("api:token_list", "POST"): row(400, anonymous=400),  # signing in: a form is no JSON
    ("api:token_sign_in", "GET"): row(401, anonymous=401),  # the same address as token_list
    ("api:token_sign_in", "POST"): row(400, anonymous=400),
    ("api:token_revoke", "GET"): row(405, anonymous=405),  # DELETE
    ("api:token_revoke", "POST"): row(405, anonymous=405),
    ("api:operation_get", "GET"): row(401, anonymous=401),
    ("api:operation_get", "POST"): row(405, anonymous=405),
    ("api:operation_list", "GET"): row(401, anonymous=401),
    ("api:operation_list", "POST"): row(405, anonymous=405),
    ("api:operation_retry", "GET"): row(405, anonymous=405),
    ("api:operation_retry", "POST"): row(401, anonymous=401),
    ("api:operation_undo", "GET"): row(405, anonymous=405),
    ("api:operation_undo", "POST"): row(401, anonymous=401),
    ("api:audit_export", "GET"): row(401, anonymous=401),
    ("api:audit_export", "POST"): row(405, anonymous=405),
    ("api:audit_list", "GET"): row(401, anonymous=401),
    ("api:audit_list", "POST"): row(405, anonymous=405),
    ("api:addin_list", "GET"): row(401, anonymous=401),
    ("api:addin_list", "POST"): row(401, anonymous=401),
    ("api:addin_create", "GET"): row(401, anonymous=401),
    ("api:addin_create", "POST"): row(401, anonymous=401),
    ("api:addin_delete", "GET"): row(405, anonymous=405),  # DELETE
    ("api:addin_delete", "POST"): row(405, anonymous=405),
    ("api:addin_attach", "GET"): row(405, anonymous=405),  # PUT, DELETE
    ("api:addin_attach", "POST"): row(405, anonymous=405),
    ("api:addin_detach", "GET"): row(405, anonymous=405),
    ("api:addin_detach", "POST"): row(405, anonymous=405),
    ("api:category_list", "GET"): row(401, anonymous=401),
    ("api:category_list", "POST"): row(401, anonymous=401),
    ("api:category_create", "GET"): row(401, anonymous=401),
    ("api:category_create", "POST"): row(401, anonymous=401),
    ("api:category_get", "GET"): row(401, anonymous=401),
    ("api:category_get", "POST"): row(405, anonymous=405),
    ("api:category_update", "GET"): row(401, anonymous=401),
    ("api:category_update", "POST"): row(405, anonymous=405),
    ("api:category_delete", "GET"): row(401, anonymous=401),
    ("api:category_delete", "POST"): row(405, anonymous=405),
    ("api:category_scope", "GET"): row(405, anonymous=405),
    ("api:category_scope", "POST"): row(401, anonymous=401),
    ("api:category_creators", "GET"): row(405, anonymous=405),  # PUT
    ("api:category_creators", "POST"): row(405, anonymous=405),
    ("api:category_options", "GET"): row(405, anonymous=405),  # PUT
    ("api:category_options", "POST"): row(405, anonymous=405),
    ("api:directory_principals", "GET"): row(401, anonymous=401),
    ("api:directory_principals", "POST"): row(405, anonymous=405),
    ("api:category_directory", "GET"): row(401, anonymous=401),
    ("api:category_directory", "POST"): row(401, anonymous=401),
    ("api:category_directory_add", "GET"): row(401, anonymous=401),
    ("api:category_directory_add", "POST"): row(401, anonymous=401),
    ("api:category_directory_remove", "GET"): row(405, anonymous=405),  # DELETE
    ("api:category_directory_remove", "POST"): row(405, anonymous=405),
    ("api:room_principals", "GET"): row(401, anonymous=401),
    ("api:room_principals", "POST"): row(405, anonymous=405),
    ("api:room_directory", "GET"): row(401, anonymous=401),
    ("api:room_directory", "POST"): row(401, anonymous=401),
    ("api:room_directory_add", "GET"): row(401, anonymous=401),
    ("api:room_directory_add", "POST"): row(401, anonymous=401),
    ("api:room_directory_remove", "GET"): row(405, anonymous=405),  # DELETE
    ("api:room_directory_remove", "POST"): row(405, anonymous=405),
    ("api:request_list", "GET"): row(401, anonymous=401),
    ("api:request_list", "POST"): row(401, anonymous=401),
    ("api:request_submit", "GET"): row(401, anonymous=401),
    ("api:request_submit", "POST"): row(401, anonymous=401),
    ("api:request_queue", "GET"): row(401, anonymous=401),
    ("api:request_queue", "POST"): row(405, anonymous=405),
    ("api:request_get", "GET"): row(401, anonymous=401),
    ("api:request_get", "POST"): row(405, anonymous=405),
    ("api:request_approve", "GET"): row(405, anonymous=405),
    ("api:request_approve", "POST"): row(401, anonymous=401),
    ("api:request_decline", "GET"): row(405, anonymous=405),
    ("api:request_decline", "POST"): row(401, anonymous=401),
    ("api:room_get", "GET"): row(401, anonymous=401),
    ("api:room_get", "POST"): row(405, anonymous=405),
    ("api:room_change", "GET"): row(401, anonymous=401),  # the same address as room_get
    ("api:room_change", "POST"): row(405, anonymous=405),
    ("tokens", "GET"): row(200),
    ("tokens", "POST"): row(400),  # an empty form
    ("token_all", "GET"): ADMINS,
    ("token_all", "POST"): NOT_ALLOWED,
    ("token_revoke", "GET"): NOT_ALLOWED,
    # Someone else's token is answered as one that is not there.
    ("token_revoke", "POST"): row(404, in_scope=302, administrator=302),  # the owner's
    ("people:find", "GET"): AUDITORS,
    ("people:find", "POST"): NOT_ALLOWED,
    ("people:detail", "GET"): AUDITORS,
    ("people:detail", "POST"): NOT_ALLOWED,
    ("people:remove", "GET"): ADMINS,
    ("people:remove", "POST"): row(403, administrator=400),  # nothing chosen
    ("people:end_sessions", "GET"): NOT_ALLOWED,
    ("people:end_sessions", "POST"): row(403, administrator=302),
    ("people:removal", "GET"): AUDITORS,
    ("people:removal", "POST"): NOT_ALLOWED,
}


def url_names() -> set[str]:
    """Every named URL pattern of the portal, with its namespace."""

    def walk(patterns: list[Any], namespace: str) -> set[str]:
        found = set()
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                found |= walk(pattern.url_patterns, inner)
            elif isinstance(pattern, URLPattern) and pattern.name:
                found.add(namespace + pattern.name)
        return found

    return walk(get_resolver().url_patterns, "")


def test_every_url_pattern_has_a_row():
    """A new URL pattern needs its row (both methods), so its access is decided, not
    left to chance."""
    missing = {
        (name, method)
        for name in url_names()
        for method in ("GET", "POST")
        if (name, method) not in MATRIX
    }
    assert not missing, f"Add rows to MATRIX for: {sorted(missing)}"
    assert {name for name, _ in MATRIX} == url_names()  # and no row for a removed URL


@dataclass(frozen=True)
class World:
    category_id: str
    room_id: str
    people: dict[str, str]  # role -> chat ID, for the chat users


def make_world(chat: ChatChanges) -> World:
    """One category and one Closed room, with a person in each role."""
    people = {
        role: chat.ensure_user(
            unique(role.replace("_", "")), password=PASSWORD, display_name=role
        ).id
        for role in ("outsider", "in_scope", "member", "manager", "creator")
    }
    category = chat.create_category(
        name=unique("Matrix "), description="", creators=[people["creator"]]
    )
    scope = [people[r] for r in ("in_scope", "member", "manager", "creator")]
    chat.add_to_category_scope(category.id, scope)
    room = chat.create_room(
        RoomSettings(
            name=unique("Matrix room "),
            description="",
            category_id=category.id,
            privacy=Privacy.CLOSED,
        ),
        managers=[people["manager"]],
        members=[people["manager"], people["member"]],
    )
    return World(category.id, room.id, people)


@pytest.fixture(scope="module")
def shared_world(synapse: Connection) -> World:
    """For reads, which change nothing (made once, on the server only)."""
    client = synapse.client()
    try:
        return make_world(client)
    finally:
        client.close()


@pytest.fixture
def world(
    request: pytest.FixtureRequest, db: None, chat: ArrangingChat, shared_world: World
) -> World:
    """For an answer that is not a refusal, on the test Synapse (pages read what only a
    real server has: history, messages): a world of its own for a write, which may really
    change something; else the shared one, indexed in each test's database as the sync
    worker would."""
    _, method, _ = request.node.callspec.params.values()
    if method == "POST":
        return make_world(chat)
    chat.reindex(shared_world.category_id, shared_world.room_id)
    return shared_world


@pytest.fixture
def fake_world(db: None, fake_chat: IndexedChatBackend[FakeChatServer]) -> World:
    """For a refusal, which must change nothing: made on the fast layer's in-memory chat
    server, indexed as the portal indexes its own changes."""
    return make_world(fake_chat)


def cast(world: World) -> dict[str, User | None]:
    """The person in each role: chat users of the world, and the portal's local roles."""
    found: dict[str, User | None] = {"anonymous": None}
    for role, chat_id in world.people.items():
        found[role], _ = User.objects.get_or_create(chat_id=chat_id, defaults={"username": chat_id})
    found["auditor"] = AuditorFactory()
    found["compliance"] = LocalUserFactory(is_compliance_officer=True)
    found["administrator"] = AdministratorFactory()
    return found


def made_records(world: World, users: dict[str, User | None]) -> dict[str, Any]:
    """What the pk-addressed URLs point at: a pending request of the in-scope person, a
    bulk run of the Manager's, an audit entry."""
    asked = RoomRequest.objects.create(
        requester=users["in_scope"],
        category_id=world.category_id,
        category_label="Matrix",
        name=unique("Asked "),
        privacy="closed",
        invitations="inherit",
        justification="Because",
    )
    run = Operation.objects.create(
        kind="role.bulk",
        target_id=world.room_id,
        actor=users["manager"],
        request_id=uuid.uuid4().hex,
        change={"role": "member", "lines": []},
        status=Operation.Status.SUCCEEDED,
    )
    entry = audit_record(action="room.create")
    unfinished = Operation.objects.create(
        kind="room.update",
        target_id=world.room_id,
        target_label="Matrix room",
        status=Operation.Status.UNFINISHED,
    )
    removal = Operation.objects.create(
        kind="person.remove",
        target_id=world.people["member"],
        change={"items": [], "successors": {}},
        status=Operation.Status.SUCCEEDED,
    )
    options = Operation.objects.create(
        kind="rooms.bulk",
        target_label="Chat options of “Matrix”: 1 rooms",
        change={"rooms": [world.room_id], "changes": {"category_options": True}, "results": []},
        status=Operation.Status.SUCCEEDED,
    )
    sweep = Operation.objects.create(
        kind="moderation.sweep",
        target_id=world.category_id,
        target_label="Matrix",
        change={
            "sender": "",
            "text": "spam",
            "since": "",
            "until": "",
            "reason": "Spam",
            "notice": False,
            "rooms": [world.room_id],
            "results": [],
            "at": {"start": "", "removed": 0},
        },
        status=Operation.Status.SUCCEEDED,
    )
    add_in = AddInEntry.objects.create(name="Matrix wiki", url="https://wiki.example.org/")
    token, _ = token_create(actor=users["in_scope"], name="matrix", scope="read", days=1)
    return {
        "token": token.pk,
        "request": asked.pk,
        "run": run.pk,
        "entry": entry.pk,
        "operation": unfinished.pk,
        "removal": removal.pk,
        "options": options.pk,
        "sweep": sweep.pk,
        "add_in": add_in.pk,
    }


def address(name: str, world: World, records: dict[str, Any]) -> str:
    kwargs: dict[str, Any] = {
        "rooms:detail": {"room_id": world.room_id},
        "audit:entry": {"pk": records["entry"]},
        "audit:export": {"fmt": "csv"},
        "roles:bulk_run": {"room_id": world.room_id, "run_id": records["run"]},
        "operations:retry": {"pk": records["operation"]},
        "operations:undo": {"pk": records["operation"]},
        "people:detail": {"user_id": world.people["member"]},
        "api:room_get": {"room_id": world.room_id},
        "api:category_directory_remove": {"category_id": world.category_id, "scope_id": 1},
        "api:room_principals": {"room_id": world.room_id},
        "api:room_directory": {"room_id": world.room_id},
        "api:room_directory_add": {"room_id": world.room_id},
        "api:room_directory_remove": {"room_id": world.room_id, "named_id": 1},
        "api:room_change": {"room_id": world.room_id},
        "api:room_delete": {"room_id": world.room_id},
        "api:room_move": {"room_id": world.room_id},
        "api:clear_history": {"room_id": world.room_id},
        "moderation:clear": {"room_id": world.room_id},
        "moderation:history": {"room_id": world.room_id},
        "moderation:remove": {"room_id": world.room_id},
        "moderation:decide": {"report_id": 1},
        "moderation:export": {"room_id": world.room_id},
        "moderation:sweep_progress": {"pk": records["sweep"]},
        "api:export": {"room_id": world.room_id},
        "api:remove_messages": {"room_id": world.room_id},
        "api:history": {"room_id": world.room_id},
        "api:role_change": {"room_id": world.room_id, "role": "member"},
        "api:request_approve": {"pk": records["request"]},
        "api:request_get": {"pk": records["request"]},
        "api:operation_get": {"operation_id": records["operation"]},
        "api:operation_retry": {"operation_id": records["operation"]},
        "api:operation_undo": {"operation_id": records["operation"]},
        "api:token_revoke": {"token_id": records["token"]},
        "api:request_decline": {"pk": records["request"]},
        "token_revoke": {"pk": records["token"]},
        "sso_start": {"provider_id": "oidc-demo"},
        "people:remove": {"user_id": world.people["member"]},
        "people:end_sessions": {"user_id": world.people["member"]},
        "people:removal": {"user_id": world.people["member"], "pk": records["removal"]},
        "addins:remove": {"pk": records["add_in"]},
        "api:addin_delete": {"addin_id": records["add_in"]},
        "api:addin_attach": {"addin_id": records["add_in"], "room_id": world.room_id},
        "api:addin_detach": {"addin_id": records["add_in"], "room_id": world.room_id},
        "addins:attach": {"room_id": world.room_id},
        "addins:detach": {"room_id": world.room_id},
        "categories:options_progress": {"category_id": world.category_id, "pk": records["options"]},
    }.get(name, {})
    if (
        not kwargs
        and name.startswith(("rooms:", "roles:"))
        and name not in {"rooms:list", "rooms:find", "rooms:create", "rooms:check_name"}
    ):
        kwargs = {"room_id": world.room_id}
    elif name.startswith("api:category_") and name not in {
        "api:category_list",
        "api:category_create",
        "api:category_directory_remove",
    }:
        kwargs = {"category_id": world.category_id}
    elif name.startswith("requests:") and name not in {
        "requests:list",
        "requests:new",
        "requests:queue",
    }:
        kwargs = {"pk": records["request"]}
    elif name.startswith("categories:") and name not in {
        "categories:list",
        "categories:manage",
        "categories:new",
        "categories:adopt",
        "categories:options_progress",
    }:
        kwargs = {"category_id": world.category_id}
    return reverse(name, kwargs=kwargs)


def state(server: ChatServer, world: World) -> tuple[Any, ...]:
    """Everything a request could change: the chat server's room and category, and the
    portal's own records (the audit log aside, which every request may add to)."""
    return (
        server.get_room(world.room_id),
        server.read(world.category_id),
        list(RoomRequest.objects.order_by("pk").values()),
        list(Operation.objects.order_by("pk").values("pk", "status", "change")),
        list(User.objects.order_by("pk").values("pk", "is_portal_admin", "is_auditor")),
    )


def prepared(name: str, world: World) -> tuple[dict[str, User | None], str]:
    """The person in each role, and the cell's address with what it points at made."""
    users = cast(world)
    return users, address(name, world, made_records(world, users))


def ask(
    url: str, method: str, user: User | None, *, token: bool = False, address: str = "127.0.0.1"
) -> HttpResponse:
    """One cell's request: with the person's session, or (`token`) a read-and-write API
    token of theirs (a GET reads, a POST sends an empty JSON body), from this address."""
    client = Client(REMOTE_ADDR=address)
    if token:
        _, secret = token_create(actor=user, name="matrix write", scope="write", days=1)
        bearer = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
        if method == "GET":
            return client.get(url, **bearer)
        return client.post(url, "{}", content_type="application/json", **bearer)
    if user is not None:
        client.force_login(user)
    return client.get(url) if method == "GET" else client.post(url, {})


def denied() -> int:
    return AuditEntry.objects.filter(outcome=Outcome.DENIED).count()


def refusal_audited(name: str, expected: int, denied_before: int) -> bool:
    """A 403, or a 404 for what is there but not the person's, is in the audit log."""
    if expected == 403 or (expected == 404 and name != "api:api-root"):
        return denied() > denied_before
    return True


# The API ignores the session (tokens only), so every signed-in role gets what an
# administrator gets there: it is asked as nobody and as an administrator.
CELLS = [
    (name, method, role)
    for (name, method) in MATRIX
    for role in ROLES
    if not name.startswith("api:") or role in ("anonymous", "administrator")
]
# Refusals are asked of the fast layer's in-memory chat server (they must not reach any
# server), an address's refused roles one after the other on one world; the other
# answers are asked of the test Synapse.
REFUSALS = [cell for cell in CELLS if refused(cell[2], MATRIX[cell[:2]][cell[2]])]
ANSWERS = [cell for cell in CELLS if cell not in REFUSALS]


def refused_roles(cells: list[tuple[str, str, str]]) -> list[Any]:
    """The cells grouped by address: each address and method with its refused roles."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for name, method, role in cells:
        grouped.setdefault((name, method), []).append(role)
    return [
        pytest.param(name, method, roles, id=f"{name}-{method}")
        for (name, method), roles in grouped.items()
    ]


def wrong_refusals(
    fake_chat: IndexedChatBackend[FakeChatServer],
    world: World,
    name: str,
    method: str,
    roles: list[str],
    table: dict[tuple[str, str], dict[str, int]],
    *,
    token: bool = False,
) -> list[str]:
    """Each role's refusal of one address, and what was wrong with it: not the expected
    answer, a change asked of the chat server or made in the portal's records, or a
    403 (or a 404 for what is there) not audited."""
    users, url = prepared(name, world)
    server, wrong = fake_chat.server, []
    before = state(server, world)  # as it must stay after each refusal
    for n, role in enumerate(roles, 1):
        # Each asks as if alone: from an address of its own, so that no limit on failed
        # sign-ins counts the ones before, nor any rate limit kept in the cache.
        cache.clear()
        expected = table[(name, method)][role]
        changes, denied_before = len(server.changes), denied()
        response = ask(url, method, users[role], token=token, address=f"192.0.2.{n}")
        if response.status_code != expected:
            wrong.append(f"{role}: {response.status_code}, not {expected}")
        elif (
            role == "anonymous"
            and expected == LOGIN
            and not response["Location"].startswith(reverse("login"))
        ):
            wrong.append(f"{role}: sent to {response['Location']}, not the login page")
        elif server.changes[changes:] or state(server, world) != before:
            wrong.append(f"{role}: changed {server.changes[changes:] or 'the records'}")
        elif not refusal_audited(name, expected, denied_before):
            wrong.append(f"{role}: {expected} not audited")
    return wrong


@pytest.mark.matrix
@pytest.mark.parametrize(("name", "method", "roles"), refused_roles(REFUSALS))
def test_a_refusal_changes_nothing(name, method, roles, fake_chat, fake_world):
    assert wrong_refusals(fake_chat, fake_world, name, method, roles, MATRIX) == []


@pytest.mark.parametrize(("name", "method", "role"), ANSWERS)
def test_the_answer_each_role_gets(name, method, role, chat, world):
    expected = MATRIX[(name, method)][role]
    users, url = prepared(name, world)
    response = ask(url, method, users[role])
    assert response.status_code == expected, (name, method, role, response.status_code)


# The API with a read-and-write token of each signed-in role (the session is ignored
# there): a GET reads, a POST sends an empty JSON body. Refused: 403, or 404 for what the
# person may not see (audited), and an empty body that says nothing is 422 before any
# change. `rows` as above; the anonymous column is the session table's.
def api_row(default: int, **by_role: int) -> dict[str, int]:
    return {r: expected(r, default, by_role) for r in ROLES[1:]}


API_MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("api:audit_export", "GET"): api_row(403, auditor=200, compliance=403, administrator=200),
    ("api:audit_export", "POST"): api_row(405),
    ("api:audit_list", "GET"): api_row(403, auditor=200, compliance=403, administrator=200),
    ("api:audit_list", "POST"): api_row(405),
    ("api:addin_list", "GET"): api_row(200),
    ("api:addin_list", "POST"): api_row(422),
    ("api:addin_create", "GET"): api_row(200),  # the same address as addin_list
    ("api:addin_create", "POST"): api_row(422),
    ("api:addin_delete", "GET"): api_row(405),
    ("api:addin_delete", "POST"): api_row(405),
    ("api:addin_attach", "GET"): api_row(405),
    ("api:addin_attach", "POST"): api_row(405),
    ("api:addin_detach", "GET"): api_row(405),
    ("api:addin_detach", "POST"): api_row(405),
    ("api:clear_history", "GET"): api_row(405),
    ("api:history", "GET"): api_row(403, outsider=404, compliance=200, administrator=200),
    ("api:history", "POST"): api_row(405),
    ("api:remove_messages", "GET"): api_row(405),
    ("api:export", "GET"): api_row(403, outsider=404, compliance=200, administrator=200),
    ("api:export", "POST"): api_row(405),
    # nothing named to export: refused after the permission check
    ("api:export_many", "GET"): api_row(403, compliance=422, administrator=422),
    ("api:export_many", "POST"): api_row(405),
    ("api:remove_messages", "POST"): api_row(422),  # the messages are needed first
    ("api:clear_history", "POST"): api_row(422),  # `before` is needed first
    ("api:sweep", "GET"): api_row(405),
    ("api:sweep", "POST"): api_row(403, administrator=422),  # a room or a category first
    ("api:category_create", "GET"): api_row(200),  # the same address as category_list
    ("api:category_create", "POST"): api_row(422),
    ("api:category_creators", "GET"): api_row(405),
    ("api:category_creators", "POST"): api_row(405),
    ("api:category_options", "GET"): api_row(405),
    ("api:category_options", "POST"): api_row(405),
    # No directory is configured here: nothing is found, and naming needs a DN.
    ("api:directory_principals", "GET"): api_row(403, administrator=200),
    ("api:directory_principals", "POST"): api_row(405),
    ("api:category_directory", "GET"): api_row(403, administrator=200),
    ("api:category_directory", "POST"): api_row(422),  # no DN given
    # the same address as category_directory
    ("api:category_directory_add", "GET"): api_row(403, administrator=200),
    ("api:category_directory_add", "POST"): api_row(422),
    ("api:category_directory_remove", "GET"): api_row(405),  # DELETE
    ("api:category_directory_remove", "POST"): api_row(405),
    ("api:room_principals", "GET"): api_row(403, outsider=404, manager=200, administrator=200),
    ("api:room_principals", "POST"): api_row(405),
    ("api:room_directory", "GET"): api_row(200, outsider=404),
    ("api:room_directory", "POST"): api_row(422),  # no role or DN given
    # the same address as room_directory
    ("api:room_directory_add", "GET"): api_row(200, outsider=404),
    ("api:room_directory_add", "POST"): api_row(422),
    ("api:room_directory_remove", "GET"): api_row(405),  # DELETE
    ("api:room_directory_remove", "POST"): api_row(405),
    # the same address as category_get
    ("api:category_delete", "GET"): api_row(200, outsider=404, auditor=404),
    ("api:category_delete", "POST"): api_row(405),
    ("api:category_get", "GET"): api_row(200, outsider=404, auditor=404),
    ("api:category_get", "POST"): api_row(405),
    ("api:category_list", "GET"): api_row(200),
    ("api:category_list", "POST"): api_row(422),
    ("api:category_scope", "GET"): api_row(405),
    ("api:category_scope", "POST"): api_row(403, administrator=200),  # an empty change, shown
    # the same address as category_get
    ("api:category_update", "GET"): api_row(200, outsider=404, auditor=404),
    ("api:category_update", "POST"): api_row(405),
    ("api:operation_get", "GET"): api_row(404, administrator=200),  # someone else's: not there
    ("api:operation_get", "POST"): api_row(405),
    ("api:operation_list", "GET"): api_row(200),
    ("api:operation_list", "POST"): api_row(405),
    ("api:operation_retry", "GET"): api_row(405),
    ("api:operation_retry", "POST"): api_row(404, administrator=200),
    ("api:operation_undo", "GET"): api_row(405),
    ("api:operation_undo", "POST"): api_row(404, administrator=200),
    ("api:request_approve", "GET"): api_row(405),
    # the requester may not decide
    ("api:request_approve", "POST"): api_row(404, in_scope=403, creator=200, administrator=200),
    ("api:request_decline", "GET"): api_row(405),
    ("api:request_decline", "POST"): api_row(422),  # a reason is needed first
    ("api:request_get", "GET"): api_row(404, in_scope=200, creator=200, administrator=200),
    ("api:request_get", "POST"): api_row(405),
    ("api:request_list", "GET"): api_row(200),
    ("api:request_list", "POST"): api_row(422),
    ("api:request_queue", "GET"): api_row(200),
    ("api:request_queue", "POST"): api_row(405),
    ("api:request_submit", "GET"): api_row(200),  # the same address as request_list
    ("api:request_submit", "POST"): api_row(422),
    ("api:role_change", "GET"): api_row(405),
    # an empty change
    ("api:role_change", "POST"): api_row(403, outsider=404, manager=200, administrator=200),
    ("api:room_bulk_change", "GET"): api_row(405),
    ("api:room_bulk_change", "POST"): api_row(422),
    ("api:room_change", "GET"): api_row(200, outsider=404),  # the same address as room_get
    ("api:room_change", "POST"): api_row(405),
    ("api:room_create", "GET"): api_row(200),  # the same address as room_list
    ("api:room_create", "POST"): api_row(422),
    ("api:room_delete", "GET"): api_row(200, outsider=404),  # the same address as room_get
    ("api:room_delete", "POST"): api_row(405),
    ("api:room_get", "GET"): api_row(200, outsider=404),
    ("api:room_get", "POST"): api_row(405),
    ("api:room_list", "GET"): api_row(200),
    ("api:room_list", "POST"): api_row(422),
    ("api:room_move", "GET"): api_row(405),
    ("api:room_move", "POST"): api_row(422),
    ("api:token_list", "GET"): api_row(200),
    ("api:token_list", "POST"): api_row(422),
    ("api:token_revoke", "GET"): api_row(405),
    ("api:token_revoke", "POST"): api_row(405),
    ("api:token_sign_in", "GET"): api_row(200),  # the same address as token_list
    ("api:token_sign_in", "POST"): api_row(422),
}
TOKEN_CELLS = [(name, method, role) for (name, method) in API_MATRIX for role in ROLES[1:]]


def test_every_api_address_has_a_token_row():
    api_rows = {(name, method) for name, method in MATRIX if name.startswith("api:")}
    api_rows -= {(n, m) for n, m in api_rows if n in ("api:api-root", "api:openapi-json")}
    api_rows -= {(n, m) for n, m in api_rows if n == "api:openapi-view"}
    assert api_rows == set(API_MATRIX), sorted(api_rows ^ set(API_MATRIX))


TOKEN_REFUSALS = [cell for cell in TOKEN_CELLS if API_MATRIX[cell[:2]][cell[2]] >= 400]
TOKEN_ANSWERS = [cell for cell in TOKEN_CELLS if cell not in TOKEN_REFUSALS]


@pytest.mark.matrix
@pytest.mark.parametrize(("name", "method", "roles"), refused_roles(TOKEN_REFUSALS))
def test_a_refusal_with_a_token_changes_nothing(name, method, roles, fake_chat, fake_world):
    assert wrong_refusals(fake_chat, fake_world, name, method, roles, API_MATRIX, token=True) == []


@pytest.mark.parametrize(("name", "method", "role"), TOKEN_ANSWERS)
def test_the_answer_each_role_gets_with_a_token(name, method, role, chat, world):
    expected = API_MATRIX[(name, method)][role]
    users, url = prepared(name, world)
    response = ask(url, method, users[role], token=True)
    assert response.status_code == expected, (name, method, role, response.status_code)
