"""A portal process killed (SIGKILL) in the middle of moving a room: its operation was
recorded before the first request, with its process, so the sync worker's next pass over
abandoned operations sees that process gone, finishes the move and writes the audit entry
the dead process never wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rooms.backend.records import Privacy, RoomSettings
from tests.conftest import ROOT, unique

pytestmark = pytest.mark.chat

MOVER = """
import django, sys, time, httpx
django.setup()
from django.conf import settings
from accounts.models import User
from rooms import index
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.services import rooms as room_services

room_id, source_id, target_id, stall_at, marker = sys.argv[1:6]


class Stalling(httpx.BaseTransport):
    # Request `stall_at` reaches the server; the process is killed before it hears back.
    def __init__(self):
        self.real, self.count = httpx.HTTPTransport(), 0

    def handle_request(self, request):
        self.count += 1
        response = self.real.handle_request(request)
        if self.count == int(stall_at):
            response.read()
            open(marker, "w").close()
            time.sleep(600)
        return response


for target in (source_id, target_id, room_id):
    index.chat_backend().refresh(target)  # this portal's index
client = MatrixChatBackend(base_url=settings.CHAT_SERVER_URL, server_name=settings.CHAT_SERVER_NAME,
                           token=settings.CHAT_SERVICE_TOKEN, transport=Stalling())
index.backend.server_client = lambda: client
admin = User.objects.create(username="mover", is_portal_admin=True)
room = index.chat_backend().get_room(room_id)
room_services.room_move(actor=admin, room_id=room_id, category_id=target_id,
                        version=room_services.room_version(room))
"""

WORKER = """
import django, json
django.setup()
from portal.models import AuditEntry
from rooms import operations
from rooms.models import Operation

running = list(Operation.objects.values_list("kind", "status"))
done = operations.resume_abandoned()  # at once: its process is gone from this machine
entries = AuditEntry.objects.filter(action="room.move")
print(json.dumps({
    "before": running,
    "resumed": [[op.kind, op.status] for op in done],
    "audit": [[e.outcome, e.actor.username if e.actor else ""] for e in entries],
}))
"""


def test_a_move_killed_mid_way_is_finished_by_the_worker(
    db, chat, category_world, portal_on_chat, tmp_path
):
    source = category_world["category"]
    target = chat.create_category(name=unique("Target "), description="", creators=[])
    room = chat.create_room(RoomSettings(unique("Killed "), "", source.id, Privacy.CLOSED))
    marker = tmp_path / "stalled"
    mover = subprocess.Popen(
        [sys.executable, "-c", MOVER, room.id, source.id, target.id, "4", str(marker)],
        cwd=ROOT,
        env=portal_on_chat,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert mover.poll() is None, mover.communicate()[1].decode()[-3000:]
        assert time.monotonic() < deadline, "the move never reached its fourth request"
        time.sleep(0.1)
    os.kill(mover.pid, signal.SIGKILL)
    mover.wait(timeout=30)
    assert room.id in chat.get_category(target.id).room_ids  # linked into the new one...
    assert room.id in chat.get_category(source.id).room_ids  # ...not yet out of the old one

    done = subprocess.run(
        [sys.executable, "-c", WORKER],
        cwd=ROOT,
        env=portal_on_chat,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["before"] == [["room.move", "running"]]
    assert report["resumed"] == [["room.move", "succeeded"]]
    assert report["audit"] == [["succeeded", "mover"]]
    moved = chat.get_room(room.id)
    assert moved.settings.category_id == target.id
    assert room.id not in chat.get_category(source.id).room_ids
