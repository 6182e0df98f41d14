"""The rules of the design (docs/architecture.md §11) as a predicate on one room's state.

One definition serves both lines of defence:

- the homeserver module (`rooms.chatserver.module`) refuses a chat user's state event
  when the state it would make breaks a rule the state before it did not (`refusal`);
- the sync worker lists what a room's state breaks after a chat user's change landed
  anyway (a homeserver without the module, events from before it was installed), and
  has the client undo it (`breaches`, `repaired_levels`).

A room is governed when it has an `m.space.parent` to a category (a space the portal's
service account created); a category is such a space. The service account is never
refused: it is how the portal carries out what its own rules allowed.

Plain Python only: the homeserver imports this with nothing of the portal around it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from rooms.chatserver.text import name_problem, unique_key

MANAGER_LEVEL = 100
PRESENTER_LEVEL = 50
# Above every human level, so nobody posts in a disabled room.
DISABLED_LEVEL = MANAGER_LEVEL + 1
# The service account's level in a room it did not create (an adopted room).
SERVICE_LEVEL = MANAGER_LEVEL + 50
ROLE_LEVELS = (0, PRESENTER_LEVEL, MANAGER_LEVEL)
# Memberships that make someone present in a room: each needs the category's scope.
PRESENT = ("join", "invite", "knock")
NAME_MAX_LENGTH = 256

SPACE_TYPE = "m.space"
PORTAL_EVENT_PREFIX = "org.roomportal."
ROOM_SETTINGS_EVENT = "org.roomportal.room"
CATEGORY_SETTINGS_EVENT = "org.roomportal.category"
# Refusals the module reports, as events in the service account's room of that alias.
REFUSAL_EVENT = "org.roomportal.refusal"
REFUSALS_ALIAS = "roomportal-refusals"
# What a chat client's change is checked as: what the portal sets, nothing else. History
# visibility follows the category's chat history option, which each room carries in its
# settings event: "shared" with it on, "joined" (nothing from before one joined) off.
HISTORY_SHARED = "shared"
HISTORY_FROM_JOIN = "joined"
GUEST_ACCESS = "forbidden"
# Add-ins are widgets the portal attaches (state key: the prefix and the register's ID);
# chat clients change no widget in a governed room, nor Element's layout of them.
WIDGET_EVENT = "im.vector.modular.widgets"
WIDGET_EVENTS = (WIDGET_EVENT, "m.widget", "io.element.widgets.layout")
ADD_IN_PREFIX = "roomportal-addin-"
# Messages that carry a file (refused where the category's file upload is off), and
# stickers, which are images.
FILE_MESSAGES = ("m.file", "m.image", "m.audio", "m.video")
# The levels every portal room has (rooms.backend.matrix.state.room_power_levels), with
# the Matrix default of each where a room's levels leave it out.
FIXED_LEVELS = {
    "users_default": (0, 0),
    "state_default": (MANAGER_LEVEL, 50),
    "invite": (MANAGER_LEVEL, 0),
    "kick": (MANAGER_LEVEL, 50),
    "ban": (MANAGER_LEVEL, 50),
    "redact": (MANAGER_LEVEL, 50),
}
FIXED_EVENT_LEVELS = {
    "m.room.name": MANAGER_LEVEL,
    "m.room.topic": MANAGER_LEVEL,
    "m.room.power_levels": MANAGER_LEVEL,
    "m.room.join_rules": MANAGER_LEVEL,
    "m.room.history_visibility": MANAGER_LEVEL,
}
# A server ACL that lets every server in: what undoing one puts back.
OPEN_SERVER_ACL = {"allow": ["*"], "deny": [], "allow_ip_literals": True}

StateKey = tuple[str, str]
State = Mapping[StateKey, Mapping[str, Any]]

# Every piece of a room's state the checks below read, but people's memberships: the
# homeserver module reads these (and the memberships of the people an event touches or
# the power levels name), not the whole state of a room of thousands.
CHECKED_STATE = (
    "m.room.create",
    "m.room.name",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.retention",
    "m.room.encryption",
    "m.room.server_acl",
    "m.room.tombstone",
    "m.room.power_levels",
    "m.space.parent",
    ROOM_SETTINGS_EVENT,
)


def chat_history(settings: Mapping[str, Any]) -> bool:
    """Whether a room's settings event says its category keeps chat history for people
    who join later (on unless the portal turned it off)."""
    return settings.get("chat_history") is not False


def file_uploads(settings: Mapping[str, Any]) -> bool:
    """Whether a room's settings event lets files be sent (on unless turned off)."""
    return settings.get("file_uploads") is not False


