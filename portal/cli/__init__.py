"""roomctl: the portal's API from a shell, as the Persistent Chat cmdlets were.

\b
    roomctl login http://127.0.0.1:8000 --user carol
    roomctl room list --category Engineering --json
    roomctl room create --name "Release train" --category Engineering --privacy open
    roomctl room set ROOM --privacy closed --what-if
    roomctl role add ROOM --role member --from-file people.txt
    roomctl room list --category Engineering --ids | roomctl room set - --disabled
    roomctl room list --ids | roomctl room set - --description "…" --background
    roomctl room set --in-category Sales --now-privacy closed --disabled --what-if
    roomctl category scope Engineering --add @dave:example.org --what-if
    roomctl category options Sales --no-file-uploads --what-if
    roomctl addin register --name Wiki --url https://wiki.example.org --category Sales
    roomctl request queue
    roomctl audit export --action room. --format csv -o rooms.csv
    roomctl operation list --everyone --status unfinished
    roomctl token list

The portal's address and a personal access token come from ROOMCTL_URL and ROOMCTL_TOKEN,
or from ~/.config/roomctl.toml (`url = "…"`, `token = "…"`), which `roomctl login` writes.
Tables for people, `--json` for scripts (with the reason for each refusal).

\b
Exit codes:
  0  done
  1  refused or failed: one thing named, or some of the rooms or people of a list or a
     pipe (the rest were done); an operation that did not succeed
  2  bad usage (nothing sent)
  3  the token (or the password, for login) was refused
  4  not found: the one room, category, request or operation named
  5  the portal or its chat server could not be reached or failed

ROOM `-` reads room IDs from standard input, one per line (none is a usage error); each
room gets its own result, and a refused token or an unreachable portal stops the rest.

Installed as `roomctl` by `pip install .` (it needs httpx and click only).
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import sys
from typing import Any

import click

from . import admin, rooms
from .core import CONFIG, USAGE, Portal, Refused, fail


class RoomctlGroup(click.Group):
    """A refusal from the portal ends the command with its exit code and reason."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Refused as refused:
            click.echo(f"roomctl: {refused}", err=True)
            ctx.exit(refused.code)


@click.group(cls=RoomctlGroup, help=__doc__)
def main() -> None:
    pass


@main.command()
@click.argument("url")
@click.option("--user", "username", default="", help="Your chat username (asked if left out).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
@click.option(
    "--token-stdin",
    is_flag=True,
    help="Keep a token made on the portal's Tokens page instead, read from standard input "
    "(people who sign in with single sign-on have no password to give).",
)
@click.option("--name", default="", help="The token's name (default: roomctl on this machine).")
@click.option("--scope", type=click.Choice(["read", "write"]), default="write")
@click.option("--days", default=30, help="How long the token lasts: 1 to 366 days.")
def login(
    url: str,
    username: str,
    password_stdin: bool,
    token_stdin: bool,
    name: str,
    scope: str,
    days: int,
) -> None:
    """Sign in to the portal at URL with your chat username and password, and keep the
    token it makes (and the address) in ~/.config/roomctl.toml, readable by you alone.
    The password is sent to the portal once and kept nowhere. With --token-stdin, the
    token given is checked with the portal and kept instead."""
    if token_stdin:
        secret = sys.stdin.readline().strip()
        if not secret:
            fail(USAGE, "No token on standard input: make one on the portal's Tokens page.")
        mine = Portal(url, secret).call("GET", "/tokens")
        keep(url, secret)
        click.echo(f"Signed in with the token given ({len(mine)} of yours), kept in {CONFIG}.")
        return
    username = username or click.prompt("Chat username")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        fail(USAGE, "No terminal to ask the password on: give it with --password-stdin.")
    name = name or f"roomctl on {platform.node() or 'this machine'}"
    asked = {"username": username, "password": password, "name": name, "scope": scope}
    made = Portal(url).call("POST", "/tokens", json=asked | {"days": days})
    keep(url, made["secret"])
    click.echo(
        f"Signed in as {username}: a {scope} token “{name}” until {made['expires_at'][:10]}, "
        f"kept in {CONFIG}."
    )


def keep(url: str, secret: str) -> None:
    """The portal's address and the token, in a file readable by its owner alone."""
    config = CONFIG.expanduser()
    config.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as kept:
        kept.write(f"url = {json.dumps(url)}\ntoken = {json.dumps(secret)}\n")
    os.chmod(config, 0o600)  # also when it was there before, readable by others


main.add_command(rooms.room)
main.add_command(rooms.role)
main.add_command(admin.category)
main.add_command(admin.addin)
main.add_command(admin.request)
main.add_command(admin.audit)
main.add_command(admin.operation)
main.add_command(admin.token)
