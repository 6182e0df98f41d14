"""What every roomctl command shares: the portal's API with one token, the exit codes,
tables and JSON, room IDs piped in, and waiting on an operation with progress."""

from __future__ import annotations

import json
import os
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx

# The exit codes, as `roomctl --help` documents them.
DONE, SOME_FAILED, USAGE, TOKEN_REFUSED, NOT_FOUND, UNAVAILABLE = 0, 1, 2, 3, 4, 5
CONFIG = Path("~/.config/roomctl.toml")
POLL_SECONDS = 1.0
RATE_LIMITED_TRIES = 5
FAILED = ("refused", "not found", "failed")  # a room's or a person's result that was not done


class Refused(Exception):
    """The portal did not do what was asked: its status, its reason, and the exit code."""

    def __init__(self, code: int, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}" if status else detail)
        self.code, self.status, self.detail = code, status, detail


def exit_code_of(status: int) -> int:
    """401: the token; 404: not found; 5xx: the portal or its chat server; any other
    refusal (403, 409, 412, 422, 429): refused."""
    if status == 401:
        return TOKEN_REFUSED
    if status == 404:
        return NOT_FOUND
    return UNAVAILABLE if status >= 500 else SOME_FAILED


def checked(answer: httpx.Response) -> httpx.Response:
    """An answer that says it was done; `Refused`, with the problem's detail, otherwise."""
    if answer.is_success:
        return answer
    answer.read()
    try:
        detail = answer.json().get("detail") or answer.text
    except ValueError:
        detail = answer.text
    raise Refused(exit_code_of(answer.status_code), answer.status_code, detail)