KEEP_DAYS_AT_MOST = 36_500
DAY_MS = 86_400_000


def keep_days(settings: Mapping[str, Any]) -> int:
    """How many days a room's settings event says its messages are kept (0: for ever)."""
    value = settings.get("keep_days", 0)
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value if 0 < value <= KEEP_DAYS_AT_MOST else 0


def managers_read(settings: Mapping[str, Any]) -> bool:
    """Whether a room's settings event lets its Managers read its history in the portal."""
    return settings.get("managers_read") is True


def retention(days: int) -> dict[str, int]:
    """The room's retention policy (`m.room.retention`) for messages kept `days` days: the
    homeserver deletes older ones. None ({}) keeps them for ever."""
    return {"max_lifetime": days * DAY_MS} if days else {}


def history_visibility(chat_history_on: bool) -> str:
    return HISTORY_SHARED if chat_history_on else HISTORY_FROM_JOIN


def carries_file(event_type: str, content: Mapping[str, Any]) -> bool:
    """Whether a message event sends a file, an image, audio, video or a sticker."""
    if event_type == "m.sticker":
        return True
    return event_type == "m.room.message" and content.get("msgtype") in FILE_MESSAGES


def upload_refusal(category_name: str) -> Breach:
    return Breach(
        Rule.UPLOADS,
        ("m.room.message", ""),
        f"file upload is off in the rooms of the category “{category_name}”; share a link "
        "instead, or ask the category's administrators.",
    )


def name_key(name: str) -> str:
    """What makes two room names the same: letter case, invisible joiners, look-alike
    letters and surrounding spaces aside (`rooms.chatserver.text.unique_key`)."""
    return unique_key(name)


class Rule(StrEnum):
    """The rule a change breaks, as the audit log and the pages name it."""

    SCOPE = "scope"  # Members, Managers and Presenters are in the category's scope
    PRIVACY = "privacy"  # Open, Closed or Secret, nothing else
    HISTORY = "history"  # history visibility as the category has it
    GUESTS = "guests"  # no guest access
    ROLES = "roles"  # Presenters in auditoriums, and Members; levels are roles
    LEVELS = "levels"  # the levels the mapping sets, the service account's included
    CATEGORY = "category"  # one category per room, linked by the portal alone
    NAME = "name"  # unique, 1-256 characters
    ENCRYPTION = "encryption"  # rooms stay readable by the server (compliance)
    SERVER_ACL = "server_acl"  # the homeserver's administrators decide
    UPGRADE = "upgrade"  # an upgrade would leave the category behind
    PORTAL_SETTINGS = "portal_settings"  # the portal's own state events
    UPLOADS = "uploads"  # no files where the category turned file upload off
    RETENTION = "retention"  # messages kept as long as the category sets
    ADD_INS = "add_ins"  # widgets are the add-ins the portal attaches

    @property
    def label(self) -> str:
        return RULE_LABELS[self]


RULE_LABELS = {
    Rule.SCOPE: "Only people in the category's scope",
    Rule.PRIVACY: "Open, Closed or Secret",
    Rule.HISTORY: "Chat history as the category sets it",
    Rule.GUESTS: "No guest access",
    Rule.ROLES: "Roles as the portal defines them",
    Rule.LEVELS: "Power levels set by the portal",
    Rule.CATEGORY: "One category per room",
    Rule.NAME: "Unique room names",
    Rule.ENCRYPTION: "No encryption in governed rooms",
    Rule.SERVER_ACL: "Server access set by the homeserver",
    Rule.UPGRADE: "No upgrades from a chat client",
    Rule.PORTAL_SETTINGS: "Portal settings changed in the portal",
    Rule.UPLOADS: "File upload as the category sets it",
    Rule.RETENTION: "Messages kept as long as the category sets",
    Rule.ADD_INS: "Add-ins attached in the portal",
}


