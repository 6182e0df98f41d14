"""Synapse as an organisation that outgrew one process runs it: on PostgreSQL, a main
process and generic workers sharing Redis replication, behind nginx that routes the
endpoints the workers serve (as Synapse's worker documentation lists them) and sends the
rest to the main process. Built from the repository's files and Debian's and PyPI's
packages only, for `python manage.py scaleout` and the tests that prove the portal works
there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from portal.secrets import write_private
from rooms.backend.embedded import START_TIMEOUT_SECONDS, EmbeddedServerError, EmbeddedSynapse

# Client-API endpoints a generic worker serves (Synapse: "Available worker
# applications", synapse.app.generic_worker). /sync is sent by the caller's token, so
# each person's stream stays on one worker and its caches.
SYNC = r"^/_matrix/client/(r0|v3)/sync$"
WORKER_ROUTES = [
    r"^/_matrix/client/(api/v1|r0|v3)/events$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/(messages|context|members|joined_members|event/.*|state|state/.*)$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/(send|redact|join|invite|leave|ban|unban|kick|knock)(/.*)?$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/(join|knock)/",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/createRoom$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/joined_rooms$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/profile/",
    r"^/_matrix/client/(r0|v3|unstable)/login$",
    r"^/_matrix/client/v1/rooms/[^/]+/hierarchy$",
]


class ScaledSynapse(EmbeddedSynapse):
    """Synapse's main process and `workers` generic workers on one PostgreSQL database
    and Redis, behind nginx on `port` (the URL the portal and chat clients use)."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int,
        server_name: str,
        ports: list[int],
        database: dict[str, Any],
        redis: dict[str, Any],
        workers: int = 2,
        portals: tuple[int, list[int]] | None = None,
        bcrypt_rounds: int = 12,
    ) -> None:
        super().__init__(
            directory,
            port=port,
            server_name=server_name,
            bcrypt_rounds=bcrypt_rounds,
            database=database,
        )
        # The main process's client and replication ports, then one per worker.
        self.main_port, self.replication_port, *self.worker_ports = ports
        if len(self.worker_ports) != workers:
            raise ValueError("Give a port for the main process, replication and each worker.")
        self.redis = redis
        # The load balancer's port and the portal processes behind it, if nginx fronts them.
        self.portals = portals
        self.workers: dict[str, Any] = {}
        self.nginx: Any = None

    @property
    def worker_names(self) -> list[str]:
        return [f"generic{n + 1}" for n in range(len(self.worker_ports))]

    def config(self) -> dict[str, Any]:
        config = super().config()
        config["listeners"] = [
            {
                "port": self.main_port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "x_forwarded": True,
                "resources": [{"names": ["client"], "compress": False}],
            },
            {
                "port": self.replication_port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "resources": [{"names": ["replication"]}],
            },
        ]
        config["redis"] = {"enabled": True} | self.redis
        config["instance_map"] = {
            "main": {"host": "127.0.0.1", "port": self.replication_port},
        }
        return config

    def write_config(self) -> None:
        super().write_config()
        for name, port in zip(self.worker_names, self.worker_ports, strict=True):
            worker = {
                "worker_app": "synapse.app.generic_worker",
                "worker_name": name,
                "worker_listeners": [
                    {
                        "type": "http",
                        "port": port,
                        "bind_addresses": ["127.0.0.1"],
                        "x_forwarded": True,
                        "resources": [{"names": ["client"]}],
                    }
                ],
            }
            write_private(self.directory / f"{name}.yaml", json.dumps(worker, indent=2))
        write_private(self.directory / "nginx.conf", self.nginx_config())

    def nginx_config(self) -> str:
        """nginx in front: the workers' endpoints to the workers, the rest to main."""
        d = self.directory
        workers = "\n".join(f"    server 127.0.0.1:{port};" for port in self.worker_ports)
        routes = "\n".join(
            f"    location ~ {route} {{ proxy_pass http://synapse_workers; }}"
            for route in WORKER_ROUTES
        )
        return f"""# Written by rooms/backend/scaleout.py.
daemon off;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/nginx-tmp/body;
  proxy_temp_path {d}/nginx-tmp/proxy;
  fastcgi_temp_path {d}/nginx-tmp/fastcgi;
  uwsgi_temp_path {d}/nginx-tmp/uwsgi;
  scgi_temp_path {d}/nginx-tmp/scgi;
  client_max_body_size 50m;
  upstream synapse_main {{ server 127.0.0.1:{self.main_port}; keepalive 16; }}
  upstream synapse_workers {{
{workers}
    keepalive 16;
  }}
  upstream synapse_sync {{
    hash $http_authorization consistent;
{workers}
  }}
  server {{
    listen 127.0.0.1:{self.port};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_read_timeout 120s;
    location ~ {SYNC} {{ proxy_pass http://synapse_sync; }}
{routes}
    location / {{ proxy_pass http://synapse_main; }}
  }}
{self.portal_balancer()}}}
"""

    def portal_balancer(self) -> str:
        """The portal processes behind one address: a process that fails (refuses the
        connection, dies mid-answer) has its requests passed to the next, if they are
        safe to repeat (nginx repeats no POST)."""
        if self.portals is None:
            return ""
        port, backends = self.portals
        servers = "\n".join(
            f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in backends
        )
        return f"""  upstream portal {{
{servers}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{port};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_next_upstream error timeout http_502 http_503;
    proxy_connect_timeout 2s;
    location / {{ proxy_pass http://portal; }}
  }}
"""

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise EmbeddedServerError("nginx is needed: apt-get install nginx-light")
        self.create_database()
        self.write_config()
        (self.directory / "nginx-tmp").mkdir(exist_ok=True)
        self.process = self._spawn(self._command(), self.log_path)
        self._wait_healthy(
            f"http://127.0.0.1:{self.main_port}", self.process, self.log_path, timeout
        )
        for name, port in zip(self.worker_names, self.worker_ports, strict=True):
            log = self.directory / f"{name}.log"
            self.workers[name] = self._spawn(self.worker_command(name), log)
            self._wait_healthy(f"http://127.0.0.1:{port}", self.workers[name], log, timeout)
        self.nginx = self._spawn(
            [nginx, "-p", str(self.directory), "-c", str(self.directory / "nginx.conf")],
            self.directory / "nginx.log",
        )
        self._wait_healthy(self.url, self.nginx, self.directory / "nginx.log", timeout)

    def worker_command(self, name: str) -> list[str]:
        return [
            *self._command()[:2],
            "synapse.app.generic_worker",
            "-c",
            str(self.config_path),
            "-c",
            str(self.directory / f"{name}.yaml"),
        ]

    def stop_worker(self, name: str) -> None:
        """Stop one worker (as a crash would), the rest going on."""
        process = self.workers.get(name)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=15)

    def stop(self) -> None:
        for process in [self.nginx, *self.workers.values()]:
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=15)
        super().stop()
