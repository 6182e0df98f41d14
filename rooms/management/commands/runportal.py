from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.directory import people_filter
from accounts.directory.server import embedded_directory
from accounts.idp import Person, identity_provider
from portal.secrets import tighten
from rooms import jobs, sync
from rooms.backend import server_client
from rooms.backend.embedded import (
    DirectoryLogin,
    EmbeddedSynapse,
    SingleSignOn,
    child_process,
    supervised,
)
from rooms.demo import CHAT_PEOPLE, DIRECTORY_SEED, seed_demo
from rooms.index import chat_backend


def web_server(addrport: str, *, dev: bool) -> list[str]:
    """gunicorn, two workers per core and one more (WEB_CONCURRENCY overrides), threaded
    as `gunicorn.conf.py` says; with `dev`,
    Django's autoreloading development server (it restarts itself, not the chat server)."""
    if dev:
        return [sys.executable, "manage.py", "runserver", addrport]
    workers = os.environ.get("WEB_CONCURRENCY") or str(2 * (os.cpu_count() or 1) + 1)
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "portal.wsgi",
        "--bind",
        addrport,
        "--workers",
        workers,
        "--graceful-timeout",
        "10",
    ]


SSO_DEMO_ADMIN = "erin"
DEMO_IDP_PORT = int(os.environ.get("DEMO_IDP_PORT", "8091"))


@contextlib.contextmanager
def demo_identity_provider(portal_url: str) -> Iterator[SingleSignOn]:
    """The demo's identity provider, signing in the demo's chat people with their demo
    passwords; one of them in the group that makes a portal administrator."""
    group = os.environ.setdefault("SSO_ADMIN_GROUP", "portal-administrators")
    settings.SSO_ADMIN_GROUP = group  # the web server, a child, reads it from the environment
    people = [
        Person(localpart, name, password, (group,) if localpart == SSO_DEMO_ADMIN else ())
        for localpart, name, password, _ in CHAT_PEOPLE
    ]
    with identity_provider(
        settings.STATE_DIR / "idp",
        people,
        homeserver_url=f"http://127.0.0.1:{settings.CHAT_EMBEDDED_PORT}",
        portal_url=portal_url,
        port=DEMO_IDP_PORT,
    ) as sso:
        yield sso


DEMO_DIRECTORY_PORT = int(os.environ.get("DEMO_DIRECTORY_PORT", "8389"))


@contextlib.contextmanager
def demo_directory() -> Iterator[str]:
    """The demo's directory (slapd, from the state folder, seeded at its first start),
    told to the portal's processes through their environment; its address."""
    with embedded_directory(
        settings.STATE_DIR / "directory", DIRECTORY_SEED, port=DEMO_DIRECTORY_PORT
    ) as found:
        values = {
            "DIRECTORY_URL": found.url,
            "DIRECTORY_BIND_DN": found.bind_dn,
            "DIRECTORY_BIND_PASSWORD": found.password,
            "DIRECTORY_BASE": found.base,
        }
        for name, value in values.items():
            os.environ[name] = value  # the web server and the workers are children
            setattr(settings, name, value)
        yield found.url


def mail_destination() -> str:
    """Where the portal's e-mail goes, as the start-up lines say it."""
    if settings.EMAIL_HOST:
        return f"SMTP to {settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
    if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
        return f"each message a file in {settings.EMAIL_FILE_PATH} (set EMAIL_HOST to send it)"
    return settings.EMAIL_BACKEND


