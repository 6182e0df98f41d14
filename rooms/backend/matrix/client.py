"""The chat backend client: the portal's operations carried out on a Matrix homeserver."""

from __future__ import annotations

from rooms.backend.interface import ChatChanges
from rooms.backend.matrix.adoption import AdoptionOperations
from rooms.backend.matrix.enforcement import EnforcementOperations
from rooms.backend.matrix.moderation import ModerationOperations
from rooms.backend.matrix.people import PeopleOperations
from rooms.backend.matrix.rooms import RoomOperations
from rooms.backend.matrix.stream import StreamOperations


class MatrixChatBackend(
    EnforcementOperations,
    RoomOperations,
    PeopleOperations,
    AdoptionOperations,
    ModerationOperations,
    StreamOperations,
    ChatChanges,
):
    """People, categories and rooms on one Synapse homeserver, as the service account."""
