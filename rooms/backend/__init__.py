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

_lock = threading.Lock()
_clients: dict[Connection, MatrixChatBackend] = {}


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
    """The shared client (one connection pool per homeserver and token). The portal's
    pages and services use `rooms.index.chat_backend()`, which puts the index in front."""
    connection = configured_connection()
    with _lock:
        client = _clients.get(connection)
        if client is None:
            client = connection.client(timeout=settings.CHAT_TIMEOUT_SECONDS)
            _clients[connection] = client
        return client
