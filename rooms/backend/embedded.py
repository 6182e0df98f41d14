"""The embedded Synapse homeserver: used by `make run`, a management command and the tests.

It listens on loopback only, keeps its keys and its SQLite database in one folder (or its
data in a PostgreSQL database: scaled out, and in benchmarks), talks to no other server,
and dies with the process that started it.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import hmac
import importlib.metadata
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from portal.secrets import (
    PRIVATE_FILE_MODE,
    owner_only_umask,
    private_dir,
    tighten,
    write_private,
)
from rooms.backend.errors import ChatBackendError, ChatInvalid
from rooms.backend.matrix.client import MatrixChatBackend

SERVICE_LOCALPART = "roomportal"
RULES_MODULE = "rooms.chatserver.module.PortalRules"
STATISTICS_MODULE = "rooms.chatserver.statistics.PlannerStatistics"
REPOSITORY = Path(__file__).resolve().parents[2]
CONNECTION_FILE = "connection.json"
START_TIMEOUT_SECONDS = 90.0


class EmbeddedServerError(RuntimeError):
    """The embedded chat server could not be started or set up."""


@dataclass(frozen=True)
class Connection:
    """How the portal reaches a homeserver as its service account."""

    url: str
    server_name: str
    token: str = field(repr=False)  # a server admin's: never in a log line or a report

    def client(self, timeout: float = 10.0) -> MatrixChatBackend:
        return MatrixChatBackend(
            base_url=self.url, server_name=self.server_name, token=self.token, timeout=timeout
        )


# Ports for the servers this starts, below the kernel's range for outgoing connections
# (32768-60999 on Linux): a port handed out from that range (bind to port 0) can be taken
# as the source port of some connection before the server listens on it.
PORTS = range(20000, 32768)


_handed_out: set[int] = set()  # ports this process gave, not yet listened on perhaps


def free_port(count: int = 1) -> int:
    """A port on 127.0.0.1 nothing listens on now, outside the outgoing range (with
    `count`, the first of that many in a row). A port is handed out once per process:
    servers started one after another cannot be given the same port before the first
    listens."""
    for port in random.sample(PORTS[: len(PORTS) - count], 200):
        block = range(port, port + count)
        if _handed_out.intersection(block) or not all(_bindable(p) for p in block):
            continue
        _handed_out.update(block)
        return port
    raise EmbeddedServerError("No free port between 20000 and 32767 on 127.0.0.1.")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def homeserver_env() -> dict[str, str]:
    """The environment of a homeserver process: the portal's module is imported from
    this repository, and the homeserver's version is its package's (installed in a
    virtual environment inside this git checkout, Synapse would add the checkout's
    branch to it, which modules that compare versions, matrix-synapse-ldap3, refuse)."""
    path = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    version = importlib.metadata.version("matrix-synapse")
    return dict(os.environ) | {"PYTHONPATH": path, "SYNAPSE_VERSION_STRING": version}


def read_connection(directory: Path) -> Connection | None:
    """The connection an earlier bootstrap wrote into the folder, if any."""
    try:
        data = json.loads((directory / CONNECTION_FILE).read_text())
        return Connection(data["url"], data["server_name"], data["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def prepare_child() -> None:
    """For a process the portal starts (the homeserver, the sync worker): only the owner
    reads what it writes (the homeserver's database holds the service token, its log the
    requests), and it gets SIGTERM when the process that started it dies, even by
    SIGKILL, so a crashed test run or a killed `make run` leaves no orphan (Linux)."""
    owner_only_umask()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def child_process(
    command: list[str], *, cwd: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A process of the portal's (a sync worker, a web server) for as long as the block
    runs; stopped with it, however it ends."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        preexec_fn=prepare_child,  # umask and prctl only: safe between fork and exec
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def supervised(
    command: list[str],
    *,
    cwd: Path,
    on_death: Callable[[int], None],
    max_backoff: float = 30.0,
) -> Iterator[None]:
    """A process of the portal's kept running for as long as the block runs: started
    again whenever it dies (after 1, 2, 4… seconds, at most `max_backoff`; a process that
    ran a minute starts the count again), each death told to `on_death` with its exit code
    (negative: the signal that killed it); stopped with the block, however it ends."""
    stopping = threading.Event()
    lock = threading.Lock()
    current: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, cwd=cwd, preexec_fn=prepare_child)
        current[:] = [process]
        return process

    def watch(process: subprocess.Popen[bytes]) -> None:
        backoff = 1.0
        while True:
            started = time.monotonic()
            code = process.wait()
            if stopping.is_set():
                return
            on_death(code)
            if time.monotonic() - started > 60:
                backoff = 1.0
            if stopping.wait(backoff):
                return
            backoff = min(backoff * 2, max_backoff)
            with lock:
                if stopping.is_set():
                    return
                process = start()

    watcher = threading.Thread(target=watch, args=(start(),), daemon=True, name="supervisor")
    watcher.start()
    try:
        yield
    finally:
        with lock:
            stopping.set()
            process = current[0]
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        watcher.join(timeout=5)


@dataclass(frozen=True)
class DirectoryLogin:
    """The directory (accounts.directory) people sign in to the embedded homeserver
    through, with their directory password (matrix-synapse-ldap3): looked up under
    `people_base` by `user_attribute` among the entries `people` matches (the enabled
    people: `accounts.directory.people_filter`) as the directory's bind account, then
    bound as themselves. Accounts the homeserver holds a password for still sign in with
    it."""

    url: str
    bind_dn: str
    password: str
    people_base: str
    user_attribute: str = "uid"
    people: str = "(objectClass=inetOrgPerson)"

    def module(self) -> dict[str, Any]:
        return {
            "module": "ldap_auth_provider.LdapAuthProviderModule",
            "config": {
                "enabled": True,
                "mode": "search",
                "uri": self.url,
                "start_tls": False,  # on loopback
                "base": self.people_base,
                "bind_dn": self.bind_dn,
                "bind_password": self.password,
                "filter": self.people,
                "attributes": {"uid": self.user_attribute, "mail": "mail", "name": "displayName"},
            },
        }


@dataclass(frozen=True)
class SingleSignOn:
    """An OpenID Connect provider the embedded homeserver signs people in through
    (`accounts/idp/provider.mjs` in the demo and the tests)."""

    issuer: str
    client_secret: str
    # The portal's address: the homeserver sends people back there with a login token
    # without asking them first, and there when a sign-in did not finish.
    portal_url: str
    idp_id: str = "demo"
    idp_name: str = "Demo sign-in"

    def config(self, homeserver_url: str, templates: Path) -> dict[str, Any]:
        return {
            "public_baseurl": f"{homeserver_url}/",
            "oidc_providers": [
                {
                    "idp_id": self.idp_id,
                    "idp_name": self.idp_name,
                    "issuer": self.issuer,
                    "client_id": "synapse",
                    "client_secret": self.client_secret,
                    "scopes": ["openid", "profile", "groups"],
                    "skip_verification": True,  # a provider on loopback, over plain HTTP
                    "user_profile_method": "userinfo_endpoint",
                    # The demo people made with passwords sign in as themselves.
                    "allow_existing_users": True,
                    "user_mapping_provider": {
                        "config": {
                            "localpart_template": "{{ user.preferred_username }}",
                            "display_name_template": "{{ user.name }}",
                            # In the login's answer, for the portal's roles (SSO_GROUPS_ATTRIBUTE).
                            "extra_attributes": {"groups": "{{ user.groups | tojson }}"},
                        }
                    },
                }
            ],
            "sso": {"client_whitelist": [f"{self.portal_url.rstrip('/')}/"]},
            "templates": {"custom_template_directory": str(templates)},
        }

    def error_page(self) -> str:
        """Synapse's page for a sign-in that did not finish (cancelled, refused): it
        sends the person back to the portal, which says so and audits it."""
        back = (
            f"{self.portal_url.rstrip('/')}/accounts/sso/failed/?error={{{{ error | urlencode }}}}"
        )
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="0; url={back}">'
            "<title>Sign-in did not finish</title></head><body>"
            "<p>{{ error_description }}</p>"
            f'<p><a href="{back}">Back to the room portal</a></p></body></html>'
        )


# Events the homeserver keeps in memory. Every invitation walks the room's member events
# one by one (`RoomMemberHandler._is_host_in_room`) until it finds one of its own people
# joined; once a room's member events outgrow the cache (Synapse's default, 10K, shared by
# every room) each of them is read from the database again on every invitation: 7 s an
# invitation into a room of 5,250 people (py-spy), where it was 0.1 s below the size.
EVENT_CACHE_SIZE = "50K"


def postgres_database(url: str, name: str) -> dict[str, Any]:
    """The homeserver's database `name` on the PostgreSQL server of `url`."""
    server = psycopg.conninfo.conninfo_to_dict(url)
    return {
        "host": server.get("host", "127.0.0.1"),
        "port": int(str(server.get("port") or 5432)),
        "user": server.get("user", "postgres"),
        "password": server.get("password", ""),
        "database": name,
    }


