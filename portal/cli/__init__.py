"""roomctl: the portal's API from a shell, as the Persistent Chat cmdlets were.

    roomctl room list --category Engineering --json
    roomctl room create --name "Release train" --category Engineering --privacy open
    roomctl room set ROOM --privacy closed --what-if
    roomctl role add ROOM --role member --from-file people.txt
    roomctl room list --category IT --ids | roomctl room set - --disabled

The portal's address and a personal access token come from ROOMCTL_URL and ROOMCTL_TOKEN,
or from ~/.config/roomctl.toml (`url = "…"`, `token = "…"`). Tables for people, `--json`
for scripts. Exit codes: 0 done; 1 some room or person was refused or failed (the rest
were done); 2 bad usage; 3 the token was refused; 4 not found; 5 the portal or the chat
server could not be reached or failed.

Installed as `roomctl` by `pip install .` (it needs httpx and click only).
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx

SOME_FAILED, REFUSED, NOT_FOUND, UNAVAILABLE = 1, 3, 4, 5
CONFIG = Path("~/.config/roomctl.toml")


class Portal:
    """The API of one portal, with one token."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            fail(UNAVAILABLE, f"The portal cannot be reached: {exc}")
        if answer.is_success:
            return answer.json()
        try:
            detail = answer.json().get("detail") or answer.text
        except ValueError:
            detail = answer.text
        code = {401: REFUSED, 403: REFUSED, 404: NOT_FOUND}.get(answer.status_code)
        if code is None:
            code = UNAVAILABLE if answer.status_code >= 500 else SOME_FAILED
        fail(code, f"{answer.status_code}: {detail}")

    def rooms(self, **filters: Any) -> list[dict[str, Any]]:
        """Every page of the room list."""
        found, cursor = [], ""
        while True:
            query = {k: v for k, v in filters.items() if v not in (None, "")} | {"limit": 200}
            page = self.call("GET", "/rooms", params=query | ({"cursor": cursor} if cursor else {}))
            found += page["items"]
            cursor = page.get("next_cursor") or ""
            if not cursor:
                return found


def fail(code: int, message: str) -> NoReturn:
    click.echo(f"roomctl: {message}", err=True)
    sys.exit(code)


def portal() -> Portal:
    url, token = os.environ.get("ROOMCTL_URL", ""), os.environ.get("ROOMCTL_TOKEN", "")
    config = CONFIG.expanduser()
    if (not url or not token) and config.is_file():
        settings = tomllib.loads(config.read_text())
        url, token = url or settings.get("url", ""), token or settings.get("token", "")
    if not url or not token:
        fail(2, f"Set ROOMCTL_URL and ROOMCTL_TOKEN, or url and token in {CONFIG}.")
    return Portal(url, token)


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain table, one row per line, columns as wide as their widest value."""
    if not rows:
        click.echo("(none)")
        return
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def category_id(api: Portal, given: str) -> str:
    """A category's ID from its ID or its name (any letter case)."""
    if not given or given.startswith("!"):
        return given
    for category in api.call("GET", "/categories"):
        if category["name"].casefold() == given.casefold():
            return str(category["id"])
    fail(NOT_FOUND, f"There is no category called “{given}” that you may see.")


def room_ids(given: str) -> list[str]:
    """One room, or (for `-`) the room IDs piped in, one per line."""
    if given != "-":
        return [given]
    return [line.strip() for line in sys.stdin if line.strip()]


@click.group()
def main() -> None:
    """The room portal from a shell."""


@main.group()
def room() -> None:
    """List, show and change rooms."""


@room.command("list")
@click.option("--category", default="", help="A category's name or ID.")
@click.option("--privacy", type=click.Choice(["open", "closed", "secret"]))
@click.option("--disabled/--enabled", default=None, help="Only disabled, or only enabled, rooms.")
@click.option("--person", default="", help="Rooms where this chat ID holds a role.")
@click.option("--role", type=click.Choice(["member", "manager", "presenter"]))
@click.option("--json", "as_json", is_flag=True, help="JSON, for scripts.")
@click.option("--ids", is_flag=True, help="Room IDs only, one per line (to pipe on).")
def room_list(
    category: str,
    privacy: str | None,
    disabled: bool | None,
    person: str,
    role: str | None,
    as_json: bool,
    ids: bool,
) -> None:
    """The rooms you may find, by name."""
    api = portal()
    found = api.rooms(
        category=category_id(api, category),
        privacy=privacy,
        disabled=None if disabled is None else str(disabled).lower(),
        person=person,
        role=role,
    )
    if ids:
        for each in found:
            click.echo(each["id"])
    elif as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
    else:
        table(found, ["name", "privacy", "auditorium", "disabled", "id"])


@room.command("get")
@click.argument("room_id")
@click.option("--json", "as_json", is_flag=True)
def room_get(room_id: str, as_json: bool) -> None:
    """One room, with its Managers, Presenters and Members."""
    found = portal().call("GET", f"/rooms/{room_id}")
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    for key, value in found.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        click.echo(f"{key:12} {shown}")


