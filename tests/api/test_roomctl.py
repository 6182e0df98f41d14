"""roomctl end to end: the installed command against a live portal on the real Synapse,
with a token from the environment or from `roomctl login` — rooms, roles, pipes of room
IDs, background changes with their operations, categories, requests, the audit export,
and the exit codes the help documents."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from accounts.tokens import token_create
from portal.models import AuditEntry
from rooms.backend.records import Privacy, Role
from rooms.models import RoomRequest
from rooms.services.rooms import bulk_change_step
from tests.conftest import PASSWORD, unique
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db(transaction=True)
ROOMCTL = Path(sys.executable).parent / "roomctl"


def shell(live_server, user, **env: str):
    """Run a roomctl command line (a shell pipeline) as `user`, with a token of theirs."""
    if not ROOMCTL.exists():
        pytest.fail(f"roomctl is not installed at {ROOMCTL}: run `make test` (pip install .).")
    _, secret = token_create(actor=user, name=f"shell {uuid.uuid4()}", scope="write", days=1)
    env = {
        "ROOMCTL_URL": live_server.url,
        "ROOMCTL_TOKEN": secret,
        "PATH": f"{ROOMCTL.parent}:/usr/bin:/bin",
        "HOME": "/nonexistent",
    } | env

    def run(command: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, shell=True, env=env, input=stdin, capture_output=True, text=True, timeout=120
        )

    def start(command: str) -> subprocess.Popen[str]:
        """The command left running (it waits on the portal), its output read at the end."""
        return subprocess.Popen(
            command, shell=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    run.start = start  # type: ignore[attr-defined]
    return run


@pytest.fixture
def roomctl(live_server, creator):
    return shell(live_server, creator)


@pytest.fixture
def admin_roomctl(live_server):
    return shell(live_server, AdministratorFactory())


def test_list_set_with_what_if_add_from_a_file_and_a_pipe(
    roomctl, chat, make_room, category_world, tmp_path
):
    category = category_world["category"]
    rooms = [make_room(), make_room()]
    listed = roomctl(f"roomctl room list --category '{category.name}' --json")
    assert listed.returncode == 0, listed.stderr
    assert {r["id"] for r in json.loads(listed.stdout)} == {r.id for r in rooms}
    table = roomctl(f"roomctl room list --category '{category.name}'")
    assert "NAME" in table.stdout
    assert rooms[0].name in table.stdout

    made = roomctl(
        f"roomctl room create --name 'Made from a shell {rooms[0].id[1:9]}' "
        f"--category '{category.name}' --privacy open --idempotency-key k1"
    )
    assert made.returncode == 0, made.stderr
    again = roomctl(
        f"roomctl room create --name 'Made from a shell {rooms[0].id[1:9]}' "
        f"--category '{category.name}' --privacy open --idempotency-key k1"
    )
    assert again.stdout == made.stdout  # the same room: asking twice made one
    assert chat.get_room(made.stdout.strip()).settings.privacy is Privacy.OPEN
    rooms.append(chat.get_room(made.stdout.strip()))

    what_if = roomctl(f"roomctl room set '{rooms[0].id}' --privacy open --what-if")
    assert what_if.returncode == 0, what_if.stderr
    assert "would change" in what_if.stdout
    assert "privacy: open" in what_if.stdout
    assert chat.get_room(rooms[0].id).settings.privacy is Privacy.CLOSED

    people = tmp_path / "people.txt"
    people.write_text(f"{category_world['member'].user_id}\n{category_world['outsider'].user_id}\n")
    added = roomctl(f"roomctl role add '{rooms[0].id}' --role member --from-file {people}")
    assert added.returncode == 1  # one of the two was refused: scripts can tell
    assert "done" in added.stdout
    assert "not in the scope" in added.stdout
    assert category_world["member"].user_id in chat.get_room(rooms[0].id).members

    piped = roomctl(
        f"roomctl room list --category '{category.name}' --ids | roomctl room set - --disabled"
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.count("changed") == 3
    assert all(chat.get_room(room.id).disabled for room in rooms)


def test_exit_codes_scripts_can_rely_on(roomctl, chat, make_room, category_world, live_server):
    room, other = make_room(), make_room()
    assert roomctl("roomctl room get '!nowhere:portal.test'").returncode == 4
    assert roomctl(f"roomctl room set '{room.id}'").returncode == 2  # nothing to change
    bad_token = roomctl("ROOMCTL_TOKEN=rp_wrong roomctl room list")
    assert bad_token.returncode == 3
    assert "revoked or expired" in bad_token.stderr
    # A room the token's owner may not change: refused (1), not "token refused" (3).
    member = shell(live_server, portal_user_of(category_world["member"]))
    refused = member(f"roomctl room set '{room.id}' --description Mine")
    assert refused.returncode == 1, refused.stderr
    assert "403" in refused.stderr
    # A pipe: each room its result, the reason in --json, 1 if any was not done —
    # not the last room's code.
    piped = roomctl(
        "roomctl room set - --description Piped --json",
        stdin=f"{room.id}\n!nowhere:portal.test\n{other.id}\n",
    )
    assert piped.returncode == 1, piped.stderr
    results = {r["room"]: r for r in json.loads(piped.stdout)}
    assert results["!nowhere:portal.test"]["result"] == "not found"
    assert results["!nowhere:portal.test"]["detail"]
    assert [results[r.id]["result"] for r in (room, other)] == ["changed", "changed"]
    assert chat.get_room(other.id).settings.description == "Piped"
    empty = roomctl("roomctl room set - --disabled", stdin="")
    assert (empty.returncode, empty.stdout) == (2, "")
    assert "No room IDs" in empty.stderr
    gone = roomctl("ROOMCTL_URL=http://127.0.0.1:9 roomctl room list")
    assert gone.returncode == 5


def portal_user_of(chat_user):
    from tests.conftest import portal_user

    return portal_user(chat_user)


def test_roles_for_piped_rooms_with_the_presenters_a_what_if_would_drop(
    roomctl, chat, make_room, category_world
):
    member = category_world["member"].user_id
    rooms = [make_room(auditorium=True), make_room(auditorium=True)]
    ids = "".join(f"{r.id}\n" for r in rooms)
    refused = roomctl(f"roomctl role add - {member} --role presenter", stdin=ids)
    assert refused.returncode == 1  # a result per room and person; each was refused
    assert refused.stdout.count("must be a Member before becoming a Presenter") == 2
    for role in ("member", "presenter"):
        added = roomctl(f"roomctl role add - {member} --role {role}", stdin=ids)
        assert added.returncode == 0, added.stderr
        assert added.stdout.count("done") == 2
    assert all(member in chat.get_room(r.id).principals(Role.PRESENTER) for r in rooms)
    losing = roomctl(f"roomctl room set '{rooms[1].id}' --no-auditorium --what-if")
    assert losing.returncode == 0, losing.stderr
    assert f"Presenters losing the role: {member}" in losing.stdout
    assert chat.get_room(rooms[1].id).settings.auditorium
    taken = roomctl(f"roomctl role remove - {member} --role presenter", stdin=ids)
    assert taken.returncode == 0, taken.stderr
    assert not any(member in chat.get_room(r.id).principals(Role.PRESENTER) for r in rooms)
    both = roomctl(f"roomctl role add - {member} --role member --from-file -", stdin=ids)
    assert both.returncode == 2  # standard input cannot carry rooms and people at once


def test_a_background_change_is_waited_on_with_progress_and_read_as_an_operation(
    roomctl, admin_roomctl, chat, make_room
):
    rooms = [make_room() for _ in range(3)]
    ids = " ".join(r.id for r in rooms) + " !nowhere:portal.test"
    running = roomctl.start(
        f"printf '%s\\n' {ids} | ROOMCTL_PROGRESS=1 roomctl room set - --disabled --background"
        " --json"
    )
    while running.poll() is None:  # the sync worker's rounds, while roomctl waits
        bulk_change_step(chunk=2)
    out, err = running.communicate()
    assert running.returncode == 1, err  # one room was not there
    assert "of 4 done" in err
    results = {r["room"]: r["result"] for r in json.loads(out)}
    assert [results[r.id] for r in rooms] == ["changed"] * 3
    assert results["!nowhere:portal.test"] == "not found"
    assert all(chat.get_room(r.id).disabled for r in rooms)

    [listed] = json.loads(roomctl("roomctl operation list --status unfinished --json").stdout)
    assert (listed["done"], listed["total"]) == (4, 4)
    got = roomctl(f"roomctl operation get {listed['id']}")
    assert got.returncode == 1  # it did not succeed
    assert "not found" in got.stdout
    assert roomctl(f"roomctl operation retry {listed['id']}").returncode == 1  # admins only
    retried = admin_roomctl(f"roomctl operation retry {listed['id']}")
    assert retried.returncode == 0, retried.stderr
    assert "running again" in retried.stdout
    waiting = admin_roomctl.start(f"roomctl operation wait {listed['id']} --timeout 60")
    while waiting.poll() is None:
        bulk_change_step(chunk=2)
    assert waiting.wait() == 1  # the room is still not there
    assert roomctl("roomctl operation get 00000000-0000-0000-0000-000000000000").returncode == 4


def test_rooms_chosen_by_the_portal_from_filters(roomctl, chat, make_room, category_world):
    """`room set --in-category` sends the filters; the portal chooses the rooms (those the
    person may find) and changes them as one operation."""
    category = category_world["category"]
    word = unique("Batch")
    closed = [make_room(name=f"{word} {n}") for n in range(2)]
    open_room = make_room(name=f"{word} open", privacy=Privacy.OPEN)
    other = make_room()
    # Handed over without waiting (the rooms are changed below, not beside the poll).
    started = roomctl(
        f"roomctl room set --in-category {category.id} --now-privacy closed --named '{word}'"
        " --description 'Chosen by the portal' --timeout 0"
    )
    assert started.returncode == 1, started.stderr  # still running when roomctl stopped waiting
    operation = re.search(r"Operation ([0-9a-f-]{36}): 2 rooms", started.stderr)
    assert operation is not None, started.stderr
    while bulk_change_step(chunk=5):
        pass
    ended = roomctl(f"roomctl operation get {operation[1]} --json")
    assert ended.returncode == 0, ended.stderr
    assert {r["room"] for r in json.loads(ended.stdout)["results"]} == {r.id for r in closed}
    assert [chat.get_room(r.id).settings.description for r in closed] == [
        "Chosen by the portal"
    ] * 2
    assert chat.get_room(open_room.id).settings.description == "Made by a test"
    assert chat.get_room(other.id).settings.description == "Made by a test"
    both = roomctl(f"roomctl room set {other.id} --in-category {category.id} --disabled")
    assert both.returncode == 2
    assert roomctl("roomctl room set --named x --disabled").returncode == 2


def test_categories_requests_and_the_audit_export_from_a_shell(
    roomctl, admin_roomctl, chat, category_world, tmp_path
):
    category = category_world["category"]
    member = category_world["member"].user_id
    shown = json.loads(admin_roomctl(f"roomctl category get '{category.name}' --json").stdout)
    assert shown["id"] == category.id
    what_if = admin_roomctl(f"roomctl category scope '{category.name}' --remove {member} --what-if")
    assert what_if.returncode == 0, what_if.stderr
    assert "Would change" in what_if.stdout
    assert member in chat.get_category(category.id).allowed_members
    renamed = admin_roomctl(f"roomctl category set {category.id} --description 'From a shell'")
    assert renamed.returncode == 0, renamed.stderr
    assert chat.get_category(category.id).description == "From a shell"
    assert chat.get_category(category.id).name == category.name  # only what was given

    asked = roomctl(
        f"roomctl request submit --name 'Asked {uuid.uuid4().hex[:6]}' "
        f"--category '{category.name}' --justification 'For the release'"
    )
    assert asked.returncode == 0, asked.stderr
    number = int(asked.stdout)
    queue = json.loads(admin_roomctl("roomctl request queue --json").stdout)
    assert number in [r["id"] for r in queue]
    made = admin_roomctl(f"roomctl request approve {number} --privacy open")
    assert made.returncode == 0, made.stderr
    assert chat.get_room(made.stdout.strip()).settings.privacy is Privacy.OPEN
    assert RoomRequest.objects.get(pk=number).room_id == made.stdout.strip()
    again = admin_roomctl(f"roomctl request decline {number} --reason Late")
    assert again.returncode == 1  # decided already: refused
    assert roomctl("roomctl request decline 999999 --reason x").returncode == 4

    exported = tmp_path / "requests.csv"
    done = admin_roomctl(f"roomctl audit export --action request. --format csv -o {exported}")
    assert done.returncode == 0, done.stderr
    assert "request.approve" in exported.read_text()
    assert AuditEntry.objects.filter(action="audit.export").exists()
    assert roomctl("roomctl audit export").returncode == 1  # not an auditor: refused
    assert admin_roomctl(f"roomctl category delete {category.id}").returncode == 2  # no --yes
    name = f"From a shell {uuid.uuid4().hex[:6]}"
    looked = admin_roomctl(f"roomctl category create --name '{name}' --what-if")
    assert looked.returncode == 0, looked.stderr
    assert name in looked.stdout
    made = admin_roomctl(f"roomctl category create --name '{name}' --idempotency-key c1")
    assert made.returncode == 0, made.stderr
    assert chat.get_category(made.stdout.strip()).name == name


def test_move_and_delete_with_what_ifs(roomctl, admin_roomctl, chat, make_room, category_world):
    room = make_room()
    other = chat.create_category(name=f"Elsewhere {uuid.uuid4().hex[:6]}", description="")
    chat.add_to_category_scope(other.id, [category_world["creator"].user_id])
    chat.set_category_creators(other.id, [category_world["creator"].user_id])
    looked = roomctl(f"roomctl room move {room.id} --category '{other.name}' --what-if")
    assert looked.returncode == 0, looked.stderr
    assert "would move" in looked.stdout
    assert chat.get_room(room.id).settings.category_id == room.settings.category_id
    moved = roomctl(f"roomctl room move {room.id} --category {other.id}")
    assert moved.returncode == 0, moved.stderr
    assert chat.get_room(room.id).settings.category_id == other.id
    assert roomctl(f"roomctl room delete {room.id} --yes").returncode == 1  # administrators
    assert admin_roomctl(f"roomctl room delete {room.id}").returncode == 2  # asks: no --yes
    what_if = admin_roomctl(f"roomctl room delete {room.id} --what-if")
    assert "would delete" in what_if.stdout
    deleted = admin_roomctl(f"roomctl room delete {room.id} --yes")
    assert deleted.returncode == 0, deleted.stderr
    assert roomctl(f"roomctl room get {room.id}").returncode == 4


def test_login_keeps_a_token_readable_by_its_owner_alone(live_server, category_world, tmp_path):
    person = category_world["member"].user_id
    run = shell(live_server, AdministratorFactory(), HOME=str(tmp_path), ROOMCTL_TOKEN="")
    wrong = run(f"roomctl login {live_server.url} --user {person} --password-stdin", "nope\n")
    assert wrong.returncode == 3
    assert not (tmp_path / ".config/roomctl.toml").exists()
    signed = run(
        f"roomctl login {live_server.url} --user {person} --password-stdin", f"{PASSWORD}\n"
    )
    assert signed.returncode == 0, signed.stderr
    config = tmp_path / ".config/roomctl.toml"
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    assert PASSWORD not in config.read_text()
    listed = run("ROOMCTL_URL= roomctl room list --json")  # from the file alone
    assert listed.returncode == 0, listed.stderr
    no_terminal = run(f"roomctl login {live_server.url} --user {person}", "")
    assert no_terminal.returncode == 2
    [made] = json.loads(run("ROOMCTL_URL= roomctl token list --json").stdout)
    assert made["owner"] == person
    assert run(f"ROOMCTL_URL= roomctl token revoke {made['id']}").returncode == 0
    assert run("ROOMCTL_URL= roomctl room list").returncode == 3  # revoked: at once


def test_login_keeps_a_token_made_on_the_tokens_page(live_server, category_world, tmp_path):
    """People who sign in with single sign-on have no password for roomctl: they make a
    token on the portal's Tokens page and give it to `login --token-stdin`."""
    from accounts.models import User

    person = User.objects.create(username="@sso:portal.test", chat_id="@sso:portal.test")
    _, secret = token_create(actor=person, name="for roomctl", scope="read", days=7)
    run = shell(live_server, AdministratorFactory(), HOME=str(tmp_path), ROOMCTL_TOKEN="")
    refused = run(f"roomctl login {live_server.url} --token-stdin", "not-a-token\n")
    assert refused.returncode == 3
    assert not (tmp_path / ".config/roomctl.toml").exists()
    kept = run(f"roomctl login {live_server.url} --token-stdin", f"{secret}\n")
    assert kept.returncode == 0, kept.stderr
    config = tmp_path / ".config/roomctl.toml"
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    [mine] = json.loads(run("ROOMCTL_URL= roomctl token list --json").stdout)
    assert mine["owner"] == "@sso:portal.test"