@dataclass(frozen=True)
class Breach:
    """One way a room's state breaks a rule: which rule, which piece of state (event
    type and state key) breaks it, and what, in words a chat user reads."""

    rule: Rule
    subject: StateKey
    detail: str
    person: str = ""

    @property
    def key(self) -> tuple[str, StateKey, str]:
        """What makes two breaches the same one: about a person, the person (their display
        name in the text may change); otherwise the text."""
        return (str(self.rule), self.subject, self.person or self.detail)

    @property
    def message(self) -> str:
        """The refusal a chat client shows: the rule, and where to go instead."""
        return f"The room portal's rules refuse this: {self.detail}"


UPGRADE = Breach(
    Rule.UPGRADE,
    ("m.room.tombstone", ""),
    "an upgraded room would leave its category; ask the portal's administrators.",
)


@dataclass(frozen=True)
class Governed:
    """A room or category the portal governs, as far as a check needs to know it: its
    state (contents by event type and state key), its creators, and its category."""

    room_id: str
    state: State
    service_user: str
    category_id: str
    category_name: str
    in_scope: Callable[[str], bool]
    creators: frozenset[str] = frozenset()
    is_space: bool = False
    # The room holding a name (by `name_key`), if any.
    name_holder: Callable[[str], str | None] = field(default=lambda key: None)

    def content(self, event_type: str, state_key: str = "") -> Mapping[str, Any]:
        return self.state.get((event_type, state_key)) or {}

    def of_type(self, event_type: str) -> dict[str, Mapping[str, Any]]:
        return {key: c for (kind, key), c in self.state.items() if kind == event_type and c}

    def membership(self, user_id: str) -> str:
        return str(self.content("m.room.member", user_id).get("membership", "leave"))

    def with_event(self, event_type: str, state_key: str, content: Mapping[str, Any]) -> Governed:
        return replace(self, state={**self.state, (event_type, state_key): content})

    @property
    def levels(self) -> Mapping[str, Any]:
        return self.content("m.room.power_levels")

    def user_levels(self) -> dict[str, Any]:
        users = self.levels.get("users")
        return dict(users) if isinstance(users, Mapping) else {}

    @property
    def disabled(self) -> bool:
        return bool(self.content(ROOM_SETTINGS_EVENT).get("disabled", False))

    @property
    def chat_history(self) -> bool:
        return chat_history(self.content(ROOM_SETTINGS_EVENT))

    @property
    def history_visibility(self) -> str:
        """What the room's history visibility must be: as its category's option says."""
        return history_visibility(self.chat_history)

    @property
    def retention(self) -> dict[str, int]:
        """What the room's retention policy must be: as its category's option says."""
        return retention(keep_days(self.content(ROOM_SETTINGS_EVENT)))

    @property
    def auditorium(self) -> bool:
        if self.disabled:
            return bool(self.content(ROOM_SETTINGS_EVENT).get("auditorium", False))
        value = self.levels.get("events_default", 0)
        return isinstance(value, int) and value >= PRESENTER_LEVEL

    def exempt(self, user_id: str) -> bool:
        """The service account and the room's creators (unlimited power from room
        version 12 on) are outside the roles."""
        return user_id == self.service_user or user_id in self.creators


def breaches(room: Governed, *, people: Iterable[str] | None = None) -> list[Breach]:
    """What a governed room's state breaks. `people` limits the checks that ask the scope
    to these people (None: everyone in the room): the homeserver asks only about the
    people an event touches."""
    if room.is_space:
        return []
    asked = None if people is None else set(people)
    return [
        *_scope(room, asked),
        *_privacy(room),
        *_settings(room),
        *_levels(room),
        *_roles(room, asked),
        *_category(room),
        *_name(room),
    ]


def _who(room: Governed, user_id: str) -> str:
    name = room.content("m.room.member", user_id).get("displayname")
    return f"{name} ({user_id})" if isinstance(name, str) and name else user_id


