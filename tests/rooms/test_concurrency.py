"""Two people changing one thing at the same moment, every time: of two saves of one room,
one is refused with the current values; of two approvals of one request, one wins and the
other is told. Each race runs in its own process, on a database of the suite's own kind,
with real threads and the real Synapse."""

from __future__ import annotations

import json
import subprocess
import sys

from rooms.backend.records import Privacy, RoomSettings
from tests.conftest import ROOT, unique

PAIRS = 20

RACER = """
import django, json, sys, threading
django.setup()
from django.db import connection
from accounts.models import User
from rooms.services import rooms as room_services
from rooms.index import chat_backend

room_id, pairs = sys.argv[1], int(sys.argv[2])
chat_backend().refresh(chat_backend().refresh(room_id).category_id)  # this portal's index
admin = User.objects.create(username="racer", is_portal_admin=True)
outcomes = []
for round_ in range(pairs):
    room = chat_backend().get_room(room_id)
    version = room_services.room_version(room)
    start = threading.Barrier(2)
    results = []

    def save(who):
        start.wait()
        try:
            room_services.room_update(actor=admin, room_id=room_id, name=room.name,
                                 description=f"{round_} by {who}", auditorium=False,
                                 invitations=room.settings.invitations, version=version)
            results.append("saved")
        except room_services.StaleEdit:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(who,)) for who in ("a", "b")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    outcomes.append(sorted(results))
print(json.dumps(outcomes))
"""


def race(script: str, *args: str, env: dict[str, str]) -> list[list[str]]:
    """Run a race in its own process; the outcomes it printed last."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_of_two_racing_saves_exactly_one_is_refused(db, chat, category_world, portal_on_chat):
    room = chat.create_room(
        RoomSettings(unique("Raced "), "", category_world["category"].id, Privacy.CLOSED),
        managers=[category_world["creator"].user_id],
    )
    outcomes = race(RACER, room.id, str(PAIRS), env=portal_on_chat)
    assert outcomes == [["refused", "saved"]] * PAIRS


APPROVERS = """
import django, json, sys, threading
django.setup()
from django.db import connection
from accounts.models import User
from rooms.services import requests as request_services
from rooms.index import chat_backend
from rooms.models import RoomRequest

category_id, requester_id, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
chat_backend().refresh(category_id)  # this portal's index
approvers = [User.objects.create(username=f"approver{n}", is_portal_admin=True) for n in (1, 2)]
requester = User.objects.create(username=requester_id, chat_id=requester_id)
outcomes = []
for round_ in range(rounds):
    asked = RoomRequest.objects.create(
        requester=requester, category_id=category_id, category_label="Raced",
        name=f"{sys.argv[4]} {round_}", privacy="closed", invitations="inherit",
        justification="Because",
    )
    start = threading.Barrier(2)
    results = []

    def approve(approver):
        start.wait()
        try:
            done = request_services.request_approve(
                actor=approver, pk=asked.pk, settings=request_services.request_settings(asked)
            )
            results.append(done.status)
        except request_services.RequestConflict:
            results.append("told it was decided")
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(a,)) for a in approvers]
    [t.start() for t in threads]
    [t.join() for t in threads]
    outcomes.append(sorted(results))
print(json.dumps(outcomes))
"""


def test_of_two_racing_approvals_one_wins_and_the_other_is_told(db, category_world, portal_on_chat):
    outcomes = race(
        APPROVERS,
        category_world["category"].id,
        category_world["member"].user_id,
        str(PAIRS),
        unique("Raced request"),
        env=portal_on_chat,
    )
    assert outcomes == [["created", "told it was decided"]] * PAIRS


CREATORS = """
import django, json, sys, threading, uuid
django.setup()
from django.db import connection
from accounts.models import User
from rooms.services import rooms as room_services
from rooms.backend.records import Privacy, RoomSettings
from rooms.index import chat_backend

category_id, rounds, stem = sys.argv[1], int(sys.argv[2]), sys.argv[3]
chat_backend().refresh(category_id)  # this portal's index
admins = [User.objects.create(username=f"creator{n}", is_portal_admin=True) for n in (1, 2)]
outcomes = []
for round_ in range(rounds):
    names = [f"{stem} {round_}", f"{stem} {round_}".upper()]  # one name, two letter cases
    start = threading.Barrier(2)
    results = []

    def create(admin, name):
        start.wait()
        try:
            room_services.room_create(
                actor=admin,
                settings=RoomSettings(name, "", category_id, Privacy.CLOSED),
                submission=uuid.uuid4(),
            )
            results.append("created")
        except room_services.RoomSettingsInvalid as refused:
            taken = "not available" in refused.message
            results.append("not available" if taken else refused.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=pair) for pair in zip(admins, names)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    outcomes.append(sorted(results))
