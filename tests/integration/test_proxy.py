"""The proxy trusted exactly, through a real nginx: the client's own address is what the
audit log records and what /metrics is decided on; a client cannot claim another
address by sending X-Forwarded-For itself."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from portal.models import AuditEntry
from rooms.backend.embedded import free_port
from tests.factories import LocalUserFactory

pytestmark = pytest.mark.django_db(transaction=True)
CLIENT_ADDRESS = "127.0.0.2"  # another loopback address: not the proxy's


def nginx_config(directory: Path, port: int, upstream: str) -> str:
    """The documented reverse proxy (docs/deploy.md): it replaces any X-Forwarded-For a
    client sent with the address the connection came from."""
    return f"""daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {directory}/body;
  proxy_temp_path {directory}/proxy;
  fastcgi_temp_path {directory}/fastcgi;
  uwsgi_temp_path {directory}/uwsgi;
  scgi_temp_path {directory}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass {upstream};
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
  }}
}}
"""


@pytest.fixture
def proxy(live_server, tmp_path: Path, settings) -> Iterator[str]:
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    port = free_port()
    config = tmp_path / "nginx.conf"
    config.write_text(nginx_config(tmp_path, port, live_server.url))
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen([binary, "-c", str(config), "-p", str(tmp_path)])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until nginx listens
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert process.poll() is None, (tmp_path / "error.log").read_text()
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def from_client(url: str, path: str, **headers: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=CLIENT_ADDRESS)
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.get(url + path, headers=headers)


def test_the_audit_log_records_the_clients_address_through_the_proxy(proxy):
    local = LocalUserFactory()  # a local account: no chat server is asked
    transport = httpx.HTTPTransport(local_address=CLIENT_ADDRESS)
    with httpx.Client(transport=transport, timeout=30, base_url=proxy) as client:
        client.get("/accounts/login/")
        answer = client.post(
            "/accounts/login/",
            data={"username": local.username, "password": "wrong"},
            headers={"X-CSRFToken": client.cookies["csrftoken"], "Referer": proxy + "/"},
        )
    assert answer.status_code == 200  # the form again, with the error
    entry = AuditEntry.objects.get(action="auth.login")
    assert entry.client_ip == CLIENT_ADDRESS


def test_metrics_are_refused_to_a_client_through_the_proxy_and_to_a_forged_header(
    proxy, live_server, settings
):
    assert from_client(proxy, "/metrics").status_code == 403
    forged = from_client(live_server.url, "/metrics", **{"X-Forwarded-For": "127.0.0.1"})
    assert forged.status_code == 403  # not from a trusted proxy: the header is ignored
    assert httpx.get(live_server.url + "/metrics", timeout=30).status_code == 200  # loopback
    settings.METRICS_TOKEN = "scraper-token-of-forty-characters-or-so"
    scraped = from_client(proxy, "/metrics", Authorization=f"Bearer {settings.METRICS_TOKEN}")
    assert scraped.status_code == 200
    assert b"portal_open_policy_breaches" in scraped.content
