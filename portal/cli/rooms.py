"""roomctl room … and roomctl role …: rooms listed, shown, made, changed (one, a pipe of
them, or thousands in the background), moved and deleted; roles given and taken."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import httpx

from .core import (
    FAILED,
    SOME_FAILED,
    UNAVAILABLE,
    USAGE,
    Portal,
    asked_first,
    category_id,
    checked,
    each_room,
    fail,
    named_one,
    portal,
    principal_dn,
    room_ids,
    said_done,
    show,
    table,
)

PRIVACY = click.Choice(["open", "closed", "secret"])
ROLE = click.Choice(["member", "manager", "presenter"])
WAIT_SECONDS = 3600


def dry(what_if: bool) -> dict[str, str]:
    return {"dry_run": str(what_if).lower()}


@click.group()
def room() -> None:
    """List, show, make, change, move and delete rooms."""


@room.command("list")
@click.option("--category", default="", help="A category's name or ID.")
@click.option("--privacy", type=PRIVACY)
@click.option("--disabled/--enabled", default=None, help="Only disabled, or only enabled, rooms.")
@click.option("--person", default="", help="Rooms where this chat ID holds a role.")
@click.option("--role", type=ROLE)
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
    found = list(
        api.pages(
            "/rooms",
            category=category_id(api, category),
            privacy=privacy,
            disabled=None if disabled is None else str(disabled).lower(),
            person=person,
            role=role,
            limit=200,
        )
    )
    if ids:
        for each in found:
            click.echo(each["id"])
    else:
        show(found, as_json, ["name", "privacy", "auditorium", "disabled", "id"])


@room.command("get")
@click.argument("room_id")
@click.option("--json", "as_json", is_flag=True)
def room_get(room_id: str, as_json: bool) -> None:
    """One room, with its Managers, Presenters and Members."""
    show(portal().call("GET", f"/rooms/{room_id}"), as_json, [])


@room.command("create")
@click.option("--name", required=True)
@click.option("--category", required=True, help="A category's name or ID.")
@click.option("--description", default="")
@click.option("--privacy", type=PRIVACY, default="closed")
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
    made = api.call("POST", "/rooms", json=settings, headers=headers, params=dry(what_if))
    if as_json:
        show(made, True, [])
    elif what_if:
        click.echo(f"would create “{made['name']}” ({made['privacy']})")
    else:
        click.echo(made["id"])


def _room_lines(as_json: bool) -> Any:
    """How a result per room is shown: JSON, or one line per room with what changed (or
    why not) and the Presenters who lose the role."""

    def shown(results: list[dict[str, Any]]) -> None:
        if as_json:
            show(results, True, [])
            return
        for each in results:
            detail = ", ".join(f"{k}: {v}" for k, v in each.get("changes", {}).items())
            detail = detail or each.get("detail", "")
            if each.get("presenters_losing"):
                detail += f"; Presenters losing the role: {', '.join(each['presenters_losing'])}"
            click.echo(f"{each['room']}  {each['result']}{'  ' + detail if detail else ''}")

    return shown


@room.command("set")
@click.argument("room", required=False, default="")
@click.option("--name")
@click.option("--description")
@click.option("--privacy", type=PRIVACY)
@click.option("--auditorium/--no-auditorium", default=None)
@click.option("--invitations", type=click.Choice(["inherit", "off"]))
@click.option("--disabled/--enabled", default=None)
@click.option(
    "--in-category",
    default="",
    help="Instead of ROOM: every room of this category (its name or ID) you may find; the "
    "portal chooses them, as one operation. With --now-privacy, --named: those only.",
)
@click.option("--now-privacy", type=PRIVACY, help="With --in-category: rooms of this privacy.")
@click.option("--named", default="", help="With --in-category: rooms whose name contains this.")
@click.option("--what-if", is_flag=True, help="Say what would change; change nothing.")
@click.option(
    "--background",
    is_flag=True,
    help="Up to 5,000 rooms as one operation run by the portal, with progress.",
)
@click.option("--timeout", default=WAIT_SECONDS, help="Seconds to wait for a background run.")
@click.option("--json", "as_json", is_flag=True)
def room_set(
    room: str,
    in_category: str,
    now_privacy: str | None,
    named: str,
    what_if: bool,
    background: bool,
    timeout: int,
    as_json: bool,
    **settings: Any,
) -> None:
    """Change a room, every room whose ID is piped in (ROOM is `-`), or every room the
    portal finds by --in-category (and --now-privacy, --named)."""
    change = {key: value for key, value in settings.items() if value is not None}
    if not change:
        fail(USAGE, "Say what to change (see roomctl room set --help).")
    if bool(room) == bool(in_category):
        fail(USAGE, "Name the rooms: ROOM, `-` for piped room IDs, or --in-category.")
    if not in_category and (now_privacy or named):
        fail(USAGE, "--now-privacy and --named choose rooms with --in-category only.")
    api = portal()
    if in_category:
        where = {"category": category_id(api, in_category), "q": named}
        where |= {"privacy": now_privacy} if now_privacy else {}
        _in_background(api, {"where": where}, change, what_if, timeout, _room_lines(as_json))
        return
    if background:
        rooms = {"rooms": room_ids(room)}
        _in_background(api, rooms, change, what_if, timeout, _room_lines(as_json))
        return

    def one(room_id: str) -> dict[str, Any]:
        answer = api.call("PATCH", f"/rooms/{room_id}", json=change, params=dry(what_if))
        changed = {k: v for k, v in answer["after"].items() if answer["before"].get(k) != v}
        return {
            "room": room_id,
            "result": "would change" if what_if else "changed" if changed else "unchanged",
            "changes": changed,
            "before": answer["before"],
            "presenters_losing": answer["presenters_losing"],
        }

    each_room(room, one, _room_lines(as_json))


def _in_background(
    api: Portal,
    rooms: dict[str, Any],
    change: dict[str, Any],
    what_if: bool,
    timeout: int,
    shown: Any,
) -> None:
    started = api.call(
        "POST",
        "/rooms/bulk",
        json=rooms | {"change": change},
        params=dry(what_if) | {"background": "true"},
    )
    operation = started["operation"]
    click.echo(f"Operation {operation}: {started['total']} rooms", err=True)
    ended = api.wait(operation, timeout=timeout)
    shown(ended["results"])
    if ended["status"] == "running":
        fail(SOME_FAILED, f"Still running after {timeout} s: roomctl operation wait {operation}")
    if any(r["result"] in FAILED for r in ended["results"]):
        sys.exit(SOME_FAILED)


@room.command("move")
@click.argument("room")
@click.option("--category", required=True, help="The category to move to: its name or ID.")
@click.option("--what-if", is_flag=True, help="Say who would lose their roles; move nothing.")
@click.option("--json", "as_json", is_flag=True)
def room_move(room: str, category: str, what_if: bool, as_json: bool) -> None:
    """Move a room (or each room piped in) to another category where you create rooms;
    people outside its scope lose their roles in the room."""
    api = portal()
    target = category_id(api, category)

    def one(room_id: str) -> dict[str, Any]:
        answer = api.call(
            "POST", f"/rooms/{room_id}/move", json={"category": target}, params=dry(what_if)
        )
        losing = ", ".join(f"{p} ({'/'.join(r)})" for p, r in answer["losing"].items())
        return {
            "room": room_id,
            "result": "would move" if what_if else "moved",
            "detail": f"losing their roles: {losing}" if losing else "",
            "losing": answer["losing"],
        }

    each_room(room, one, _room_lines(as_json))


@room.command("delete")
@click.argument("room")
@click.option("--what-if", is_flag=True, help="Show the room that would go; delete nothing.")
@click.option("--yes", is_flag=True, help="Do not ask (scripts).")
@click.option("--json", "as_json", is_flag=True)
def room_delete(room: str, what_if: bool, yes: bool, as_json: bool) -> None:
    """Delete a room (or each room piped in) and its history: portal administrators."""
    api = portal()
    asked_first(
        what_if,
        yes,
        "Deleting cannot be undone",
        f"Delete {room} and its history? This cannot be undone",
        piped=room == "-",
    )

    def one(room_id: str) -> dict[str, Any]:
        answer = api.call("DELETE", f"/rooms/{room_id}", params=dry(what_if))
        named = f"“{answer['name']}”" if answer else ""
        done = "would delete" if what_if else "deleted"
        return {"room": room_id, "result": done, "detail": named}

    each_room(room, one, _room_lines(as_json))


@room.command("history")
@click.argument("room")
@click.option("--sender", default="", help="Only what this person sent (chat ID or name).")
@click.option("--text", default="", help="Only messages containing this (any letter case).")
@click.option("--since", default="", help="From this moment (ISO 8601, with its offset).")
@click.option("--until", default="", help="Before this moment (ISO 8601, with its offset).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, help="At most this many.")
@click.option("--json", "as_json", is_flag=True)
def room_history(
    room: str, sender: str, text: str, since: str, until: str, limit: int, as_json: bool
) -> None:
    """Read a room's messages, newest first (portal administrators; every page read is
    recorded in the audit log)."""
    api = portal()
    query = {
        k: v
        for k, v in {"sender": sender, "text": text, "since": since, "until": until}.items()
        if v
    }
    found: list[dict[str, Any]] = []
    cursor = ""
    while len(found) < limit:
        page = api.call(
            "GET",
            f"/moderation/rooms/{room}/messages",
            params=query | ({"cursor": cursor} if cursor else {}),
        )
        found += page["items"]
        cursor = page["next_cursor"] or ""
        if not cursor:
            break
    show(found[:limit], as_json, ["sent_at", "sender", "kind", "body"])


@room.command("remove-messages")
@click.argument("room")
@click.argument("messages", nargs=-1, required=True)
@click.option("--reason", required=True, help="Shown in their place.")
@click.option("--notice", is_flag=True, help="Say in the room that they were removed.")
def room_remove_messages(room: str, messages: tuple[str, ...], reason: str, notice: bool) -> None:
    """Remove messages of a room by their IDs (from `room history --json`): portal
    administrators. Sending it again finishes one that failed part-way."""
    body = {"messages": list(messages), "reason": reason, "notice": notice}
    answer = portal().call("POST", f"/moderation/rooms/{room}/remove", json=body)
    click.echo(f"{answer['removed']} message(s) removed.")


@room.command("remove-matching")
@click.argument("room", required=False, default="")
@click.option("--category", default="", help="Each room of this category (ID or name).")
@click.option("--person", default="", help="Sent by this person (chat ID or name).")
@click.option("--text", default="", help="Containing this (any letter case).")
@click.option("--since", default="", help="From this moment (ISO 8601, with its offset).")
@click.option("--until", default="", help="Before this moment (ISO 8601, with its offset).")
@click.option("--reason", default="", help="Shown in their place (required to remove).")
@click.option("--notice", is_flag=True, help="Say in each room how many were removed.")
@click.option("--what-if", is_flag=True, help="Count them and show a few; remove nothing.")
@click.option("--yes", is_flag=True, help="Do not ask (scripts).")
@click.option("--wait", is_flag=True, help="Wait until every room is done, with progress.")
def room_remove_matching(
    room: str,
    category: str,
    person: str,
    text: str,
    since: str,
    until: str,
    reason: str,
    notice: bool,
    what_if: bool,
    yes: bool,
    wait: bool,
) -> None:
    """Remove every message of a person, or containing a phrase, in a ROOM or each room
    of a --category (portal administrators), in the background."""
    if bool(room) == bool(category):
        fail(USAGE, "Name a ROOM or give --category.")
    api = portal()
    body = {
        "room": room,
        "category": category_id(api, category) if category else "",
        "sender": person,
        "text": text,
        "reason": reason,
        "notice": notice,
    } | {k: v for k, v in {"since": since, "until": until}.items() if v}
    counted = api.call("POST", "/moderation/removals", params=dry(True), json=body)
    many = f"{counted['messages']}{'+' if counted['more'] else ''}"
    click.echo(f"{many} message(s) match in {counted['rooms']} room(s).")
    table(counted["sample"], ["room", "sender", "body"])
    if what_if or not counted["messages"]:
        return
    if not yes:
        if not sys.stdin.isatty():
            fail(USAGE, "Removing cannot be undone: add --yes (or --what-if to count first).")
        click.confirm(f"Remove {many} message(s)?", abort=True)
    started = api.call("POST", "/moderation/removals", json=body)
    if not wait:
        click.echo(f"Removing in the background: roomctl operation wait {started['operation']}")
        return
    ended = api.wait(started["operation"], timeout=WAIT_SECONDS)
    table(ended["results"], ["name", "removed", "result", "detail"])
    click.echo(f"{ended['change']['removed']} message(s) removed: {ended['status']}.")
    if ended["status"] != "succeeded":
        raise SystemExit(SOME_FAILED)


@room.command("export")
@click.argument("room", required=False, default="")
@click.option(
    "--category",
    default="",
    help="Every room of this category: its ID, or its name if you may list it.",
)
@click.option("--person", default="", help="What this person sent (chat ID or name).")
@click.option("--since", default="", help="From this moment (ISO 8601, with its offset).")
@click.option("--until", default="", help="Before this moment (ISO 8601, with its offset).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "rsmf"]),
    default="jsonl",
    help="JSON Lines, or RSMF 2.0 for review tools (with the files sent).",
)
@click.option("--output", "-o", type=click.File("wb"), default="-", help="A file (`-`: out).")
def room_export(
    room: str, category: str, person: str, since: str, until: str, fmt: str, output: Any
) -> None:
    """A room's (or a category's, or a person's) messages, files and joins and leaves for
    compliance review, streamed as JSON Lines whose last line holds the SHA-256 of the
    lines before it, or as RSMF (administrators and compliance officers; audited)."""
    if bool(room) == bool(category or person):
        fail(USAGE, "Name a ROOM, or give --category and/or --person.")
    query = {k: v for k, v in {"since": since, "until": until, "person": person}.items() if v}
    query["format"] = fmt
    api = portal()
    if category:
        query["category"] = category_id(api, category)
    try:
        path = f"/moderation/rooms/{room}/export" if room else "/moderation/export"
        with api.http.stream("GET", path, params=query) as answer:
            for chunk in checked(answer).iter_bytes():
                output.write(chunk)
    except httpx.HTTPError as exc:
        fail(UNAVAILABLE, f"The portal cannot be reached: {exc}")


@room.command("clear-history")
@click.argument("room")
@click.option(
    "--before",
    required=True,
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]),
    help="Messages sent before this moment (this machine's time zone) go.",
)
@click.option("--what-if", is_flag=True, help="Count the messages that would go; clear nothing.")
@click.option("--yes", is_flag=True, help="Do not ask (scripts).")
@click.option("--json", "as_json", is_flag=True)
def room_clear_history(
    room: str, before: datetime, what_if: bool, yes: bool, as_json: bool
) -> None:
    """Delete the messages sent in a room (or each room piped in) before a moment, for
    everyone, for good: portal administrators."""
    api = portal()
    moment = before.astimezone().isoformat()
    if not (what_if or yes):
        if not sys.stdin.isatty() or room == "-":
            fail(USAGE, "Clearing cannot be undone: add --yes (or --what-if to count first).")
        click.confirm(f"Delete every message sent in {room} before {moment}?", abort=True)

    def one(room_id: str) -> dict[str, Any]:
        name = api.call("GET", f"/rooms/{room_id}")["name"]
        answer = api.call(
            "POST",
            f"/moderation/rooms/{room_id}/clear",
            params=dry(what_if),
            json={"before": moment, "confirm_name": name},
        )
        counted = f"{answer['messages']}{'+' if answer['more'] else ''} message(s)"
        done = "would clear" if what_if else "cleared"
        return {"room": room_id, "result": done, "detail": f"“{name}”: {counted}"}

    each_room(room, one, _room_lines(as_json))


@click.group()
def role() -> None:
    """Give and take Member, Manager and Presenter."""


def _people(given: tuple[str, ...], from_file: str, room: str) -> list[str]:
    people = list(given)
    if from_file == "-" and room == "-":
        fail(USAGE, "Standard input carries the rooms (ROOM `-`): give people in a file.")
    if from_file:
        text = sys.stdin.read() if from_file == "-" else Path(from_file).read_text()
        people += [line.strip() for line in text.splitlines() if line.strip()]
    if not people:
        fail(USAGE, "Name people, or give --from-file.")
    return people


def _role_change(
    room: str,
    role_name: str,
    verb: str,
    given: tuple[str, ...],
    from_file: str,
    what_if: bool,
    as_json: bool,
) -> None:
    people = _people(given, from_file, room)
    api = portal()
    results: list[dict[str, Any]] = []

    def one(room_id: str) -> dict[str, Any]:
        answer = api.call(
            "POST",
            f"/rooms/{room_id}/roles/{role_name}",
            json={verb: people},
            params=dry(what_if),
        )
        if "operation" in answer:  # more people than one request changes: the job runner's
            click.echo(f"Operation {answer['operation']}: {answer['total']} people", err=True)
            answer = api.wait(answer["operation"], timeout=WAIT_SECONDS)
            if answer["status"] == "running":
                fail(SOME_FAILED, f"Still running: roomctl operation wait {answer['id']}")
        results.extend({"room": room_id} | each for each in answer["results"])
        return {"room": room_id, "result": "done"}

    def shown(rooms: list[dict[str, Any]]) -> None:
        """A row per person, and one for each room that was refused or not found."""
        rows = results + [r | {"person": ""} for r in rooms if r["result"] in FAILED]
        if as_json:
            show(rows, True, [])
        else:
            table(rows, ["room", "person", "result", "detail"])

    each_room(room, one, shown)
    if any(r["result"] in FAILED for r in results):
        sys.exit(SOME_FAILED)


def _role_command(verb: str, summary: str) -> None:
    """`role add` and `role remove`: the same arguments, a different change."""

    @role.command(verb, help=f"{summary} in a room (or each room piped in); a result per person.")
    @click.argument("room")
    @click.argument("people", nargs=-1)
    @click.option("--role", "role_name", type=ROLE, required=True)
    @click.option("--from-file", default="", help="Chat IDs, one per line (`-`: standard input).")
    @click.option("--what-if", is_flag=True)
    @click.option("--json", "as_json", is_flag=True)
    def change(
        room: str,
        people: tuple[str, ...],
        role_name: str,
        from_file: str,
        what_if: bool,
        as_json: bool,
    ) -> None:
        _role_change(room, role_name, verb, people, from_file, what_if, as_json)


_role_command("add", "Give people a role")
_role_command("remove", "Take a role from people")


def _named_change(answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        show(answer, True, [])
        return
    said = [
        f"{len(answer[key])} {what}: "
        + ", ".join(f"{each['person']} ({each['role']})" for each in answer[key])
        for key, what in (
            ("added", "given the role"),
            ("removed", "lost the role"),
            ("failed", "refused by the chat server, tried again later"),
        )
        if answer[key]
    ]
    if answer["skipped"]:
        kept = "; ".join(each["why"] for each in answer["skipped"])
        said.append(f"{len(answer['skipped'])} kept out by the rules: {kept}")
    said_done(answer["applied"], said)


@role.command("groups")
@click.argument("room")
@click.option("--json", "as_json", is_flag=True)
def role_groups(room: str, as_json: bool) -> None:
    """The groups and OUs of the directory named for a room's roles."""
    found = portal().call("GET", f"/rooms/{room}/directory")
    show(found, as_json, ["id", "kind", "name", "role", "people", "dn"])