class Portal:
    """The API of one portal, with one token (none for signing in)."""

    def __init__(self, url: str, token: str = "") -> None:
        self.http = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=60,
        )

    def answer(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The portal's answer when it did what was asked; `Refused` otherwise. Past the
        token's rate limit, it waits as long as the portal says (up to a minute a time)
        and asks again."""
        for _ in range(RATE_LIMITED_TRIES):
            try:
                answer = self.http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise Refused(UNAVAILABLE, 0, f"The portal cannot be reached: {exc}") from None
            wait = answer.headers.get("Retry-After", "")
            if answer.status_code != 429 or not wait.isdigit() or int(wait) > 60:
                break
            click.echo(f"Rate limited: asking again in {wait} s", err=True)
            time.sleep(int(wait))
        return checked(answer)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.answer(method, path, **kwargs)
        return answer.json() if answer.content else None

    def make(
        self, path: str, body: dict[str, Any], *, key: str, what_if: bool, as_json: bool
    ) -> None:
        """Make something once per `Idempotency-Key` (or, with `what_if`, only check it),
        and print its ID — or all of it, for `--json` and a what-if."""
        made = self.call(
            "POST",
            path,
            json=body,
            headers={"Idempotency-Key": key} if key else {},
            params={"dry_run": str(what_if).lower()},
        )
        if as_json or what_if:
            show(made, as_json, [])
        else:
            click.echo(made["id"])

    def pages(self, path: str, **query: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list paged by cursor."""
        query = {k: v for k, v in query.items() if v not in (None, "")}
        cursor = ""
        while True:
            page = self.call("GET", path, params=query | ({"cursor": cursor} if cursor else {}))
            yield from page["items"]
            cursor = page.get("next_cursor") or ""
            if not cursor:
                return

    def operation(self, operation_id: str) -> dict[str, Any]:
        """An operation with every one of its results, read a page at a time."""
        path = f"/operations/{operation_id}"
        found = self.call("GET", path, params={"results_limit": 1000})
        following = found["next_results_from"]
        while following is not None:
            page = self.call("GET", path, params={"results_from": following, "results_limit": 1000})
            found["results"] += page["results"]
            following = page["next_results_from"]
        return dict(found)

    def wait(self, operation_id: str, *, timeout: float) -> dict[str, Any]:
        """Poll an operation until it is no longer running (or `timeout` seconds passed),
        saying how far it got on standard error; it, with every result."""
        deadline = time.monotonic() + timeout
        path = f"/operations/{operation_id}"
        while True:
            polled = self.call("GET", path, params={"results_limit": 1})
            if sys.stderr.isatty() or os.environ.get("ROOMCTL_PROGRESS"):
                click.echo(f"{polled['done']} of {polled['total']} done", err=True)
            if polled["status"] != "running" or time.monotonic() > deadline:
                return self.operation(operation_id)
            time.sleep(POLL_SECONDS)


def fail(code: int, message: str) -> NoReturn:
    """Stop with `code`, saying why on standard error."""
    raise Refused(code, 0, message)


def portal() -> Portal:
    url, token = os.environ.get("ROOMCTL_URL", ""), os.environ.get("ROOMCTL_TOKEN", "")
    config = CONFIG.expanduser()
    if (not url or not token) and config.is_file():
        settings = tomllib.loads(config.read_text())
        url, token = url or settings.get("url", ""), token or settings.get("token", "")
    if not url or not token:
        fail(
            USAGE,
            f"Set ROOMCTL_URL and ROOMCTL_TOKEN, or run `roomctl login URL` (it writes {CONFIG}).",
        )
    return Portal(url, token)


def show(found: Any, as_json: bool, columns: list[str]) -> None:
    """JSON for scripts, or a table (one row per item) for people."""
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
    elif isinstance(found, list):
        table(found, columns)
    else:
        for key, value in found.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            click.echo(f"{key:20} {shown}")


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain table, one row per line, columns as wide as their widest value."""
    if not rows:
        click.echo("(none)")
        return
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    header = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    click.echo(header.rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def category_id(api: Portal, given: str) -> str:
    """A category's ID from its ID or its name (any letter case)."""
    if not given or given.startswith("!"):
        return given
    for category in api.call("GET", "/categories"):
        if category["name"].casefold() == given.casefold():
            return str(category["id"])
    fail(NOT_FOUND, f"There is no category called “{given}” that you may see.")


def room_ids(given: str) -> list[str]:
    """One room, or (for `-`) the room IDs piped in, one per line; none piped is a usage
    error, not a silent success."""
    if given != "-":
        return [given]
    piped = [line.strip() for line in sys.stdin if line.strip()]
    if not piped:
        fail(USAGE, "No room IDs came on standard input (ROOM `-` reads them, one per line).")
    return piped


def each_room(
    given: str, act: Callable[[str], dict[str, Any]], shown: Callable[[list[dict[str, Any]]], None]
) -> None:
    """Do `act` for one room, or for each room piped in (`given` is `-`). A room refused,
    missing or failed is its result and the others go on (exit 1 at the end); a refused
    token or an unreachable portal stops everything with its own code, after showing what
    was done. One room named (not piped) exits with its own answer's code."""
    results: list[dict[str, Any]] = []
    for room_id in room_ids(given):
        try:
            results.append(act(room_id))
        except Refused as exc:
            if exc.code in (TOKEN_REFUSED, UNAVAILABLE) or given != "-":
                if results:
                    shown(results)
                raise
            outcome = "not found" if exc.code == NOT_FOUND else "refused"
            results.append({"room": room_id, "result": outcome, "detail": exc.detail})
    shown(results)
    if any(r["result"] in FAILED for r in results):
        sys.exit(SOME_FAILED)


def principal_dn(api: Portal, given: str, find: str) -> str:
    """A group's or an OU's DN, given as one or as its name (which must name one), found
    through the API address `find`."""
    if "=" in given:
        return given
    found = api.call("GET", find, params={"q": given})
    exact = [p for p in found if p["name"].casefold() == given.casefold()]
    if len(exact) == 1:
        return str(exact[0]["dn"])
    if not exact:
        fail(USAGE, f"No group or OU of the directory is named “{given}”.")
    fail(USAGE, "Several are named so; give the DN: " + "; ".join(p["dn"] for p in exact))


def said_done(applied: bool, said: list[str], nothing: str = "Nobody changes.") -> None:
    """One line for a change and its what-if: "Done. 2 into the scope: …." or "Would do.
    …", each part a sentence."""
    done = "Done." if applied else "Would do."
    click.echo(" ".join([done, *(f"{line}." for line in said)]) if said else f"{done} {nothing}")


def asked_first(what_if: bool, yes: bool, why: str, question: str, *, piped: bool = False) -> None:
    """Before a change that cannot be taken back: ask on a terminal, or (no terminal, or
    `piped` rooms on standard input) refuse without --yes, saying `why`."""
    if what_if or yes:
        return
    if piped or not sys.stdin.isatty():
        fail(USAGE, f"{why}: add --yes (or --what-if to look first).")
    click.confirm(question, abort=True)


def named_one(named: list[dict[str, Any]], given: str, *, listed_by: str) -> dict[str, Any]:
    """The one group or OU (as the API lists them) that `given` names, by name or DN."""
    wanted = given.casefold()
    match = [n for n in named if wanted in (n["name"].casefold(), n["dn"].casefold())]
    if len(match) != 1:
        fail(USAGE, f"{len(match)} groups or OUs named “{given}” there: {listed_by}.")
    return match[0]
