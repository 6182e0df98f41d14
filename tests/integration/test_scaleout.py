"""The portal scaled out for real on this machine (`manage.py scaleout`): Synapse on
PostgreSQL with a main process and two generic workers behind nginx, two portal
processes (gunicorn each) on one PostgreSQL and Redis, a sync worker each. A room created
through portal process A is seen through portal process B and by a chat user whose
requests go through the Synapse workers; one sync worker leads."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import unquote

import httpx
import psycopg
import pytest

from rooms.backend.embedded import free_port
from tests.conftest import ROOT

POSTGRES = "postgres://postgres@127.0.0.1:5432"


@pytest.fixture
def scaled(tmp_path: Path):
    name = f"so_{uuid.uuid4().hex[:8]}"
    # The homeserver's processes listen on the port and the five after it.
    synapse_port, balancer, a, b = free_port(6), free_port(), free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "scaleout",
            "--dir",
            str(tmp_path / "scaleout"),
            "--name",
            name,
            "--postgres",
            POSTGRES,
            "--synapse-port",
            str(synapse_port),
            "--portal-ports",
            f"{a},{b}",
            "--port",
            str(balancer),
            "--seed",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready = False
        deadline = time.monotonic() + 300
        lines = []
        while time.monotonic() < deadline and process.stdout is not None:
            line = process.stdout.readline()
            lines.append(line)
            if "Scaled-out set-up running" in line:
                ready = True
                break
            if not line and process.poll() is not None:
                break
        assert ready, "".join(lines[-40:])
        yield {
            "a": f"http://127.0.0.1:{a}",
            "b": f"http://127.0.0.1:{b}",
            "synapse": f"http://127.0.0.1:{synapse_port}",
            "balancer": f"http://127.0.0.1:{balancer}",
            "dir": tmp_path / "scaleout",
            "name": name,
        }
    finally:
        process.terminate()
        process.wait(timeout=60)
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
            for database in (f"{name}_portal", f"{name}_synapse"):
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def form_token(page: str, field: str) -> str:
    found = re.search(rf'name="{field}" value="([^"]+)"', page)
    assert found, f"no {field} in the page"
    return found.group(1)


def portal_login(base: str, username: str, password: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=30)
    page = http.get("/accounts/login/").text
    answer = http.post(
        "/accounts/login/",
        data={
            "csrfmiddlewaretoken": form_token(page, "csrfmiddlewaretoken"),
            "username": username,
            "password": password,
        },
    )
    assert answer.status_code == 302, answer.text[:500]
    return http


def test_a_room_made_through_one_portal_process_is_seen_through_the_other_and_in_chat(scaled):
    carol_a = portal_login(scaled["a"], "carol", "carol-demo-pass")
    categories = carol_a.get("/categories/").text
    category = unquote(re.search(r'/rooms/new/\?category=([^"&]+)', categories).group(1))
    form = carol_a.get("/rooms/new/", params={"category": category}).text
    name = f"Scaled {uuid.uuid4().hex[:6]}"
    made = carol_a.post(
        "/rooms/new/",
        data={
            "csrfmiddlewaretoken": form_token(form, "csrfmiddlewaretoken"),
            "submission": form_token(form, "submission"),
            "name": name,
            "description": "Made through portal process A",
            "category": category,
            "privacy": "closed",
            "invitations": "inherit",
        },
    )
    assert made.status_code == 302, made.text[:1000]
    room_id = unquote(made.headers["Location"].rstrip("/").rsplit("/", 1)[-1])

    carol_b = portal_login(scaled["b"], "carol", "carol-demo-pass")
    assert name in carol_b.get("/rooms/").text
    assert name in carol_b.get(f"/rooms/{room_id}/").text

    # Carol in her chat client, through nginx: login and /sync are served by the workers.
    login = httpx.post(
        f"{scaled['synapse']}/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "carol"},
            "password": "carol-demo-pass",
        },
    ).json()
    chat = httpx.Client(
        base_url=scaled["synapse"],
        headers={"Authorization": f"Bearer {login['access_token']}"},
        timeout=30,
    )
    rooms = chat.get("/_matrix/client/v3/sync", params={"timeout": 0}).json()["rooms"]
    assert room_id in {**rooms.get("invite", {}), **rooms.get("join", {})}
    assert chat.post(f"/_matrix/client/v3/join/{room_id}", json={}).status_code == 200
    state = chat.get(f"/_matrix/client/v3/rooms/{room_id}/state/m.room.name/").json()
    assert state["name"] == name

    # The Synapse workers really served chat traffic.
    served = [(scaled["dir"] / "synapse" / f"generic{n}.log").read_text() for n in (1, 2)]
    assert any("/sync" in log or "/login" in log for log in served)

    # nginx balances the two portal processes.
    assert httpx.get(f"{scaled['balancer']}/health/ready").json()["status"] == "ok"

    # One sync worker leads; the other waits.
    with psycopg.connect(f"{POSTGRES}/{scaled['name']}_portal") as conn:
        leader = conn.execute("SELECT leader FROM rooms_indexstream").fetchone()
    assert leader is not None
    assert leader[0]
    connection = json.loads((scaled["dir"] / "synapse" / "connection.json").read_text())
    assert connection["url"] == scaled["synapse"]