def test_a_categorys_chat_options_with_a_what_if_and_the_operation_waited_on(
    admin_roomctl, chat, make_room, category_world
):
    category = category_world["category"]
    room = make_room()
    what_if = admin_roomctl(
        f"roomctl category options '{category.name}' --no-chat-history --what-if"
    )
    assert what_if.returncode == 0, what_if.stderr
    assert "Would change 1 room." in what_if.stdout
    assert room.id in what_if.stdout
    assert chat.get_category(category.id).options.chat_history is True
    assert admin_roomctl(f"roomctl category options '{category.name}'").returncode == 2
    started = admin_roomctl(f"roomctl category options '{category.name}' --no-chat-history")
    assert started.returncode == 0, started.stderr
    operation = re.search(r"roomctl operation wait ([0-9a-f-]{36})", started.stdout)
    assert operation is not None, started.stdout
    while bulk_change_step(chunk=5):  # the sync worker's rounds
        pass
    waited = admin_roomctl(f"roomctl operation wait {operation[1]} --json")
    assert waited.returncode == 0, waited.stderr
    assert [r["result"] for r in json.loads(waited.stdout)["results"]] == ["changed"]
    assert chat.get_room(room.id).options.chat_history is False
    made = admin_roomctl(
        f"roomctl category create --name '{unique('No files ')}' --no-file-uploads --json"
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["file_uploads"] is False


def test_the_add_in_register_and_a_rooms_add_ins(admin_roomctl, roomctl, make_room, category_world):
    room = make_room()
    registered = admin_roomctl(
        "roomctl addin register --name Dashboards --url https://dash.example.org/ "
        f"--category '{category_world['category'].name}'"
    )
    assert registered.returncode == 0, registered.stderr
    addin = registered.stdout.strip()
    attached = roomctl(f"roomctl addin attach '{room.id}' {addin}")
    assert attached.returncode == 0, attached.stderr
    assert "Dashboards" in attached.stdout
    listed = roomctl("roomctl addin list")
    assert "dash.example.org" in listed.stdout
    what_if = admin_roomctl(f"roomctl addin remove {addin} --what-if")
    assert "Would take it out of 1 room." in what_if.stdout
    assert admin_roomctl(f"roomctl addin remove {addin}").returncode == 2  # not a terminal
    removed = admin_roomctl(f"roomctl addin remove {addin} --yes")
    assert removed.returncode == 0, removed.stderr
    assert "roomctl operation wait" in removed.stdout
