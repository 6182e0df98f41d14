from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from psycopg import sql

from portal.secrets import local_secret, private_dir, write_private
from rooms.backend.embedded import child_process, postgres_database
from rooms.backend.scaleout import ScaledSynapse

# What a portal process is configured with (written to portalN.env, owner only).
PORTAL_SETTINGS = {
    "SECRET_KEY",
    "AUDIT_CHAIN_KEYS",
    "AUDIT_ANCHOR_FILE",
    "DATABASE_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "TRUSTED_PROXIES",
    "CHAT_SERVER_URL",
    "CHAT_SERVER_NAME",
    "CHAT_SERVICE_TOKEN",
    "PORTAL_STATE_DIR",
}


class Command(BaseCommand):
    help = (
        "Start the portal scaled out on this machine: Synapse on PostgreSQL with a main "
        "process and generic workers (Redis replication) behind nginx, and several portal "
        "processes (gunicorn each, one PostgreSQL, Redis), each with its sync worker. "
        "Runs until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dir", default=str(settings.STATE_DIR / "scaleout"))
        parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
        parser.add_argument("--redis", default="redis://127.0.0.1:6379")
        parser.add_argument("--name", default="scaleout", help="Prefix of the databases.")
        parser.add_argument("--synapse-port", type=int, default=8180)
        parser.add_argument(
            "--portal-ports", default="8101,8102", help="One portal process per port."
        )
        parser.add_argument(
            "--port", type=int, default=8100, help="nginx in front of the portal processes."
        )
        parser.add_argument("--workers", type=int, default=2, help="Synapse generic workers.")
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers each.")
        parser.add_argument("--seed", action="store_true", help="Seed the demo data.")

    def handle(self, *args: Any, **options: Any) -> None:
        for stop in (signal.SIGTERM, signal.SIGINT):  # SIGINT may come ignored (a background job)
            signal.signal(stop, lambda signum, frame: sys.exit(0))
        os.umask(0o077)
        directory = Path(options["dir"])
        private_dir(directory)
        name = options["name"]
        base = options["synapse_port"]
        synapse = ScaledSynapse(
            directory / "synapse",
            port=base,
            server_name=f"{name.replace('_', '-')}.localhost",
            ports=[base + 1, base + 2, *[base + 3 + n for n in range(options["workers"])]],
            database=postgres_database(options["postgres"], f"{name}_synapse"),
            redis={"host": "127.0.0.1", "port": 6379, "dbid": 2},
            workers=options["workers"],
        )
        ports = [int(p) for p in options["portal_ports"].split(",")]
        synapse.portals = (options["port"], ports)
        portal_db = f"{name}_portal"
        _create_database(options["postgres"], portal_db)
        shared = {
            # Every portal process of one installation signs and seals with the same keys.
            "SECRET_KEY": local_secret(directory / "secret_key"),
            "AUDIT_CHAIN_KEYS": "shared:" + local_secret(directory / "audit_chain_key"),
            "DATABASE_URL": f"{options['postgres'].rstrip('/')}/{portal_db}",
            "REDIS_URL": f"{options['redis'].rstrip('/')}/1",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # nginx, on this machine, is the one proxy: it says who the client is.
            "TRUSTED_PROXIES": "127.0.0.1",
        }
        with contextlib.ExitStack() as stack:
            stack.enter_context(synapse)
            connection = synapse.bootstrap()
            self.stdout.write(
                f"Synapse {synapse.server_name}: main and {options['workers']} workers "
                f"behind nginx at {synapse.url}"
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "DEBUG"))}
            env |= shared | {
                "CHAT_SERVER_URL": connection.url,
                "CHAT_SERVER_NAME": connection.server_name,
                "CHAT_SERVICE_TOKEN": connection.token,
            }
            run = [sys.executable, "manage.py"]
            subprocess.run([*run, "migrate", "--no-input", "-v0"], env=env, check=True)
            subprocess.run([*run, "collectstatic", "--no-input", "-v0"], env=env, check=True)
            if options["seed"]:
                subprocess.run([*run, "seed_demo"], env=env, check=True)
            for n, port in enumerate(ports, 1):
                machine = env | {
                    "PORTAL_STATE_DIR": str(directory / f"portal{n}"),
                    "AUDIT_ANCHOR_FILE": str(directory / f"portal{n}" / "anchors.jsonl"),
                    "PROMETHEUS_MULTIPROC_DIR": str(_fresh(directory / f"portal{n}" / "metrics")),
                }
                # Each process's environment, for its operators (and the load benchmark).
                write_private(
                    directory / f"portal{n}.env",
                    "".join(f"{k}={v}\n" for k, v in machine.items() if k in PORTAL_SETTINGS),
                )
                for worker in ("index_sync", "run_jobs"):
                    stack.enter_context(
                        child_process([*run, worker], cwd=settings.BASE_DIR, env=machine)
                    )
                stack.enter_context(
                    child_process(
                        [
                            sys.executable,
                            "-m",
                            "gunicorn",
                            "portal.wsgi",
                            "--bind",
                            f"127.0.0.1:{port}",
                            "--workers",
                            str(options["web_workers"]),
                        ],
                        cwd=settings.BASE_DIR,
                        env=machine,
                    )
                )
            for port in ports:
                _wait_live(f"http://127.0.0.1:{port}")
                self.stdout.write(f"Portal process at http://127.0.0.1:{port}/")
            self.stdout.write(
                f"The portal, balanced over them: http://127.0.0.1:{options['port']}/"
            )
            self.stdout.write(self.style.SUCCESS("Scaled-out set-up running; Ctrl-C stops it."))
            signal.pause()


def _create_database(url: str, name: str) -> None:
    """The portal's database, unless it exists already (never overwritten)."""
    with psycopg.connect(f"{url.rstrip('/')}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _fresh(path: Path) -> Path:
    if path.exists():
        for item in path.iterdir():
            item.unlink()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _wait_live(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health/live", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"The portal process at {url} did not start.")
