"""`runportal` (what `make run` runs) serves the portal through gunicorn, with its sync
worker (started again when it dies), and stops all of it when it is stopped."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rooms.backend.embedded import free_port
from tests.conftest import ROOT


@pytest.fixture
def portal(portal_on_chat: dict[str, str], tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runportal", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=portal_on_chat
        | {
            "WEB_CONCURRENCY": "2",
            "STATIC_ROOT": str(tmp_path / "static"),
            # Where gunicorn would put its control socket: one per account, shared by
            # every gunicorn it starts. The portal's has none.
            "XDG_RUNTIME_DIR": str(tmp_path),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    # Migrations, static files and gunicorn's start take minutes on a loaded machine:
    # wait for the real signal (gunicorn answering), or for the process to give up.
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{url}/health/live").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"runportal did not start serving (exit code {process.poll()}).")
        time.sleep(0.2)
    try:
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()


def commands_of(pids: set[int]) -> set[str]:
    return {Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ") for pid in pids}


def children(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return {int(p) for p in found.stdout.split()}


def test_the_portal_is_served_by_gunicorn_with_its_sync_worker_and_job_runner(portal, tmp_path):
    url, process = portal
    live = httpx.get(f"{url}/health/live")
    assert live.headers["Server"].startswith("gunicorn")
    ready = httpx.get(f"{url}/health/ready").json()
    assert ready["status"] == "ok", ready
    login = httpx.get(f"{url}/accounts/login/")
    stylesheet = re.search(r'href="(/static/[^"]+\.css)"', login.text)
    assert stylesheet, "the page links its stylesheet"
    assert re.search(r"\.[0-9a-f]{12}\.css$", stylesheet.group(1))  # hashed: cached for ever
    css = httpx.get(url + stylesheet.group(1), headers={"Accept-Encoding": "gzip"})
    assert css.status_code == 200
    assert css.headers.get("Content-Encoding") == "gzip"
    assert "max-age=315360000" in css.headers["Cache-Control"]
    # The API's docs load Swagger UI from the portal, with no internet needed.
    docs = httpx.get(f"{url}/api/v1/docs")
    bundle = re.search(r'src="(/static/ninja/swagger-ui-bundle[^"]*\.js)"', docs.text)
    assert bundle, "the docs load Swagger UI from the portal's static files"
    assert httpx.get(url + bundle.group(1)).status_code == 200
    assert not (tmp_path / "gunicorn.ctl").exists()
    # Idle connections (a browser's preconnects) hold no worker: with more of them than
    # the workers' threads, once the workers have taken them in, pages are served well
    # within the 30 s a sync worker once waited on each before it was killed.
    port = int(url.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        time.sleep(3)  # let the workers accept them: the state under test, not a wait
        for _ in range(3):
            assert httpx.get(f"{url}/accounts/login/", timeout=20).status_code == 200
    finally:
        for connection in idle:
            connection.close()
    metrics = httpx.get(f"{url}/metrics").text
    assert "portal_index_lag_seconds" in metrics
    workers = children(process.pid)
    commands = commands_of(workers)
    assert any("index_sync" in c for c in commands)
    assert any("run_jobs" in c for c in commands)  # the job runner, apart from it
    assert any("gunicorn" in c for c in commands)

    # The sync worker, killed, is started again by its supervisor; /health/ready says so.
    [worker] = [pid for pid in workers if "index_sync" in commands_of({pid}).pop()]
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while True:
        state = httpx.get(f"{url}/health/ready", timeout=20).json()["sync_worker"]
        if state["restarts"] == 1 and any(
            "index_sync" in c for c in commands_of(children(process.pid) - {worker})
        ):
            break
        assert time.monotonic() < deadline, f"the sync worker was not started again: {state}"
        time.sleep(0.5)
    assert state["last_death"].startswith("killed by signal 9")
    # So is the job runner, its deaths counted apart.
    [runner] = [pid for pid in children(process.pid) if "run_jobs" in commands_of({pid}).pop()]
    os.kill(runner, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while True:
        ready = httpx.get(f"{url}/health/ready", timeout=20).json()
        if ready["job_runner"]["restarts"] == 1 and any(
            "run_jobs" in c for c in commands_of(children(process.pid) - {runner})
        ):
            break
        assert time.monotonic() < deadline, f"the job runner was not started again: {ready}"
        time.sleep(0.5)
    assert ready["sync_worker"]["restarts"] == 1
    workers = children(process.pid)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    deadline = time.monotonic() + 60  # its children are reaped with it
    while [pid for pid in workers if Path(f"/proc/{pid}").exists()]:
        assert time.monotonic() < deadline, "a child of the portal outlived it"
        time.sleep(0.1)
