"""Test harness: the tests that talk to a chat server share one real Synapse, started on a
free loopback port the first time a test asks for it; the rest run without one."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
import psycopg
import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import override_settings

from accounts.directory import server as directory_server
from accounts.models import User
from rooms import operations
from rooms.backend.embedded import Connection, EmbeddedSynapse, free_port
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.backend.records import Privacy, Room, RoomSettings
from rooms.index import IndexedChatBackend
from rooms.services import rooms as room_services
from tests.arranging import ArrangingChat
from tests.chat_users import ChatUser
from tests.failing import InjectingTransport
from tests.fake_chat import SERVER_NAME as FAKE_SERVER_NAME
from tests.fake_chat import FakeChatServer

ROOT = Path(__file__).resolve().parents[1]
TEST_SERVER_NAME = "portal.test"
PASSWORD = "correct-horse-battery"


def homeserver(tmp_path_factory: pytest.TempPathFactory, *, rules: bool) -> EmbeddedSynapse:
    return EmbeddedSynapse(
        tmp_path_factory.mktemp("synapse" if rules else "synapse-without-rules"),
        port=free_port(),
        server_name=TEST_SERVER_NAME,
        bcrypt_rounds=4,
        rules=rules,
    )


@pytest.fixture(scope="session")
def synapse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSynapse]:
    with homeserver(tmp_path_factory, rules=True) as server:
        yield server


@pytest.fixture(scope="session")
def homeserver_without_rules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connection]:
    """A second test homeserver, without the portal's module: as an existing homeserver
    that does not run it, for the sync worker's second line."""
    with homeserver(tmp_path_factory, rules=False) as server:
        yield server.bootstrap()


@pytest.fixture(scope="session")
def synapse(synapse_server: EmbeddedSynapse) -> Connection:
    """The test homeserver, which the portal then talks to for the rest of the session.

    Only tests that ask for it (or for a fixture built on it) start it: the pure-logic
    tests (`make unit`, marker `not chat`) run without any chat server.
    """
    connection = synapse_server.bootstrap()
    settings.CHAT_SERVER_URL = connection.url
    settings.CHAT_SERVER_NAME = connection.server_name
    settings.CHAT_SERVICE_TOKEN = connection.token
    return connection


@pytest.fixture(autouse=True)
def _test_settings(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    # The test database is emptied between tests; anchors of its entries go with it.
    settings.AUDIT_ANCHOR_FILE = tmp_path_factory.mktemp("anchors") / "audit-anchors.jsonl"
    # Local accounts' passwords: a fast hash, where a real one costs a third of a second.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Nothing cached by one test (sessions, the index's age) is seen by the next.
    cache.clear()


@pytest.fixture(scope="session", autouse=True)
def _static_files_found_by_name() -> Iterator[None]:
    """Pages link static files by their plain names in the tests: the live server finds
    them in the app folders, as it could not by collected, hashed names. The hashed and
    compressed files a production portal serves are checked on a real one started by
    `runportal` (tests/integration/test_serving.py)."""
    storages = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }
    with override_settings(STORAGES=storages):
        yield


@pytest.fixture(scope="session", autouse=True)
def _flush_passes_the_audit_guard() -> Iterator[None]:
    """Django empties SQLite test databases with DELETE, which the audit log's trigger
    refuses to everyone but retention; the tests' flush goes through retention's door."""
    from django.db.backends.base.operations import BaseDatabaseOperations

    from portal.audit.retention import retention_permitted

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: BaseDatabaseOperations, sql_list: list[str]) -> None:
        with retention_permitted():
            original(self, sql_list)

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign]
    yield
    BaseDatabaseOperations.execute_sql_flush = original  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def chat(synapse: Connection) -> Iterator[ArrangingChat]:
    """The service account's client, for arranging and checking state on the chat server."""
    client = ArrangingChat(
        base_url=synapse.url, server_name=synapse.server_name, token=synapse.token
    )
    yield client
    client.close()


@pytest.fixture
def fake_chat(settings: Any, monkeypatch: pytest.MonkeyPatch) -> IndexedChatBackend[FakeChatServer]:
    """The portal's chat client with an in-memory chat server behind it (the fast layer):
    what it changes is indexed as the portal's own changes are; `.server` is the fake."""
    server = FakeChatServer()
    settings.CHAT_SERVER_NAME = FAKE_SERVER_NAME
    monkeypatch.setattr("rooms.index.backend.server_client", lambda: server)
    return IndexedChatBackend(lambda: server)


