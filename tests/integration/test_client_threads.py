"""The chat client under the concurrency of a server process: many threads reading and
writing at once, each through its own client, without a single error."""

from __future__ import annotations

import threading

import pytest

from rooms.backend import server_client
from rooms.backend.records import Privacy, RoomSettings
from tests.conftest import unique

pytestmark = pytest.mark.django_db
THREADS = 16
ROUNDS = 15


def test_sixteen_threads_hammering_reads_and_writes_get_no_error(chat, category_world):
    category = category_world["category"]
    rooms = [
        chat.create_room(RoomSettings(unique("Hammered "), "", category.id, Privacy.CLOSED)).id
        for _ in range(4)
    ]
    errors: list[BaseException] = []
    clients: set[int] = set()
    start = threading.Barrier(THREADS)

    def hammer(n: int) -> None:
        try:
            start.wait()
            client = server_client()
            clients.add(id(client))
            for round_ in range(ROUNDS):
                room_id = rooms[(n + round_) % len(rooms)]
                client.get_room(room_id)
                client.get_category(category.id)
                client._put_state(room_id, "m.room.topic", {"topic": f"{n}/{round_}"})
        except BaseException as exc:  # every failure is what this test looks for
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert len(clients) == THREADS  # a client (a connection pool) per thread