print(json.dumps(outcomes))
"""


def test_of_two_racing_creations_of_one_name_exactly_one_room_is_made(
    db, chat, category_world, portal_on_chat
):
    stem = unique("raced name")
    outcomes = race(CREATORS, category_world["category"].id, "10", stem, env=portal_on_chat)
    assert outcomes == [["created", "not available"]] * 10
    for round_ in range(10):
        assert chat.room_name_taken(f"{stem} {round_}")  # the server has the one room
        found = chat.http.request(
            "GET", "/_synapse/admin/v1/rooms", params={"search_term": f"{stem} {round_}"}
        )["rooms"]
        assert len(found) == 1


DECIDERS = """
import django, json, sys, threading
django.setup()
from django.db import connection
from accounts.models import User
from rooms.backend.records import Role
from rooms.services import roles as role_services
from rooms.index import chat_backend
from rooms.models import JoinRequest

room_id, asker_id, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
chat_backend().refresh(chat_backend().refresh(room_id).category_id)  # this portal's index
managers = [User.objects.create(username=f"manager{n}", is_portal_admin=True) for n in (1, 2)]
asker = User.objects.create(username=asker_id, chat_id=asker_id)
outcomes = []
for round_ in range(rounds):
    JoinRequest.objects.create(room_id=room_id, requester=asker)
    start = threading.Barrier(2)
    results = []

    def decide(manager, accept):
        start.wait()
        try:
            if accept:
                role_services.join_accept(actor=manager, room_id=room_id, user_id=asker_id)
            else:
                role_services.join_decline(actor=manager, room_id=room_id, user_id=asker_id)
            results.append("decided")
        except role_services.RoleRefused as told:
            results.append("told" if "no longer asking" in str(told) else str(told))
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=pair) for pair in zip(managers, (True, False))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    outcomes.append(sorted(results))
    chat_backend().remove_from_role(room_id, Role.MEMBER, [asker_id])  # to ask again
print(json.dumps(outcomes))
"""


def test_of_two_managers_deciding_one_join_request_one_wins_and_the_other_is_told(
    db, chat, category_world, portal_on_chat
):
    room = chat.create_room(
        RoomSettings(unique("Asked "), "", category_world["category"].id, Privacy.CLOSED),
        managers=[category_world["creator"].user_id],
    )
    asker = category_world["member"].user_id
    outcomes = race(DECIDERS, room.id, asker, "10", env=portal_on_chat)
    assert outcomes == [["decided", "told"]] * 10


WRITERS = """
import django, json, threading, time
django.setup()
from django.db import connection
from rooms.locks import one_writer
from rooms.models import RoomName

said, holding, other_done, first_out = [], threading.Event(), threading.Event(), threading.Event()

def holder():
    with one_writer("!a:example.org"), one_writer("!a:example.org"):  # within itself: held
        RoomName.objects.create(name_key="written while the change is made")
        said.append("in a transaction" if connection.in_atomic_block else "no transaction")
        holding.set()
        said.append("other room written" if other_done.wait(timeout=60) else "other room waited")
        time.sleep(0.3)  # the same room's second writer, if it did not wait, is in by now
        said.append("first out")
    connection.close()

def other_room():
    holding.wait()
    with one_writer("!b:example.org"):
        RoomName.objects.create(name_key="another room's change")
    other_done.set()
    connection.close()

def same_room():
    holding.wait()
    with one_writer("!a:example.org"):
        said.append("second in")
    connection.close()

threads = [threading.Thread(target=f) for f in (holder, other_room, same_room)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps(said))
"""


def test_a_change_holds_its_own_room_only(scratch_portal):
    """While one room's change waits on the chat server, no database transaction is held
    and another room's change writes to the database at once (SQLite's one write lock
    is not held across the change); the same room's next change waits its turn."""
    said = race(WRITERS, env=scratch_portal)
    assert said == ["no transaction", "other room written", "first out", "second in"]