@dataclass(frozen=True)
class FakeCategory:
    """A category on the in-memory chat server, with a portal account for each of its
    people: its Creator, a person in its scope, one outside it."""

    id: str
    people: dict[str, User]

    def room(self, **changes: Any) -> Room:
        """A Closed room made through the service, as the Creator."""
        values = {"name": unique("Room "), "description": "", "category_id": self.id}
        settings = RoomSettings(**(values | {"privacy": Privacy.CLOSED} | changes))
        return room_services.room_create(
            actor=self.people["creator"], settings=settings, submission=uuid.uuid4()
        )


@pytest.fixture
def fake_category(db: None, fake_chat: IndexedChatBackend[FakeChatServer]) -> FakeCategory:
    ids = {
        who: fake_chat.ensure_user(who, password="unused", display_name=who.title()).id
        for who in ("creator", "member", "outsider")
    }
    made = fake_chat.create_category(
        name=unique("Category "), description="", creators=[ids["creator"]]
    )
    fake_chat.add_to_category_scope(made.id, [ids["creator"], ids["member"]])
    people = {who: User.objects.create(username=i, chat_id=i) for who, i in ids.items()}
    return FakeCategory(made.id, people)


@pytest.fixture
def chat_down(settings: Any) -> None:
    """Point the portal at a port where no chat server listens."""
    settings.CHAT_SERVER_URL = f"http://127.0.0.1:{free_port()}"
    settings.CHAT_SERVER_NAME = TEST_SERVER_NAME
    settings.CHAT_SERVICE_TOKEN = "no-server-answers-this-token"


@pytest.fixture
def failing_chat(synapse: Connection):
    """A client for the test Synapse whose first request (PUT unless told) to a path
    containing `fail_on` gets a 500 (the first `times` such requests: a step the client
    tries again fails for good), as a chat server failing half-way would."""
    from tests.failing import FailingTransport

    def make(
        fail_on: str, method: str = "PUT", times: int = 1
    ) -> IndexedChatBackend[MatrixChatBackend]:
        failing = MatrixChatBackend(
            base_url=synapse.url,
            server_name=synapse.server_name,
            token=synapse.token,
            transport=FailingTransport(fail_on, method, times),
        )
        return IndexedChatBackend(lambda: failing)

    return make