def _scope(room: Governed, asked: set[str] | None) -> Iterable[Breach]:
    for user_id, content in room.of_type("m.room.member").items():
        if asked is not None and user_id not in asked:
            continue
        present = content.get("membership") in PRESENT
        if present and not room.exempt(user_id) and not room.in_scope(user_id):
            yield Breach(
                Rule.SCOPE,
                ("m.room.member", user_id),
                f"{_who(room, user_id)} is outside the scope of the category "
                f"“{room.category_name}”; ask its administrators.",
                person=user_id,
            )


def _privacy(room: Governed) -> Iterable[Breach]:
    rules = room.content("m.room.join_rules")
    rule = rules.get("join_rule", "invite")
    if rule in ("knock", "invite"):
        return
    if rule == "restricted" and rules.get("allow") == [
        {"type": "m.room_membership", "room_id": room.category_id}
    ]:
        return
    yield Breach(
        Rule.PRIVACY,
        ("m.room.join_rules", ""),
        f"a room of the category “{room.category_name}” is Open, Closed or Secret, and the "
        f"join rule “{rule}” is none of them; change its privacy in the room portal.",
    )


def _settings(room: Governed) -> Iterable[Breach]:
    history = room.content("m.room.history_visibility").get("history_visibility", "shared")
    if history != room.history_visibility:
        shown = (
            "shares a room's history with its members only"
            if room.chat_history
            else "keeps chat history from people who join later"
        )
        yield Breach(
            Rule.HISTORY,
            ("m.room.history_visibility", ""),
            f"the category “{room.category_name}” {shown}; history visibility “{history}” "
            "is not allowed.",
        )
    if dict(room.content("m.room.retention")) != room.retention:
        days = keep_days(room.content(ROOM_SETTINGS_EVENT))
        kept = f"keeps messages for {days} days" if days else "keeps messages for ever"
        yield Breach(
            Rule.RETENTION,
            ("m.room.retention", ""),
            f"the category “{room.category_name}” {kept}; ask its administrators to change it.",
        )
    guests = room.content("m.room.guest_access").get("guest_access", "forbidden")
    if guests != GUEST_ACCESS:
        yield Breach(
            Rule.GUESTS,
            ("m.room.guest_access", ""),
            "guests cannot join the rooms of the portal's categories.",
        )
    if room.content("m.room.encryption"):
        yield Breach(
            Rule.ENCRYPTION,
            ("m.room.encryption", ""),
            "encryption is not turned on in the portal's rooms: their history is kept for "
            "the organisation's compliance review.",
        )
    acl = room.content("m.room.server_acl")
    if acl and dict(acl) != OPEN_SERVER_ACL:
        yield Breach(
            Rule.SERVER_ACL,
            ("m.room.server_acl", ""),
            "which servers may take part is set by the homeserver's administrators.",
        )
    if room.content("m.room.tombstone").get("replacement_room"):
        yield UPGRADE


def _levels(room: Governed) -> Iterable[Breach]:
    levels = room.levels
    subject = ("m.room.power_levels", "")
    for key, (wanted, default) in FIXED_LEVELS.items():
        if levels.get(key, default) != wanted:
            yield Breach(
                Rule.LEVELS,
                subject,
                f"the room's “{key}” level is set by the room portal and stays {wanted}.",
            )
    events = levels.get("events")
    events = events if isinstance(events, Mapping) else {}
    for event_type, wanted in FIXED_EVENT_LEVELS.items():
        if events.get(event_type) != wanted:
            yield Breach(
                Rule.LEVELS,
                subject,
                f"the level to send “{event_type}” is set by the room portal and stays {wanted}.",
            )
    posting = levels.get("events_default", 0)
    allowed = (DISABLED_LEVEL,) if room.disabled else (0, PRESENTER_LEVEL)
    if posting not in allowed:
        yield Breach(
            Rule.LEVELS,
            subject,
            "who may post is set by the room portal: everyone (0), Presenters in an auditorium "
            f"(50), or nobody while the room is disabled; {posting} is none of them.",
        )
    if room.service_user not in room.creators:
        held = room.user_levels().get(room.service_user)
        if not isinstance(held, int) or held < SERVICE_LEVEL:
            yield Breach(
                Rule.LEVELS,
                subject,
                "the room portal's service account keeps its power in the portal's rooms.",
            )


