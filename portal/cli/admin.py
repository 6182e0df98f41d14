"""roomctl category …, addin …, request …, audit …, operation … and token …: categories
with their scope, Creators and chat options, the add-in register and rooms' add-ins, room
requests asked and decided, the audit log queried and exported, operations listed,
waited on, retried and undone, tokens listed and revoked."""

from __future__ import annotations

import sys
from typing import Any

import click
import httpx

from .core import (
    FAILED,
    SOME_FAILED,
    UNAVAILABLE,
    USAGE,
    asked_first,
    category_id,
    checked,
    fail,
    named_one,
    portal,
    principal_dn,
    said_done,
    show,
    table,
)
from .rooms import PRIVACY, WAIT_SECONDS, dry


def _changed(given: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in given.items() if value is not None}


@click.group()
def category() -> None:
    """Categories: list, show, make, change, scope (people, groups and OUs), Creators,
    delete."""


@category.command("list")
@click.option("--json", "as_json", is_flag=True)
def category_list(as_json: bool) -> None:
    """The categories you may see."""
    show(portal().call("GET", "/categories"), as_json, ["name", "room_count", "id"])


@category.command("get")
@click.argument("name_or_id")
@click.option("--json", "as_json", is_flag=True)
def category_get(name_or_id: str, as_json: bool) -> None:
    """One category, with its scope, Creators and rooms."""
    api = portal()
    show(api.call("GET", f"/categories/{category_id(api, name_or_id)}"), as_json, [])


