"""Typed records that cross the chat backend boundary, in the portal's own words."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from enum import StrEnum

NAME_MAX_LENGTH = 256
DESCRIPTION_MAX_LENGTH = 256
# A Matrix user ID: @localpart:server, at most 255 characters.
# A chat ID's first part (its localpart), as the Matrix spec allows it.
LOCALPART = re.compile(r"[a-z0-9._=\-/+]+")
_CHAT_ID = re.compile(r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-\[\]:]+$")


NOT_ONE_LINE = "A name is one line of text: remove line breaks, tabs and other control characters."


def is_one_line(value: str) -> bool:
    """Whether a name is one line of text: no line break, tab or other control code."""
    return not any(unicodedata.category(c) == "Cc" for c in value)


def is_chat_id(value: str) -> bool:
    """Whether this is a well-formed chat ID (it may still belong to nobody)."""
    return len(value) <= 255 and bool(_CHAT_ID.match(value))


class Privacy(StrEnum):
    """Who can find and join a room (Persistent Chat's Open / Closed / Secret)."""

    OPEN = "open"
    CLOSED = "closed"
    SECRET = "secret"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def explanation(self) -> str:
        return {
            Privacy.OPEN: "Everyone in the category can find it and join; there is no member list.",
            Privacy.CLOSED: "Everyone in the category can find it and ask to join; "
            "only members get in.",
            Privacy.SECRET: "Only members can find it or get in.",
        }[self]


class Role(StrEnum):
    MEMBER = "member"
    MANAGER = "manager"
    PRESENTER = "presenter"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Invitations(StrEnum):
    """Whether new members are invited (inherit the category's setting) or added directly."""

    INHERIT = "inherit"
    OFF = "off"


@dataclass(frozen=True)
class Principal:
    """A person on the chat server."""

    id: str
    display_name: str = ""
    deactivated: bool = False
    emails: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.display_name or self.id

    @property
    def described(self) -> str:
        """The name with the chat ID, as people pickers show it."""
        return person_label(self.id, self.display_name)


def person_label(user_id: str, display_name: str) -> str:
    return f"{display_name} ({user_id})" if display_name else user_id


@dataclass(frozen=True)
class ChatOptions:
    """A category's chat options (Persistent Chat's chat history and file upload),
    which every room of the category carries on the chat server: whether people who
    join later see what was said before, and whether files may be sent."""

    chat_history: bool = True
    file_uploads: bool = True
    # How many days the homeserver keeps a message (its retention policy); 0: for ever.
    keep_days: int = 0
    # Whether the rooms' Managers read their rooms' history in the portal.
    managers_read: bool = False

    def values(self) -> dict[str, bool | int]:
        """As the settings events, audit entries and the API hold them."""
        return {
            "chat_history": self.chat_history,
            "file_uploads": self.file_uploads,
            "keep_days": self.keep_days,
            "managers_read": self.managers_read,
        }

    @property
    def labels(self) -> list[str]:
        return [
            "Chat history: " + ("on" if self.chat_history else "off"),
            "File upload: " + ("allowed" if self.file_uploads else "off"),
            "Messages kept: "
            + (
                f"{self.keep_days} day{'s' if self.keep_days != 1 else ''}"
                if self.keep_days
                else "for ever"
            ),
            "Managers read the history: " + ("yes" if self.managers_read else "no"),
        ]


@dataclass(frozen=True)
class AddIn:
    """A web page shown beside a room's conversation (a Matrix widget), as the room
    carries it: the register's ID, its name and address when attached."""

    id: str
    name: str
    url: str


# The options of a category made without any: history kept, files allowed.
DEFAULT_OPTIONS = ChatOptions()


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    description: str
    invitations_allowed: bool
    allowed_members: AbstractSet[str]
    denied_members: AbstractSet[str]
    creators: AbstractSet[str]
    room_ids: tuple[str, ...]
    options: ChatOptions = DEFAULT_OPTIONS

    def in_scope(self, user_id: str) -> bool:
        return user_id in self.allowed_members and user_id not in self.denied_members

    def is_creator(self, user_id: str) -> bool:
        return user_id in self.creators and self.in_scope(user_id)

    @property
    def room_count(self) -> int:
        return len(self.room_ids)


@dataclass(frozen=True)
class RoomSettings:
    """What a room-settings form holds."""

    name: str
    description: str
    category_id: str
    privacy: Privacy = Privacy.CLOSED
    auditorium: bool = False
    invitations: Invitations = Invitations.INHERIT


@dataclass(frozen=True)
class Room:
    id: str
    settings: RoomSettings
    disabled: bool = False
    members: AbstractSet[str] = field(default_factory=frozenset)
    managers: AbstractSet[str] = field(default_factory=frozenset)
    presenters: AbstractSet[str] = field(default_factory=frozenset)
    # People who asked to join a Closed room and wait for a manager.
    knocking: AbstractSet[str] = field(default_factory=frozenset)
    # Display names the room's member events carry, by chat ID.
    names: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    # Its category's chat options, as the room carries them (the category's since the
    # last change of them reached the room).
    options: ChatOptions = DEFAULT_OPTIONS
    # The add-ins attached to it, by the register's ID.
    add_ins: tuple[AddIn, ...] = ()

    def label(self, user_id: str) -> str:
        return person_label(user_id, self.names.get(user_id, ""))

    @property
    def name(self) -> str:
        return self.settings.name

    def roles_of(self, user_id: str) -> list[Role]:
        return [role for role in Role if user_id in self.principals(role)]

    def principals(self, role: Role) -> AbstractSet[str]:
        return {
            Role.MEMBER: self.members,
            Role.MANAGER: self.managers,
            Role.PRESENTER: self.presenters,
        }[role]