def _roles(room: Governed, asked: set[str] | None) -> Iterable[Breach]:
    subject = ("m.room.power_levels", "")
    for user_id, level in sorted(room.user_levels().items()):
        if room.exempt(user_id):
            continue
        who = _who(room, user_id)
        if level not in ROLE_LEVELS:
            yield Breach(
                Rule.ROLES,
                subject,
                f"{who} was given level {level}: the portal's roles are Presenter (50) and "
                "Manager (100).",
                person=user_id,
            )
            continue
        if level == 0:
            continue
        role = "Manager" if level == MANAGER_LEVEL else "Presenter"
        if (asked is None or user_id in asked) and not room.in_scope(user_id):
            yield Breach(
                Rule.SCOPE,
                subject,
                f"{who} cannot be a {role}: they are outside the scope of the category "
                f"“{room.category_name}”; ask its administrators.",
                person=user_id,
            )
        elif level == PRESENTER_LEVEL and not room.auditorium:
            yield Breach(
                Rule.ROLES,
                subject,
                f"{who} cannot be a Presenter: Presenters exist only in auditorium rooms.",
                person=user_id,
            )
        elif level == PRESENTER_LEVEL and room.membership(user_id) not in ("join", "invite"):
            yield Breach(
                Rule.ROLES,
                subject,
                f"{who} cannot be a Presenter without being a Member of the room.",
                person=user_id,
            )


PARENT_LINK = "m.space.parent"  # a room's link to its category
CHILD_LINK = "m.space.child"  # a category's link to one of its rooms
CHILD_LINK_TEXT = "only the room portal links rooms and categories."


def link_changer(changed: Mapping[StateKey, str]) -> str:
    """Who (of `changed`: each piece of state, with who changed it) changed a room's
    links to categories; "" for nobody."""
    return next((who for (kind, _), who in changed.items() if kind == PARENT_LINK), "")


def child_links(changed: Mapping[StateKey, str]) -> dict[str, str]:
    """The rooms whose link from a category was changed, each with who changed it."""
    return {key: who for (kind, key), who in changed.items() if kind == CHILD_LINK}


def child_link_breach(room_id: str) -> Breach:
    """A category's link to a room, added or taken away by a chat user."""
    return Breach(Rule.CATEGORY, (CHILD_LINK, room_id), CHILD_LINK_TEXT)


def _category(room: Governed) -> Iterable[Breach]:
    parents = set(room.of_type(PARENT_LINK))
    if parents != {room.category_id}:
        yield Breach(
            Rule.CATEGORY,
            (PARENT_LINK, room.category_id),
            f"the room belongs to the category “{room.category_name}”, and only the room "
            "portal links rooms and categories; move the room there.",
        )


def _name(room: Governed) -> Iterable[Breach]:
    name = room.content("m.room.name").get("name", "")
    name = name if isinstance(name, str) else ""
    subject = ("m.room.name", "")
    if not name.strip() or len(name) > NAME_MAX_LENGTH:
        yield Breach(Rule.NAME, subject, f"a room's name is 1 to {NAME_MAX_LENGTH} characters.")
        return
    if problem := name_problem(name):
        yield Breach(Rule.NAME, subject, problem[0].lower() + problem[1:])
        return
    holder = room.name_holder(name_key(name))
    if holder and holder != room.room_id:
        yield Breach(
            Rule.NAME,
            subject,
            f"the name “{name.strip()}” is not available: room names are unique, in any "
            "letter case and however alike their letters look; choose another.",
        )


def refusal(
    room: Governed,
    *,
    event_type: str,
    state_key: str | None,
    content: Mapping[str, Any],
    sender: str,
) -> Breach | None:
    """Why the homeserver must refuse this event in a governed room or category (None:
    it may pass). Messages pass; a state event is refused when the state it makes breaks
    a rule that the state before it did not."""
    if sender == room.service_user or state_key is None:
        return None
    if room.is_space:
        own = event_type == "m.room.member" and state_key == sender
        if own and content.get("membership") in ("join", "leave"):
            return None
        return Breach(
            Rule.CATEGORY,
            (event_type, state_key),
            f"the category “{room.category_name}” is changed in the room portal only.",
        )
    by_kind = kind_refused(room, event_type, state_key)
    if by_kind is not None:
        return by_kind
    people = touched(room, event_type, state_key, content)
    if event_type == "m.room.member" and _nearer(room.membership(state_key), content):
        # Someone outside the scope never comes further in, invited before or not (a
        # new display name of someone already there is not coming in).
        arriving = room.with_event(event_type, state_key, content)
        return next(iter(_scope(arriving, {state_key})), None)
    before = {b.key for b in breaches(room, people=people)}
    after = breaches(room.with_event(event_type, state_key, content), people=people)
    return next((b for b in after if b.key not in before), None)