@category.command("create")
@click.option("--name", required=True)
@click.option("--description", default="")
@click.option("--invitations/--no-invitations", default=True, help="Rooms may invite people.")
@click.option("--chat-history/--no-chat-history", default=True, help="Later joiners see before.")
@click.option("--file-uploads/--no-file-uploads", default=True, help="Files may be sent.")
@click.option("--keep-days", type=click.IntRange(0), default=0, help="Keep messages (0: ever).")
@click.option("--managers-read/--no-managers-read", default=False, help="Managers read history.")
@click.option("--idempotency-key", default="")
@click.option("--what-if", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def category_create(
    name: str,
    description: str,
    invitations: bool,
    chat_history: bool,
    file_uploads: bool,
    keep_days: int,
    managers_read: bool,
    idempotency_key: str,
    what_if: bool,
    as_json: bool,
) -> None:
    """Make a category (portal administrators); its ID is printed."""
    body = {
        "name": name,
        "description": description,
        "invitations_allowed": invitations,
        "chat_history": chat_history,
        "file_uploads": file_uploads,
        "keep_days": keep_days,
        "managers_read": managers_read,
    }
    portal().make("/categories", body, key=idempotency_key, what_if=what_if, as_json=as_json)


@category.command("set")
@click.argument("name_or_id")
@click.option("--name")
@click.option("--description")
@click.option("--invitations/--no-invitations", default=None)
@click.option("--what-if", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def category_set(
    name_or_id: str,
    name: str | None,
    description: str | None,
    invitations: bool | None,
    what_if: bool,
    as_json: bool,
) -> None:
    """Change what is given of a category's name, description and invitations."""
    change = _changed(
        {"name": name, "description": description, "invitations_allowed": invitations}
    )
    if not change:
        fail(USAGE, "Say what to change (see roomctl category set --help).")
    api = portal()
    path = f"/categories/{category_id(api, name_or_id)}"
    show(api.call("PATCH", path, json=change, params=dry(what_if)), as_json, [])


@category.command("options")
@click.argument("name_or_id")
@click.option(
    "--chat-history/--no-chat-history",
    default=None,
    help="People who join a room later see what was said before.",
)
@click.option(
    "--file-uploads/--no-file-uploads",
    default=None,
    help="Files, images, audio and video may be sent in its rooms.",
)
@click.option(
    "--keep-days",
    type=click.IntRange(0),
    default=None,
    help="Days the chat server keeps a message; older ones are deleted (0: for ever).",
)
@click.option(
    "--managers-read/--no-managers-read",
    default=None,
    help="Each room's Managers read its history in the portal.",
)
@click.option("--what-if", is_flag=True, help="List the rooms that would change.")
@click.option("--wait", is_flag=True, help="Wait until every room has them, with progress.")
@click.option("--json", "as_json", is_flag=True)
def category_options(
    name_or_id: str,
    chat_history: bool | None,
    file_uploads: bool | None,
    keep_days: int | None,
    managers_read: bool | None,
    what_if: bool,
    wait: bool,
    as_json: bool,
) -> None:
    """Set a category's chat options (portal administrators): the category at once, then
    each of its rooms, as an operation of the portal's (exit 1 if a room was not changed
    with --wait)."""
    change = _changed(
        {
            "chat_history": chat_history,
            "file_uploads": file_uploads,
            "keep_days": keep_days,
            "managers_read": managers_read,
        }
    )
    if not change:
        fail(
            USAGE,
            "Say what to set: --[no-]chat-history, --[no-]file-uploads, --keep-days, "
            "--[no-]managers-read.",
        )
    api = portal()
    path = f"/categories/{category_id(api, name_or_id)}/options"
    answer = api.call("PUT", path, json=change, params=dry(what_if))
    operation_id = answer.get("operation")
    if wait and operation_id:
        _ended(api.wait(operation_id, timeout=WAIT_SECONDS), as_json)
        return
    if as_json:
        show(answer, True, [])
        return
    count = len(answer["rooms"])
    if what_if:
        click.echo(f"Would change {count} room{'s' if count != 1 else ''}.")
        table([{"room": room} for room in answer["rooms"]], ["room"])
    elif operation_id:
        click.echo(
            f"Set. {count} room{'s' if count != 1 else ''} change in the background: "
            f"roomctl operation wait {operation_id}"
        )
    else:
        click.echo("Set. No room needed a change.")


@category.command("scope")
@click.argument("name_or_id")
@click.option("--add", multiple=True, help="A chat ID to put in the scope (repeatable).")
@click.option("--remove", multiple=True, help="A chat ID to take out of it.")
@click.option("--deny", multiple=True, help="A chat ID to deny.")
@click.option("--undeny", multiple=True, help="A chat ID to allow again.")
@click.option("--what-if", is_flag=True, help="List who would lose which room roles.")
@click.option("--json", "as_json", is_flag=True)
def category_scope(name_or_id: str, what_if: bool, as_json: bool, **people: Any) -> None:
    """Change who is in a category's scope; people who leave it lose their room roles
    (listed first)."""
    change = {key: list(value) for key, value in people.items() if value}
    if not change:
        fail(USAGE, "Name people to --add, --remove, --deny or --undeny.")
    api = portal()
    path = f"/categories/{category_id(api, name_or_id)}/scope"
    answer = api.call("POST", path, json=change, params=dry(what_if))
    if as_json:
        show(answer, True, [])
        return
    rows = [
        {"person": each["person"], "room": room_id, "roles": roles}
        for each in answer["leaving"]
        for room_id, roles in each["roles"].items()
    ]
    done = "Changed." if answer["applied"] else "Would change."
    if not rows:
        click.echo(f"{done} Nobody loses a room role.")
        return
    click.echo(f"{done} Losing room roles:")
    table(rows, ["person", "room", "roles"])


@category.command("creators")
@click.argument("name_or_id")
@click.argument("people", nargs=-1, required=True)
@click.option("--what-if", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def category_creators(
    name_or_id: str, people: tuple[str, ...], what_if: bool, as_json: bool
) -> None:
    """Make exactly these people (in scope) the category's Creators."""
    api = portal()
    path = f"/categories/{category_id(api, name_or_id)}/creators"
    answer = api.call("PUT", path, json={"creators": list(people)}, params=dry(what_if))
    show(answer if as_json else {"creators": answer["creators"]}, as_json, [])


def _directory_change(answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        show(answer, True, [])
        return
    said = [
        f"{len(answer[key])} {what}: {', '.join(answer[key])}"
        for key, what in (
            ("added", "into the scope"),
            ("removed", "out of the scope, with their room roles"),
            ("denied", "denied"),
            ("undenied", "no longer denied"),
            ("creators", "made Creators"),
            ("uncreated", "no longer Creators"),
            ("failed", "refused by the chat server, tried again later"),
        )
        if answer[key]
    ]
    said_done(answer["applied"], said)


@category.command("directory")
@click.argument("name_or_id")
@click.option("--json", "as_json", is_flag=True)
def category_directory(name_or_id: str, as_json: bool) -> None:
    """The groups and OUs of the directory in a category's scope."""
    api = portal()
    found = api.call("GET", f"/categories/{category_id(api, name_or_id)}/directory")
    show(found, as_json, ["id", "kind", "name", "standing", "people", "dn"])


@category.command("directory-find")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True)
def category_directory_find(text: str, as_json: bool) -> None:
    """Groups and OUs of the directory whose name contains TEXT."""
    found = portal().call("GET", "/categories/directory/principals", params={"q": text})
    show(found, as_json, ["label", "dn"])


@category.command("directory-add")
@click.argument("name_or_id")
@click.argument("group")
@click.option("--deny", is_flag=True, help="Deny them the category instead.")
@click.option("--creators", is_flag=True, help="Make those in scope its Creators instead.")
@click.option("--this-ou-only", is_flag=True, help="An OU without the OUs under it.")
@click.option("--what-if", is_flag=True, help="Say who would come in (or be denied).")
@click.option("--json", "as_json", is_flag=True)
def category_directory_add(
    name_or_id: str,
    group: str,
    deny: bool,
    creators: bool,
    this_ou_only: bool,
    what_if: bool,
    as_json: bool,
) -> None:
    """Put a group or an OU (its name or DN) in a category's scope, kept in step with
    the directory; --deny denies everyone it stands for, --creators makes its people in
    scope the category's Creators."""
    api = portal()
    path = f"/categories/{category_id(api, name_or_id)}/directory"
    if deny and creators:
        fail(USAGE, "Either --deny or --creators.")
    standing = "denied" if deny else "creator" if creators else "allowed"
    body = {
        "dn": principal_dn(api, group, "/categories/directory/principals"),
        "standing": standing,
        "subtree": not this_ou_only,
    }
    _directory_change(api.call("POST", path, json=body, params=dry(what_if)), as_json)


@category.command("directory-remove")
@click.argument("name_or_id")
@click.argument("group")
@click.option("--what-if", is_flag=True, help="Say who would leave the scope.")
@click.option("--yes", is_flag=True, help="Do not ask (scripts).")
@click.option("--json", "as_json", is_flag=True)
def category_directory_remove(
    name_or_id: str, group: str, what_if: bool, yes: bool, as_json: bool
) -> None:
    """Take a group or an OU (its name or DN) out of a category's scope: the people only
    it held leave the scope and their room roles."""
    api = portal()
    category = category_id(api, name_or_id)
    listed = api.call("GET", f"/categories/{category}/directory")
    named = named_one(listed, group, listed_by="roomctl category directory")
    asked_first(
        what_if, yes, "People may leave the scope", f"Take {named['name']} out of the scope?"
    )
    path = f"/categories/{category}/directory/{named['id']}"
    _directory_change(api.call("DELETE", path, params=dry(what_if)), as_json)


@category.command("delete")
@click.argument("name_or_id")
@click.option("--what-if", is_flag=True)
@click.option("--yes", is_flag=True, help="Do not ask (scripts).")
def category_delete(name_or_id: str, what_if: bool, yes: bool) -> None:
    """Delete a category that has no rooms (portal administrators)."""
    asked_first(what_if, yes, "Deleting cannot be undone", f"Delete the category {name_or_id}?")
    api = portal()
    answer = api.call("DELETE", f"/categories/{category_id(api, name_or_id)}", params=dry(what_if))
    click.echo(f"would delete “{answer['name']}”" if what_if else "deleted")


@click.group()
def request() -> None:
    """Room requests: yours, the queue you decide, ask, approve, decline."""


REQUEST_COLUMNS = ["id", "status", "name", "category_name", "requester", "room_id"]


@request.command("list")
@click.option("--json", "as_json", is_flag=True)
def request_list(as_json: bool) -> None:
    """Your requests, newest first."""
    show(portal().call("GET", "/requests"), as_json, REQUEST_COLUMNS)


@request.command("queue")
@click.option("--json", "as_json", is_flag=True)
def request_queue(as_json: bool) -> None:
    """Pending requests you may decide, oldest first."""
    show(portal().call("GET", "/requests/queue"), as_json, REQUEST_COLUMNS)


@request.command("submit")
@click.option("--name", required=True)
@click.option("--category", required=True, help="A category's name or ID.")
@click.option("--justification", required=True, help="Why the room is needed.")
@click.option("--description", default="")
@click.option("--privacy", type=PRIVACY, default="closed")
@click.option("--auditorium", is_flag=True)
@click.option("--invitations", type=click.Choice(["inherit", "off"]), default="inherit")
@click.option("--idempotency-key", default="")
@click.option("--what-if", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def request_submit(idempotency_key: str, what_if: bool, as_json: bool, **asked: Any) -> None:
    """Ask for a room in a category; its request number is printed."""
    api = portal()
    asked["category"] = category_id(api, asked["category"])
    api.make("/requests", asked, key=idempotency_key, what_if=what_if, as_json=as_json)


@request.command("approve")
@click.argument("number", type=int)
@click.option("--name")
@click.option("--description")
@click.option("--privacy", type=PRIVACY)
@click.option("--auditorium/--no-auditorium", default=None)
@click.option("--invitations", type=click.Choice(["inherit", "off"]))
@click.option("--what-if", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def request_approve(number: int, what_if: bool, as_json: bool, **adjust: Any) -> None:
    """Approve a request, with any changes, and make its room (printed)."""
    answer = portal().call(
        "POST", f"/requests/{number}/approve", json=_changed(adjust), params=dry(what_if)
    )
    if as_json or what_if:
        show(answer, as_json, [])
    else:
        click.echo(answer["room_id"])


@request.command("decline")
@click.argument("number", type=int)
@click.option("--reason", required=True, help="Told to the requester.")
@click.option("--what-if", is_flag=True)
def request_decline(number: int, reason: str, what_if: bool) -> None:
    """Decline a request, saying why."""
    portal().call(
        "POST", f"/requests/{number}/decline", json={"reason": reason}, params=dry(what_if)
    )
    click.echo("would decline" if what_if else "declined")


def audit_filters(command: Any) -> Any:
    """The audit page's filters, as options."""
    for name, text in reversed(
        [
            ("actor", "A username, chat ID or display name."),
            ("action", "An action (room.knock) or its area (room.)."),
            ("target", "A name, part of one, or an ID."),
            ("outcome", "succeeded, denied, failed, partial."),
            ("from", "From this day (YYYY-MM-DD)."),
            ("to", "To this day (YYYY-MM-DD)."),
            ("q", "Words anywhere in the entry."),
        ]
    ):
        command = click.option(f"--{name}", f"filter_{name}", default="", help=text)(command)
    return command


def _query(filters: dict[str, str]) -> dict[str, str]:
    names = {"from": "date_from", "to": "date_to"}
    return {
        names.get(key.removeprefix("filter_"), key.removeprefix("filter_")): value
        for key, value in filters.items()
        if value
    }


@click.group()
def audit() -> None:
    """The audit log: query it, export it (auditors and portal administrators)."""


@audit.command("list")
@audit_filters
@click.option("--limit", default=50, help="At most this many entries, newest first.")
@click.option("--json", "as_json", is_flag=True)
def audit_list(limit: int, as_json: bool, **filters: str) -> None:
    """Entries matching the filters, newest first."""
    page = portal().call("GET", "/audit", params=_query(filters) | {"limit": limit})
    show(
        page["items"],
        as_json,
        ["created_at", "actor", "action", "outcome", "target_label", "via"],
    )


@audit.command("export")
@audit_filters
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@click.option("--output", "-o", type=click.File("wb"), default="-", help="A file (`-`: out).")
def audit_export(fmt: str, output: Any, **filters: str) -> None:
    """The filtered log, oldest first, streamed as JSON Lines or CSV; the export is
    itself audited."""
    query = _query(filters) | {"format": fmt}
    try:
        with portal().http.stream("GET", "/audit/export", params=query) as answer:
            for chunk in checked(answer).iter_bytes():
                output.write(chunk)
    except httpx.HTTPError as exc:
        fail(UNAVAILABLE, f"The portal cannot be reached: {exc}")


@click.group()
def operation() -> None:
    """Operations: list them, wait for one, retry or undo an unfinished one."""


OPERATION_COLUMNS = ["id", "label", "status", "done", "total", "target_label", "error"]


@operation.command("list")
@click.option("--everyone", is_flag=True, help="Everyone's (portal administrators).")
@click.option(
    "--status", type=click.Choice(["running", "succeeded", "failed", "undone", "unfinished"])
)
@click.option("--json", "as_json", is_flag=True)
def operation_list(everyone: bool, status: str | None, as_json: bool) -> None:
    """Your operations (or everyone's), newest first."""
    found = list(
        portal().pages("/operations", everyone=str(everyone).lower(), status=status, limit=200)
    )
    show(found, as_json, OPERATION_COLUMNS)


def _ended(found: dict[str, Any], as_json: bool) -> None:
    """An operation and its results; exit 1 unless it succeeded."""
    if as_json:
        show(found, True, [])
    else:
        summary = {k: v for k, v in found.items() if k not in ("results", "change", "before")}
        show(summary, False, [])
        if found["results"]:
            table(found["results"], ["room", "result", "detail"])
    if found["status"] not in ("succeeded", "undone") or any(
        r.get("result") in FAILED for r in found["results"]
    ):
        sys.exit(SOME_FAILED)


@operation.command("get")
@click.argument("operation_id")
@click.option("--json", "as_json", is_flag=True)
def operation_get(operation_id: str, as_json: bool) -> None:
    """One operation with every result (exit 1 unless it succeeded)."""
    _ended(portal().operation(operation_id), as_json)


@operation.command("wait")
@click.argument("operation_id")
@click.option("--timeout", default=WAIT_SECONDS, help="Give up waiting after this many seconds.")
@click.option("--json", "as_json", is_flag=True)
def operation_wait(operation_id: str, timeout: int, as_json: bool) -> None:
    """Wait until an operation ends, with its progress; exit 0 if it succeeded, 1 if it
    ended otherwise or is still running at --timeout."""
    _ended(portal().wait(operation_id, timeout=timeout), as_json)


@operation.command("retry")
@click.argument("operation_id")
@click.option("--json", "as_json", is_flag=True)
def operation_retry(operation_id: str, as_json: bool) -> None:
    """Finish an unfinished operation (portal administrators). A change to many rooms
    goes back to the portal for the rooms not changed: wait for it."""
    found = portal().call("POST", f"/operations/{operation_id}/retry")
    if found["status"] != "running":
        _ended(found, as_json)
    elif as_json:
        show(found, True, [])
    else:
        click.echo(f"running again: roomctl operation wait {operation_id}")


@operation.command("undo")
@click.argument("operation_id")
@click.option("--json", "as_json", is_flag=True)
def operation_undo(operation_id: str, as_json: bool) -> None:
    """Put an unfinished room change back as it was (portal administrators)."""
    _ended(portal().call("POST", f"/operations/{operation_id}/undo"), as_json)


@click.group()
def token() -> None:
    """Personal access tokens: yours (or everyone's, administrators), revoke one."""


@token.command("list")
@click.option("--everyone", is_flag=True, help="Everyone's (portal administrators).")
@click.option("--json", "as_json", is_flag=True)
def token_list(everyone: bool, as_json: bool) -> None:
    """Tokens, with when each was last used."""
    found = portal().call("GET", "/tokens", params={"everyone": str(everyone).lower()})
    show(found, as_json, ["id", "name", "owner", "scope", "expires_at", "last_used_at"])


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token (yours, or anyone's for administrators): it stops working at once."""
    revoked = portal().call("DELETE", f"/tokens/{token_id}")
    click.echo(f"revoked “{revoked['name']}”")


@click.group()
def addin() -> None:
    """Add-ins: the register (administrators keep it), and attaching one to a room."""


@addin.command("list")
@click.option("--json", "as_json", is_flag=True)
def addin_list(as_json: bool) -> None:
    """The register: each add-in, its address, and how many rooms show it."""
    show(portal().call("GET", "/addins"), as_json, ["id", "name", "url", "rooms"])


@addin.command("register")
@click.option("--name", required=True)
@click.option("--url", required=True, help="https://… (the page shown beside the chat).")
@click.option(
    "--category", "categories", multiple=True, required=True, help="Repeatable: name or ID."
)
@click.option("--json", "as_json", is_flag=True)
def addin_register(name: str, url: str, categories: tuple[str, ...], as_json: bool) -> None:
    """Put an add-in in the register for the rooms of these categories; its ID is
    printed."""
    api = portal()
    body = {"name": name, "url": url, "category_ids": [category_id(api, c) for c in categories]}
    made = api.call("POST", "/addins", json=body)
    if as_json:
        show(made, True, [])
    else:
        click.echo(made["id"])


@addin.command("remove")
@click.argument("addin_id", type=int)
@click.option("--what-if", is_flag=True, help="List the rooms it would be taken out of.")
@click.option("--yes", is_flag=True, help="Do not ask (scripts).")
@click.option("--wait", is_flag=True, help="Wait until every room is done, with progress.")
def addin_remove(addin_id: int, what_if: bool, yes: bool, wait: bool) -> None:
    """Take an add-in out of the register and out of every room showing it."""
    asked_first(
        what_if,
        yes,
        "Removing cannot be undone",
        f"Remove the add-in {addin_id} from the register and its rooms?",
    )
    api = portal()
    answer = api.call("DELETE", f"/addins/{addin_id}", params=dry(what_if))
    if answer is None:
        click.echo("removed; no room showed it")
        return
    count = len(answer["rooms"])
    if what_if:
        click.echo(f"Would take it out of {count} room{'s' if count != 1 else ''}.")
        table([{"room": room} for room in answer["rooms"]], ["room"])
    elif wait:
        _ended(api.wait(answer["operation"], timeout=WAIT_SECONDS), False)
    else:
        click.echo(
            f"Removed. {count} room{'s' if count != 1 else ''} change in the background: "
            f"roomctl operation wait {answer['operation']}"
        )


@addin.command("attach")
@click.argument("room")
@click.argument("addin_id", type=int)
def addin_attach(room: str, addin_id: int) -> None:
    """Show an add-in in a room (its Managers)."""
    after = portal().call("PUT", f"/addins/{addin_id}/rooms/{room}")
    click.echo(f"attached; the room shows: {', '.join(after['add_ins']) or 'none'}")


@addin.command("detach")
@click.argument("room")
@click.argument("addin_id", type=int)
def addin_detach(room: str, addin_id: int) -> None:
    """Take an add-in out of a room (its Managers)."""
    after = portal().call("DELETE", f"/addins/{addin_id}/rooms/{room}")
    click.echo(f"taken out; the room shows: {', '.join(after['add_ins']) or 'none'}")