@pytest.fixture
def scratch_portal(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of portal processes started by a test, on an empty, migrated
    database of the suite's own kind: a SQLite file, or a scratch database on the suite's
    PostgreSQL server. For tests of several processes (or threads) writing at once."""
    postgres = connection.vendor == "postgresql"
    params = connection.settings_dict
    name = f"portal_scratch_{uuid.uuid4().hex[:8]}"
    server = None
    if postgres:
        server = psycopg.connect(
            host=params["HOST"],
            port=params["PORT"] or 5432,
            user=params["USER"],
            password=params["PASSWORD"],
            dbname="postgres",
            autocommit=True,
        )
        server.execute(f'CREATE DATABASE "{name}"')
        url = (
            f"postgres://{params['USER']}:{params['PASSWORD'] or ''}@{params['HOST']}:"
            f"{params['PORT'] or 5432}/{name}"
        )
    else:
        url = f"sqlite:///{tmp_path / 'portal.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "DEBUG"))} | {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": url,
        "PORTAL_STATE_DIR": str(tmp_path / "state"),
        "AUDIT_CHAIN_KEYS": "shared:" + "k" * 40,
        "AUDIT_ANCHOR_FILE": str(tmp_path / "anchors.jsonl"),
    }
    try:
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrate.returncode == 0, migrate.stderr
        yield env
    finally:
        if server is not None:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            server.close()


@pytest.fixture
def portal_on_chat(scratch_portal: dict[str, str], synapse: Connection) -> dict[str, str]:
    """A separate portal process's environment, on the test Synapse."""
    return scratch_portal | {
        "CHAT_SERVER_URL": synapse.url,
        "CHAT_SERVER_NAME": synapse.server_name,
        "CHAT_SERVICE_TOKEN": synapse.token,
    }


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_chat_user(chat: MatrixChatBackend, synapse: Connection):
    """Create a person on the chat server; returns a ChatUser logged in as them."""

    def make(name: str = "user", display_name: str = "") -> ChatUser:
        localpart = unique(name)
        principal = chat.ensure_user(
            localpart, password=PASSWORD, display_name=display_name or name.capitalize()
        )
        return ChatUser.login(synapse.url, principal.id, PASSWORD)

    return make


@pytest.fixture
def category_world(chat: MatrixChatBackend, make_chat_user):
    """A category with a creator and an in-scope member, and a person outside its scope."""
    creator, member, outsider = (
        make_chat_user("creator"),
        make_chat_user("member"),
        make_chat_user("outsider"),
    )
    category = chat.create_category(
        name=unique("Category "), description="Test category", creators=[creator.user_id]
    )
    chat.add_to_category_scope(category.id, [creator.user_id, member.user_id])
    return {
        "category": chat.get_category(category.id),
        "creator": creator,
        "member": member,
        "outsider": outsider,
    }


def portal_user(chat_user) -> User:
    """The portal account a chat user gets at first login."""
    user, _ = User.objects.get_or_create(
        chat_id=chat_user.user_id, defaults={"username": chat_user.user_id}
    )
    return user


@pytest.fixture
def creator(db, category_world) -> User:
    return portal_user(category_world["creator"])


@pytest.fixture
def member(db, category_world) -> User:
    return portal_user(category_world["member"])


@pytest.fixture
def outsider(db, category_world) -> User:
    return portal_user(category_world["outsider"])


@pytest.fixture
def injected(synapse, monkeypatch) -> InjectingTransport:
    """The portal's chat client, with faults injected into its real traffic on demand."""
    transport = InjectingTransport()
    client = MatrixChatBackend(
        base_url=synapse.url,
        server_name=synapse.server_name,
        token=synapse.token,
        transport=transport,
    )
    monkeypatch.setattr("rooms.index.backend.server_client", lambda: client)
    monkeypatch.setattr("accounts.backends.server_client", lambda: client)
    monkeypatch.setattr(operations, "RETRY_DELAYS", (0, 0))
    return transport


@pytest.fixture
def make_room(creator, category_world):
    """Create a room through the service, as the category's creator."""

    def make(**changes):
        values = {
            "name": unique("Room "),
            "description": "Made by a test",
            "category_id": category_world["category"].id,
            "privacy": Privacy.CLOSED,
        } | changes
        return room_services.room_create(
            actor=creator, settings=RoomSettings(**values), submission=uuid.uuid4()
        )

    return make


@pytest.fixture
def make_directory(
    tmp_path: Path, settings: Any
) -> Iterator[Callable[[directory_server.Seed], directory_server.DirectoryConnection]]:
    """A directory of the test's own (slapd, seeded), which the portal then reads."""
    with contextlib.ExitStack() as stack:

        def make(seed: directory_server.Seed) -> directory_server.DirectoryConnection:
            found = stack.enter_context(
                directory_server.embedded_directory(tmp_path / "directory", seed)
            )
            settings.DIRECTORY_URL = found.url
            settings.DIRECTORY_BIND_DN = found.bind_dn
            settings.DIRECTORY_BIND_PASSWORD = found.password
            settings.DIRECTORY_BASE = found.base
            return found

        yield make


# What makes a test slow, by what it starts: a chat server, a browser, processes of its
# own. The fast layer (`make unit`) is the rest: pure logic and the database.
CHAT_FIXTURES = {"synapse", "homeserver_without_rules"}
PROCESS_FIXTURES = {"live_server", "scratch_portal", "portal_on_chat", "make_directory"}
SLOW_FOLDERS = {"integration": "processes", "operations": "chat", "browser": "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers by what a test starts (its fixtures) and by folder, never by one fixture
    alone: a test in tests/integration starts processes whatever its fixtures say."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & CHAT_FIXTURES:
            item.add_marker(pytest.mark.chat)
        if names & PROCESS_FIXTURES:
            item.add_marker(pytest.mark.processes)
        folder = Path(str(item.fspath)).parent.name
        if folder in SLOW_FOLDERS:
            item.add_marker(getattr(pytest.mark, SLOW_FOLDERS[folder]))


FAST = ("chat", "processes", "browser")


@pytest.fixture(autouse=True)
def _the_fast_layer_starts_no_process(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test of the fast layer that starts a process or asks for the chat server fails at
    once, naming the marker it needs: the fast layer stays fast (and passes alone, without
    a homeserver another test started) because nothing slow can land in it unnoticed."""
    if any(request.node.get_closest_marker(marker) for marker in FAST):
        return

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(
            "A test of the fast layer started a process: mark it `processes` (or use a "
            "fixture that starts what it needs) so that `make unit` stays fast."
        )

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)

    def no_chat_server() -> None:
        raise AssertionError(
            "A test of the fast layer asked for the chat server: use the `chat` fixture "
            "(or another that starts a homeserver), which marks it `chat`."
        )

    # Tests that fake the chat server set their own client over this one.
    monkeypatch.setattr("rooms.index.backend.server_client", no_chat_server)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A test that cannot run fails the run: skips are not allowed here."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"{len(skipped)} test(s) skipped: every test must run.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# A space made outside the portal, as a chat client makes one (for adopting it).


def made(person: ChatUser, **request: Any) -> str:
    answer = person.http.post("/_matrix/client/v3/createRoom", json=request)
    assert answer.status_code == 200, answer.text
    return answer.json()["room_id"]


def link(person: ChatUser, space_id: str, room_id: str) -> None:
    via = {"via": [person.user_id.split(":", 1)[1]]}
    assert person.put_state(space_id, "m.space.child", via, room_id).status_code == 200
    assert person.put_state(room_id, "m.space.parent", via, space_id).status_code == 200


@pytest.fixture
def space(chat, make_chat_user):
    """Alice's space with Bob in it: a knock room, a public room Carol (not in the space)
    joined, and a room of version 10."""
    alice, bob, carol = make_chat_user("alice"), make_chat_user("bob"), make_chat_user("carol")
    chat.http.request(  # Alice sets up a lot at once, as a chat client would over minutes
        "POST",
        f"/_synapse/admin/v1/users/{alice.user_id}/override_ratelimit",
        json={"messages_per_second": 0, "burst_count": 0},
    )
    name = unique("Team space ")
    space_id = made(alice, name=name, creation_content={"type": "m.space"}, preset="private_chat")
    knock = made(alice, name=unique("Knock room "), preset="private_chat")
    alice.put_state(knock, "m.room.join_rules", {"join_rule": "knock"})
    public = made(alice, name=unique("Public room "), preset="public_chat")
    old = made(alice, name=unique("Old room "), room_version="10", preset="private_chat")
    for room in (knock, public, old):
        link(alice, space_id, room)
    assert alice.invite(space_id, bob.user_id).status_code == 200
    assert bob.join(space_id).status_code == 200
    assert alice.invite(knock, bob.user_id).status_code == 200
    assert carol.join(public).status_code == 200
    return {
        "id": space_id,
        "name": name,
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "knock": knock,
        "public": public,
        "old": old,
    }


@pytest.fixture
def org(make_directory, chat, category_world):
    """A directory of five people: two teams nested in Support engineers, an OU each."""
    tag = uuid.uuid4().hex[:6]
    people = {
        name: directory_server.Person(f"{name}{tag}", f"{name.title()} Example", (ou,), "pw")
        for name, ou in (
            ("ann", "Engineering"),
            ("bob", "Engineering"),
            ("cy", "Support"),
            ("di", "Support"),
            ("ed", "Sales"),
        )
    }
    tier2 = directory_server.Group("Tier 2", people=(people["cy"].username,))
    support = directory_server.Group(
        "Support engineers", people=(people["di"].username,), groups=("Tier 2", "Loop")
    )
    loop = directory_server.Group("Loop", groups=("Support engineers",))  # a cycle ends
    blocked = directory_server.Group("Blocked", people=(people["ed"].username,))
    found = make_directory(
        directory_server.Seed(people=list(people.values()), groups=[tier2, support, loop, blocked])
    )
    return {
        "connection": found,
        "people": people,
        "id": {name: chat.user_id_for(p.username) for name, p in people.items()},
        "category": category_world["category"],
    }


def modify(org, group: str, how: str, person: directory_server.Person) -> None:
    """Add a person to a group of `org`'s directory, or take them out (how: MODIFY_ADD,
    MODIFY_DELETE), as its administrators would."""
    found = org["connection"]
    with ldap3.Connection(
        ldap3.Server(found.url), found.bind_dn, found.password, auto_bind=True
    ) as ldap:
        member = directory_server.person_dn(person)
        changed = ldap.modify(directory_server.group_dn(group), {"member": [(how, [member])]})
        assert changed, ldap.result
