"""The chat backend: the one way the portal reaches the chat server.

`server_client()` returns the client for the configured homeserver: the one named by
the CHAT_SERVER_* settings, or else the embedded server under the state folder.
"""

from __future__ import annotations

import threading

from django.conf import settings

from rooms.backend.embedded import Connection, read_connection
from rooms.backend.errors import ChatServerUnavailable
from rooms.backend.matrix.client import MatrixChatBackend

# One client (one connection pool) per thread and homeserver: an httpx client shared by
# the threads of a server process queues requests for its pooled connections and fails
# under load; a client of its own per thread never waits for another thread.
_local = threading.local()


def configured_connection() -> Connection:
    """Where the chat server is, from the settings or the embedded server's folder."""
    if settings.CHAT_SERVER_URL:
        return Connection(
            settings.CHAT_SERVER_URL, settings.CHAT_SERVER_NAME, settings.CHAT_SERVICE_TOKEN
        )
    connection = read_connection(settings.CHAT_EMBEDDED_DIR)
    if connection is None:
        raise ChatServerUnavailable(
            "The embedded chat server has not been set up yet: start the portal with `make run`."
        )
    return connection


def server_client() -> MatrixChatBackend:
    """This thread's client of the configured homeserver (kept for the thread's life).
    The portal's pages and services use `rooms.index.chat_backend()`, which puts the
    index in front of it."""
    connection = configured_connection()
    clients: dict[Connection, MatrixChatBackend] = _local.__dict__.setdefault("clients", {})
    client = clients.get(connection)
    if client is None:
        client = clients[connection] = connection.client(timeout=settings.CHAT_TIMEOUT_SECONDS)
    return client