class Command(BaseCommand):
    help = (
        "Serve the portal: start the embedded chat server (unless CHAT_SERVER_URL names one) "
        "and the room index's sync worker, seed the demo data, print the demo logins and "
        "serve the portal with gunicorn (--dev: the autoreloading development server)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument(
            "--seed",
            action="store_true",
            help="Seed demo data on an existing homeserver too (always done on the embedded one).",
        )
        parser.add_argument(
            "--sso",
            action="store_true",
            help="Sign people in through a demo identity provider too (the embedded server only).",
        )
        parser.add_argument(
            "--dev",
            action="store_true",
            help="Serve with Django's autoreloading development server instead of gunicorn.",
        )

    def handle(
        self, *args: Any, addrport: str, seed: bool, dev: bool, sso: bool, **options: Any
    ) -> None:
        # SIGTERM and Ctrl-C end the command (even where SIGINT came ignored, as in a
        # background job): its children are stopped on the way out.
        for stop in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop, lambda signum, frame: sys.exit(0))
        os.umask(0o077)  # whatever the portal and its chat server write is theirs alone
        tighten(settings.STATE_DIR)
        if not dev:
            call_command("collectstatic", interactive=False, verbosity=0)
        with contextlib.ExitStack() as stack:
            if sso and settings.CHAT_SERVER_URL:
                raise CommandError(
                    "--sso starts a demo identity provider for the embedded chat server; "
                    "a chat server of your own signs people in through its own SSO."
                )
            if not settings.DIRECTORY_URL and not settings.CHAT_SERVER_URL:
                address = stack.enter_context(demo_directory())
                self.stdout.write(
                    f"Directory (OpenLDAP) at {address}, base {settings.DIRECTORY_BASE}"
                )
            if not settings.CHAT_SERVER_URL:
                single_sign_on = (
                    stack.enter_context(demo_identity_provider(f"http://{addrport}"))
                    if sso
                    else None
                )
                server = stack.enter_context(
                    EmbeddedSynapse(
                        settings.CHAT_EMBEDDED_DIR,
                        port=settings.CHAT_EMBEDDED_PORT,
                        server_name=settings.CHAT_EMBEDDED_SERVER_NAME,
                        sso=single_sign_on,
                        login=DirectoryLogin(
                            settings.DIRECTORY_URL,
                            settings.DIRECTORY_BIND_DN,
                            settings.DIRECTORY_BIND_PASSWORD,
                            settings.DIRECTORY_BASE,
                            settings.DIRECTORY_USER_ATTRIBUTE,
                            people_filter(enabled=True),
                        )
                        if settings.DIRECTORY_URL
                        else None,
                    )
                )
                server.bootstrap()
                self.stdout.write(f"Embedded chat server {server.server_name} at {server.url}")
                seed = True
            else:
                self.stdout.write(f"Using the chat server at {settings.CHAT_SERVER_URL}")
            # The index first: seeding reads it to never make twice what exists.
            self.stdout.write("Bringing the room index up to date...")
            sync.sync_once(server_client(), timeout_ms=0)
            # Supervised: restarted whenever they die, each death logged and on
            # /health/ready. The index's follower and the job runner apart: neither waits
            # on the other.
            stack.enter_context(
                supervised(
                    [sys.executable, "manage.py", "index_sync"],
                    cwd=settings.BASE_DIR,
                    on_death=sync.worker_died,
                )
            )
            stack.enter_context(
                supervised(
                    [sys.executable, "manage.py", "run_jobs"],
                    cwd=settings.BASE_DIR,
                    on_death=partial(sync.worker_died, key=jobs.JOBS),
                )
            )
            if seed:
                self.stdout.write("Seeding demo data...")
                logins = seed_demo(chat_backend())
                self.stdout.write(self.style.SUCCESS(f"\nPortal: http://{addrport}/  Demo logins:"))
                for login in logins:
                    self.stdout.write(login.line())
                self.stdout.write("")
            self.stdout.write(f"Mail: {mail_destination()}")
            if sso:
                self.stdout.write(
                    f"Single sign-on: “Sign in with Demo sign-in” on the login page, with the "
                    f"demo logins above ({SSO_DEMO_ADMIN} is a portal administrator through "
                    f"the provider's group “{os.environ['SSO_ADMIN_GROUP']}”)."
                )
            roomctl = Path(sys.executable).parent / "roomctl"
            if roomctl.exists():  # `make run` installs it
                self.stdout.write(f"Shell: {roomctl} login http://{addrport} --user <a login>")
            # gunicorn's workers share their metrics through files: a fresh folder each start.
            metrics_dir = settings.STATE_DIR / "metrics"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(mode=0o700)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
            web = stack.enter_context(
                child_process(web_server(addrport, dev=dev), cwd=settings.BASE_DIR)
            )
            web.wait()
