"""The embedded Synapse launcher: start, bootstrap, stop."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from rooms.backend.embedded import (
    EmbeddedServerError,
    EmbeddedSynapse,
    free_port,
    postgres_database,
)


def test_bootstrap_is_idempotent_and_makes_an_unthrottled_admin(synapse, tmp_path):
    server = EmbeddedSynapse(tmp_path, port=free_port(), server_name="again.test", bcrypt_rounds=4)
    with server:
        first = server.bootstrap()
        assert server.bootstrap() == first  # the valid token is kept
        (tmp_path / "connection.json").unlink()
        second = server.bootstrap()  # the existing account is logged into, not recreated
        client = second.client()
        assert client.whoami() == "@roomportal:again.test"
        assert client.is_server_admin()
        override = client.http.request(
            "GET", "/_synapse/admin/v1/users/@roomportal:again.test/override_ratelimit"
        )
        assert override == {"messages_per_second": 0, "burst_count": 0}
        client.close()
    assert server.process.poll() is not None


def test_the_homeserver_keeps_sqlite_planner_statistics(synapse_server, synapse):
    """Without them SQLite reads a room's every event for each message of a history page
    (rooms.chatserver.statistics); the module gathers them once events are stored."""
    client = synapse.client()
    client.http.request("POST", "/_matrix/client/v3/createRoom", json={"name": "Analysed"})
    client.close()
    stat = planner_statistics(synapse_server.directory / "homeserver.db", "events")
    assert int(stat.split()[0]) > 0  # how many events SQLite counted


def planner_statistics(database: Path, table: str, *, seconds: float = 60) -> str:
    """SQLite's statistics of `table` once the homeserver's module has gathered them."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            found = (
                db.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()
                and db.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = ?", (table,)).fetchone()
            )
        if found or time.monotonic() > deadline:
            return str(found[0]) if found else ""
        time.sleep(0.5)


def test_config_listens_on_loopback_only_and_federates_with_nobody(tmp_path):
    server = EmbeddedSynapse(tmp_path, port=free_port(), server_name="config.test")
    server.write_config()
    config = server.config_path.read_text()
    assert '"bind_addresses": [\n        "127.0.0.1"\n      ]' in config
    assert '"trusted_key_servers": []' in config
    assert '"federation_domain_whitelist": []' in config
    assert '"report_stats": false' in config
    assert '"user_id": "@roomportal:config.test"' in config


def test_the_database_is_its_own_sqlite_file_or_the_postgresql_one_given(tmp_path):
    own = EmbeddedSynapse(tmp_path, port=free_port(), server_name="config.test")
    assert own.config()["database"] == {
        "name": "sqlite3",
        "args": {"database": str(tmp_path / "homeserver.db")},
    }
    database = postgres_database("postgres://synapse:secret@db.example:5433", "homeserver")
    given = EmbeddedSynapse(
        tmp_path, port=free_port(), server_name="config.test", database=database
    )
    assert given.config()["database"] == {
        "name": "psycopg2",
        "args": {
            "host": "db.example",
            "port": 5433,
            "user": "synapse",
            "password": "secret",
            "database": "homeserver",
            "cp_min": 2,
            "cp_max": 10,
        },
    }


def test_a_busy_port_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = EmbeddedSynapse(tmp_path, port=busy.getsockname()[1], server_name="busy.test")
        with pytest.raises(EmbeddedServerError, match="already in use"):
            server.start()


def test_the_server_dies_with_the_process_that_started_it(tmp_path):
    script = (
        "import sys, time\n"
        "from rooms.backend.embedded import EmbeddedSynapse\n"
        f"s = EmbeddedSynapse({str(tmp_path)!r}, port={free_port()}, server_name='orphan.test')\n"
        "s.start()\n"
        "print(s.process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=settings.BASE_DIR, text=True
    )
    synapse_pid = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no cleanup code of the parent runs
    parent.wait()
    deadline = time.monotonic() + 20
    while Path(f"/proc/{synapse_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{synapse_pid}").exists()
