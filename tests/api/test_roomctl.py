"""roomctl end to end: the installed command against a live portal on the real Synapse,
with a token from the environment — list, set with a what-if, role add from a file, and
a pipe of room IDs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.tokens import token_create
from rooms.backend.records import Privacy

pytestmark = pytest.mark.django_db(transaction=True)
ROOMCTL = Path(sys.executable).parent / "roomctl"


@pytest.fixture
def roomctl(live_server, creator):
    if not ROOMCTL.exists():
        pytest.fail(f"roomctl is not installed at {ROOMCTL}: run `make test` (pip install .).")
    _, secret = token_create(actor=creator, name="shell", scope="write", days=1)
    env = {
        "ROOMCTL_URL": live_server.url,
        "ROOMCTL_TOKEN": secret,
        "PATH": str(ROOMCTL.parent),
        "HOME": "/nonexistent",
    }

    def run(command: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, shell=True, env=env, input=stdin, capture_output=True, text=True, timeout=120
        )

    return run


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


def test_exit_codes_scripts_can_rely_on(roomctl, make_room):
    room = make_room()
    assert roomctl("roomctl room get '!nowhere:portal.test'").returncode == 4
    assert roomctl(f"roomctl room set '{room.id}'").returncode == 2  # nothing to change
    bad_token = roomctl("ROOMCTL_TOKEN=rp_wrong roomctl room list")
    assert bad_token.returncode == 3
    assert "revoked or expired" in bad_token.stderr