def _nearer(membership: str, content: Mapping[str, Any]) -> bool:
    """Whether this membership brings a person nearer the room: invited or knocking
    from outside, joined from there."""
    order = {"invite": 1, "knock": 1, "join": 2}
    return order.get(str(content.get("membership")), 0) > order.get(membership, 0)


def kind_refused(room: Governed, event_type: str, state_key: str) -> Breach | None:
    """A state event a chat user may never send in a governed room, whatever it holds:
    the portal's own settings, links between rooms and categories, e-mail invitations."""
    if event_type.startswith(PORTAL_EVENT_PREFIX):
        return Breach(
            Rule.PORTAL_SETTINGS,
            (event_type, state_key),
            "the room portal's own settings are changed in the portal.",
        )
    if event_type in (PARENT_LINK, CHILD_LINK):
        return next(iter(_category(room.with_event(event_type, state_key, {}))), None) or Breach(
            Rule.CATEGORY, (event_type, state_key), CHILD_LINK_TEXT
        )
    if event_type in WIDGET_EVENTS:
        return Breach(
            Rule.ADD_INS,
            (event_type, state_key),
            "add-ins (widgets) are attached to the portal's rooms in the room portal, from "
            "its register; ask the room's Managers there.",
        )
    if event_type == "m.room.third_party_invite":
        return Breach(
            Rule.SCOPE,
            (event_type, state_key),
            "an invitation by e-mail cannot be checked against the category's scope; "
            "invite the person by their chat ID.",
        )
    return None


def touched(
    room: Governed, event_type: str, state_key: str, content: Mapping[str, Any]
) -> set[str]:
    """The people whose standing an event changes (whose scope a check must ask)."""
    if event_type == "m.room.member":
        return {state_key}
    if event_type == "m.room.power_levels":
        old = room.user_levels()
        new_users = content.get("users")
        new = dict(new_users) if isinstance(new_users, Mapping) else {}
        return {u for u in set(old) | set(new) if old.get(u) != new.get(u)}
    return set()


def repaired_levels(room: Governed, *, people_out: Collection[str] = ()) -> dict[str, Any]:
    """The room's power levels with what breaks the rules undone: the fixed levels put
    back, posting as auditorium and disabled say, the service account's power restored,
    and the levels of people who cannot hold them (outside the scope, `people_out`;
    Presenters where there can be none; levels that are no role) taken away."""
    content = dict(room.levels)
    for key, (wanted, _) in FIXED_LEVELS.items():
        content[key] = wanted
    events = content.get("events")
    content["events"] = (dict(events) if isinstance(events, Mapping) else {}) | FIXED_EVENT_LEVELS
    posting = content.get("events_default", 0)
    if room.disabled:
        content["events_default"] = DISABLED_LEVEL
    elif posting not in (0, PRESENTER_LEVEL):
        content["events_default"] = (
            PRESENTER_LEVEL if room.content(ROOM_SETTINGS_EVENT).get("auditorium") else 0
        )
    users: dict[str, Any] = {}
    auditorium = room.auditorium if room.disabled else content["events_default"] >= PRESENTER_LEVEL
    for user_id, level in room.user_levels().items():
        if room.exempt(user_id):
            users[user_id] = level
            continue
        if level not in ROLE_LEVELS or level == 0 or user_id in people_out:
            continue
        is_member = room.membership(user_id) in ("join", "invite")
        if level == PRESENTER_LEVEL and not (auditorium and is_member):
            continue
        users[user_id] = level
    if room.service_user not in room.creators:
        users[room.service_user] = max(SERVICE_LEVEL, users.get(room.service_user, 0))
    content["users"] = users
    return content