@room.command("create")
@click.option("--name", required=True)
@click.option("--category", required=True, help="A category's name or ID.")
@click.option("--description", default="")
@click.option("--privacy", type=click.Choice(["open", "closed", "secret"]), default="closed")
@click.option("--auditorium", is_flag=True)
@click.option("--invitations", type=click.Choice(["inherit", "off"]), default="inherit")
@click.option(
    "--idempotency-key",
    default="",
    help="Sent again (after a lost answer), it returns the room made the first time.",
)
@click.option("--what-if", is_flag=True, help="Check the settings; make nothing.")
@click.option("--json", "as_json", is_flag=True)
def room_create(idempotency_key: str, what_if: bool, as_json: bool, **settings: Any) -> None:
    """Create a room in a category where you create rooms."""
    api = portal()
    settings["category"] = category_id(api, settings["category"])
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    made = api.call(
        "POST",
        "/rooms",
        json=settings,
        headers=headers,
        params={"dry_run": str(what_if).lower()},
    )
    if as_json:
        click.echo(json.dumps(made, indent=2, ensure_ascii=False))
    elif what_if:
        click.echo(f"would create “{made['name']}” ({made['privacy']})")
    else:
        click.echo(made["id"])


@room.command("set")
@click.argument("room")
@click.option("--name")
@click.option("--description")
@click.option("--privacy", type=click.Choice(["open", "closed", "secret"]))
@click.option("--auditorium/--no-auditorium", default=None)
@click.option("--invitations", type=click.Choice(["inherit", "off"]))
@click.option("--disabled/--enabled", default=None)
@click.option("--what-if", is_flag=True, help="Say what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True)
def room_set(room: str, what_if: bool, as_json: bool, **settings: Any) -> None:
    """Change a room, or every room whose ID is piped in (ROOM is `-`)."""
    change = {key: value for key, value in settings.items() if value is not None}
    if not change:
        fail(2, "Say what to change (see roomctl room set --help).")
    api = portal()
    results: list[dict[str, Any]] = []
    failed = 0
    for room_id in room_ids(room):
        try:
            answer = api.call(
                "PATCH", f"/rooms/{room_id}", json=change, params={"dry_run": str(what_if).lower()}
            )
        except SystemExit as stopped:  # one room's refusal is its result; go on
            failed += 1
            results.append({"room": room_id, "result": "not changed", "code": stopped.code})
            continue
        changed = {k: v for k, v in answer["after"].items() if answer["before"].get(k) != v}
        results.append(
            {
                "room": room_id,
                "result": "would change" if what_if else "changed" if changed else "unchanged",
                "changes": changed,
                "before": answer["before"],
                "presenters_losing": answer["presenters_losing"],
            }
        )
    if as_json:
        click.echo(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        for each in results:
            detail = ", ".join(f"{k}: {v}" for k, v in each.get("changes", {}).items())
            click.echo(f"{each['room']}  {each['result']}{'  ' + detail if detail else ''}")
    if failed:
        sys.exit(SOME_FAILED if failed < len(results) else results[-1]["code"])


@main.group()
def role() -> None:
    """Give and take Member, Manager and Presenter."""


def _people(given: tuple[str, ...], from_file: str) -> list[str]:
    people = list(given)
    if from_file:
        text = sys.stdin.read() if from_file == "-" else Path(from_file).read_text()
        people += [line.strip() for line in text.splitlines() if line.strip()]
    if not people:
        fail(2, "Name people, or give --from-file.")
    return people


def _role_change(
    room_id: str, role_name: str, verb: str, people: list[str], what_if: bool, as_json: bool
) -> None:
    answer = portal().call(
        "POST",
        f"/rooms/{room_id}/roles/{role_name}",
        json={verb: people},
        params={"dry_run": str(what_if).lower()},
    )
    if as_json:
        click.echo(json.dumps(answer["results"], indent=2, ensure_ascii=False))
    else:
        table(answer["results"], ["person", "result", "detail"])
    if any(r["result"] in ("refused", "failed") for r in answer["results"]):
        sys.exit(SOME_FAILED)


ROLE = click.Choice(["member", "manager", "presenter"])


@role.command("add")
@click.argument("room_id")
@click.argument("people", nargs=-1)
@click.option("--role", "role_name", type=ROLE, required=True)
@click.option("--from-file", default="", help="Chat IDs, one per line (`-`: standard input).")
@click.option("--what-if", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def role_add(
    room_id: str,
    people: tuple[str, ...],
    role_name: str,
    from_file: str,
    what_if: bool,
    as_json: bool,
) -> None:
    """Give people a role in a room; a result per person."""
    _role_change(room_id, role_name, "add", _people(people, from_file), what_if, as_json)


@role.command("remove")
@click.argument("room_id")
@click.argument("people", nargs=-1)
@click.option("--role", "role_name", type=ROLE, required=True)
@click.option("--from-file", default="")
@click.option("--what-if", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def role_remove(
    room_id: str,
    people: tuple[str, ...],
    role_name: str,
    from_file: str,
    what_if: bool,
    as_json: bool,
) -> None:
    """Take a role from people in a room; a result per person."""
    _role_change(room_id, role_name, "remove", _people(people, from_file), what_if, as_json)