class EmbeddedSynapse:
    """One Synapse process with its configuration and state in `directory`."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int,
        server_name: str,
        bcrypt_rounds: int = 12,
        rules: bool = True,
        sso: SingleSignOn | None = None,
        login: DirectoryLogin | None = None,
        event_cache_size: str = EVENT_CACHE_SIZE,
        database: dict[str, Any] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.event_cache_size = event_cache_size
        # PostgreSQL (psycopg2's host, port, user, password, database: `postgres_database`),
        # made at the start when missing; None: the SQLite file in `directory`.
        self.database = database
        self.sso = sso
        self.login = login
        self.port = port
        self.server_name = server_name
        # The portal's module (rooms.chatserver.module), which refuses what breaks the
        # rules. Off only to test the sync worker's second line, as on a homeserver
        # without it.
        self.rules = rules
        # Tests lower it: they create and log in hundreds of throwaway users.
        self.bcrypt_rounds = bcrypt_rounds
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        return self.directory / "homeserver.log"

    @property
    def service_user(self) -> str:
        return f"@{SERVICE_LOCALPART}:{self.server_name}"

    # --- configuration ----------------------------------------------------------------

    def _secrets(self) -> dict[str, str]:
        path = self.directory / "secrets.json"
        if path.exists():
            return dict(json.loads(path.read_text()))
        values = {
            key: secrets.token_urlsafe(32)
            for key in ("registration", "macaroon", "form", "service_password")
        }
        write_private(path, json.dumps(values))
        return values

    def write_config(self) -> None:
        # The folder holds the registration secret and the service token: owner only,
        # also for what an earlier version left readable.
        private_dir(self.directory)
        tighten(self.directory)
        # JSON is valid YAML, so the config is written without a YAML library.
        write_private(self.config_path, json.dumps(self.config(), indent=2))
        if self.sso is not None:
            private_dir(self.directory / "templates")
            write_private(self.directory / "templates" / "sso_error.html", self.sso.error_page())
        if not (self.directory / "signing.key").exists():
            subprocess.run(
                [*self._command(), "--generate-keys"],
                check=True,
                capture_output=True,
                cwd=self.directory,
                env=homeserver_env(),
                preexec_fn=owner_only_umask,
            )

    def config(self) -> dict[str, Any]:
        """The homeserver's configuration."""
        keys = self._secrets()
        d = self.directory
        return {
            "server_name": self.server_name,
            "pid_file": str(d / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": (
                {"name": "psycopg2", "args": self.database | {"cp_min": 2, "cp_max": 10}}
                if self.database
                else {"name": "sqlite3", "args": {"database": str(d / "homeserver.db")}}
            ),
            "media_store_path": str(d / "media"),
            "signing_key_path": str(d / "signing.key"),
            "registration_shared_secret": keys["registration"],
            "macaroon_secret_key": keys["macaroon"],
            "form_secret": keys["form"],
            "report_stats": False,
            "bcrypt_rounds": self.bcrypt_rounds,
            "event_cache_size": self.event_cache_size,
            "enable_metrics": False,
            "enable_registration": False,
            # No federation and no key servers: this server talks to nobody else.
            "federation_domain_whitelist": [],
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "room_list_publication_rules": [
                {"user_id": self.service_user, "action": "allow"},
                {"action": "deny"},
            ],
            # The portal throttles its own logins; the tests and the demo log many chat
            # users in from one loopback address, which Synapse's default would refuse.
            "rc_login": {
                kind: {"per_second": 50, "burst_count": 500}
                for kind in ("address", "account", "failed_attempts")
            },
            # Each room's retention policy (a category's "keep messages for") is honoured:
            # expired messages are hidden at once and deleted by the hourly purge.
            "retention": {"enabled": True, "purge_jobs": [{"interval": "1h"}]},
            # SQLite's query planner statistics, which Synapse never gathers, kept current.
            "modules": [{"module": STATISTICS_MODULE, "config": {}}]
            + (
                [{"module": RULES_MODULE, "config": {"service_user": self.service_user}}]
                if self.rules
                else []
            )
            + ([self.login.module()] if self.login is not None else []),
        } | (self.sso.config(self.url, d / "templates") if self.sso is not None else {})

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)]

    # --- process ----------------------------------------------------------------------

    def _stop_stale(self) -> None:
        """Stop a homeserver left running from this folder by an earlier, killed run."""
        pid_file = self.directory / "homeserver.pid"
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if str(self.config_path).encode() in cmdline:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)

    def create_database(self) -> None:
        """The PostgreSQL database (C collation, as Synapse requires), unless it exists."""
        if self.database is None:
            return
        server = {k: v for k, v in self.database.items() if k != "database"}
        with psycopg.connect(**server, dbname="postgres", autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [self.database["database"]]
            ).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL(
                        "CREATE DATABASE {} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' "
                        "TEMPLATE template0"
                    ).format(sql.Identifier(self.database["database"]))
                )

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        self.create_database()
        self.write_config()
        self._stop_stale()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                raise EmbeddedServerError(
                    f"Port {self.port} is already in use; set CHAT_EMBEDDED_PORT to a free port."
                )
        self.process = self._spawn(self._command(), self.log_path)
        self._wait_healthy(self.url, self.process, self.log_path, timeout)

    def _spawn(self, command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        """Start one process of the homeserver's, its output appended to its own log."""
        log = os.fdopen(
            os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE), "ab"
        )
        try:
            return subprocess.Popen(
                command,
                cwd=self.directory,
                env=homeserver_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
                preexec_fn=prepare_child,  # umask and prctl only: safe between fork and exec
            )
        finally:
            log.close()

    def _wait_healthy(
        self, url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.stop()
                raise EmbeddedServerError(
                    f"A homeserver process exited with code {process.returncode}; see {log_path}."
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise EmbeddedServerError(f"{url} did not become healthy in {timeout:.0f}s.")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self) -> EmbeddedSynapse:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- bootstrap --------------------------------------------------------------------

    def bootstrap(self) -> Connection:
        """Make sure the service account exists, is a server admin and is not rate-limited.

        Safe to run on every start: an existing account is logged into, not recreated,
        and a still-valid token from the last run is kept.
        """
        previous = read_connection(self.directory)
        if previous and previous.url == self.url:
            with contextlib.suppress(ChatBackendError):
                if previous.client().whoami() == self.service_user:
                    return previous
        password = self._secrets()["service_password"]
        token = self._register_service_account(password) or self._login(password)
        connection = Connection(self.url, self.server_name, token)
        client = connection.client()
        try:
            client.http.request(
                "POST",
                f"/_synapse/admin/v1/users/{self.service_user}/override_ratelimit",
                json={"messages_per_second": 0, "burst_count": 0},
            )
        finally:
            client.close()
        write_private(self.directory / CONNECTION_FILE, json.dumps(asdict(connection)))
        return connection

    def _register_service_account(self, password: str) -> str | None:
        shared_secret = self._secrets()["registration"]
        with httpx.Client(base_url=self.url, timeout=30) as http:
            nonce = http.get("/_synapse/admin/v1/register").json()["nonce"]
            mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
            mac.update(
                b"\x00".join(
                    [nonce.encode(), SERVICE_LOCALPART.encode(), password.encode(), b"admin"]
                )
            )
            response = http.post(
                "/_synapse/admin/v1/register",
                json={
                    "nonce": nonce,
                    "username": SERVICE_LOCALPART,
                    "password": password,
                    "admin": True,
                    "mac": mac.hexdigest(),
                },
            )
        if response.status_code == 400 and response.json().get("errcode") == "M_USER_IN_USE":
            return None
        if response.status_code != 200:
            raise EmbeddedServerError(f"Could not register the service account: {response.text}")
        return str(response.json()["access_token"])

    def _login(self, password: str) -> str:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            response = http.post(
                "/_matrix/client/v3/login",
                json={
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": SERVICE_LOCALPART},
                    "password": password,
                    "initial_device_display_name": "Room portal service",
                },
            )
        if response.status_code != 200:
            raise ChatInvalid(f"The service account could not log in: {response.text}")
        return str(response.json()["access_token"])
