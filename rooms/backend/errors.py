"""One exception family for everything the chat server can do wrong.

Views turn each kind into a clear message; nothing above the backend client sees
an HTTP status or a Matrix error code.
"""

from __future__ import annotations


class ChatBackendError(Exception):
    """The chat server did not do what was asked."""

    message = "The chat server could not complete the request."

    def __init__(self, detail: str = "", *, code: str = "") -> None:
        super().__init__(detail or self.message)
        self.detail = detail or self.message
        self.code = code


class ChatServerUnavailable(ChatBackendError):
    """Down, unreachable, too slow, overloaded, or answering something unreadable."""

    message = "The chat server is not available right now. Please try again in a few minutes."


class ChatServerDenied(ChatBackendError):
    """The chat server refused: the service account lacks the right, or a login failed."""

    message = "The chat server refused the request."


class ChatNotFound(ChatBackendError):
    message = "The chat server does not know that room, category or person."


class ChatConflict(ChatBackendError):
    message = "That conflicts with something that already exists on the chat server."


class ChatInvalid(ChatBackendError):
    message = "The chat server rejected the request as invalid."


class RoomCreationIncomplete(ChatBackendError):
    """A room was made on the chat server but its setup failed part-way.

    The client then tries to remove it again: `rolled_back` says whether it did, so the
    person can be told whether a half-made room is left behind.
    """

    def __init__(self, detail: str, *, room_id: str, rolled_back: bool, code: str = "") -> None:
        super().__init__(detail, code=code)
        self.room_id = room_id
        self.rolled_back = rolled_back
