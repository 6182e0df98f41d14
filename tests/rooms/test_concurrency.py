"""Two people saving one room at the same moment: one save wins, the other is refused
with the current values, every time. Run in a separate process on a file database of the
suite's own kind, with real threads and the real Synapse."""

from __future__ import annotations

import json
import os
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
from rooms import services
from rooms.backend import chat_backend

room_id, pairs = sys.argv[1], int(sys.argv[2])
admin = User.objects.create(username="racer", is_portal_admin=True)
outcomes = []
for round_ in range(pairs):
    room = chat_backend().get_room(room_id)
    version = services.room_version(room)
    start = threading.Barrier(2)
    results = []

    def save(who):
        start.wait()
        try:
            services.room_update(actor=admin, room_id=room_id, name=room.name,
                                 description=f"{round_} by {who}", auditorium=False,
                                 invitations=room.settings.invitations, version=version)
            results.append("saved")
        except services.StaleEdit:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(who,)) for who in ("a", "b")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    outcomes.append(sorted(results))
print(json.dumps(outcomes))
"""


def test_of_two_racing_saves_exactly_one_is_refused(
    chat,
    synapse,
    category_world,
    scratch_database,
    tmp_path,
):
    room = chat.create_room(
        RoomSettings(unique("Raced "), "", category_world["category"].id, Privacy.CLOSED),
        managers=[category_world["creator"].user_id],
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEBUG")} | {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": scratch_database,
        "PORTAL_STATE_DIR": str(tmp_path / "state"),
        "CHAT_SERVER_URL": synapse.url,
        "CHAT_SERVER_NAME": synapse.server_name,
        "CHAT_SERVICE_TOKEN": synapse.token,
    }
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr
    race = subprocess.run(
        [sys.executable, "-c", RACER, room.id, str(PAIRS)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert race.returncode == 0, race.stderr
    outcomes = json.loads(race.stdout.strip().splitlines()[-1])
    assert outcomes == [["refused", "saved"]] * PAIRS