@role.command("group")
@click.argument("room")
@click.argument("group")
@click.option("--role", "role_name", type=ROLE, required=True)
@click.option("--this-ou-only", is_flag=True, help="An OU without the OUs under it.")
@click.option("--what-if", is_flag=True, help="Say who would get the role, and who not.")
@click.option("--json", "as_json", is_flag=True)
def role_group(
    room: str, group: str, role_name: str, this_ou_only: bool, what_if: bool, as_json: bool
) -> None:
    """Make a group or an OU of the directory (its name or DN) a room's Members, Managers
    or Presenters, kept in step with the directory; those the rules keep out are said."""
    api = portal()
    dn = principal_dn(api, group, f"/rooms/{room}/directory/principals")
    body = {"role": role_name, "dn": dn, "subtree": not this_ou_only}
    answer = api.call("POST", f"/rooms/{room}/directory", json=body, params=dry(what_if))
    _named_change(answer, as_json)


@role.command("ungroup")
@click.argument("room")
@click.argument("group")
@click.option("--role", "role_name", type=ROLE, help="Which role, when it is named for several.")
@click.option("--what-if", is_flag=True, help="Say who would lose the role.")
@click.option("--yes", is_flag=True, help="Do not ask (scripts).")
@click.option("--json", "as_json", is_flag=True)
def role_ungroup(
    room: str, group: str, role_name: str | None, what_if: bool, yes: bool, as_json: bool
) -> None:
    """Take a group or an OU (its name or DN) off a room's role: the people only it gave
    the role lose it."""
    api = portal()
    listed = api.call("GET", f"/rooms/{room}/directory")
    listed = [n for n in listed if role_name in (None, n["role"])]
    named = named_one(listed, group, listed_by="roomctl role groups")
    question = f"Take {named['name']} off the {named['role']}s?"
    asked_first(what_if, yes, "People may lose the role", question)
    path = f"/rooms/{room}/directory/{named['id']}"
    _named_change(api.call("DELETE", path, params=dry(what_if)), as_json)
