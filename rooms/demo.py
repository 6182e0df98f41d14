"""Demo data: people, categories and rooms of every privacy, created idempotently."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

import accounts.directory as directory
from accounts.directory.server import Group, Seed
from accounts.directory.server import Person as DirectoryPerson
from accounts.models import User
from rooms.backend.errors import ChatNotFound
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.backend.records import (
    DEFAULT_OPTIONS,
    AddIn,
    ChatOptions,
    Invitations,
    Privacy,
    RoomSettings,
)
from rooms.index import IndexedChatBackend
from rooms.models import AddInEntry
from rooms.services import directory as directory_services


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    who: str
    # False when the account was already there: its password was left as it is, so it
    # may no longer be the demo one.
    created: bool = True

    def line(self) -> str:
        """One row of the logins table printed at start."""
        password = self.password if self.created else f"{self.password} (unless changed)"
        return f"  {self.username:<10} {password:<20} {self.who}"


CHAT_PEOPLE = [
    # localpart, display name, password, what they show
    ("carol", "Carol Creator", "carol-demo-pass", "creates rooms in Engineering and Sales"),
    ("paul", "Paul Plain", "paul-demo-pass", "in scope, no create rights"),
    ("erin", "Erin Engineer", "erin-demo-pass", "creates rooms in Support"),
    ("olivia", "Olivia Outsider", "olivia-demo-pass", "outside every category but Support"),
]
# The demo's directory (accounts.directory.server): the chat people in OUs, two more in
# Support's teams, and Support engineers (with Tier 2 nested in it) in Support's scope.
DIRECTORY_SEED = Seed(
    people=[
        DirectoryPerson("carol", "Carol Creator", ("Engineering",), "carol-demo-pass"),
        DirectoryPerson("paul", "Paul Plain", ("Engineering",), "paul-demo-pass"),
        DirectoryPerson("erin", "Erin Engineer", ("Support",), "erin-demo-pass"),
        DirectoryPerson("olivia", "Olivia Outsider", ("Sales",), "olivia-demo-pass"),
        DirectoryPerson("dana", "Dana Desk", ("Support",), "dana-demo-pass"),
        DirectoryPerson("sam", "Sam Second", ("Support", "Tier 2"), "sam-demo-pass"),
    ],
    groups=[
        Group("Tier 2", people=("sam",)),
        Group("Support engineers", people=("erin", "dana"), groups=("Tier 2",)),
    ],
)
DIRECTORY_SCOPE = ("Support", "cn=Support engineers,ou=Groups")  # under the base

LOCAL_ACCOUNTS = [
    ("admin", "admin-demo-pass", "portal administrator", {"is_portal_admin": True}),
    ("auditor", "auditor-demo-pass", "auditor", {"is_auditor": True}),
    (
        "compliance",
        "compliance-demo-pass",
        "compliance officer",
        {"is_compliance_officer": True},
    ),
]
CATEGORIES = [
    # name, description, invitations allowed, creators, scope, chat options
    (
        "Engineering",
        "Engineering teams and projects",
        True,
        ["carol"],
        ["carol", "paul", "erin"],
        DEFAULT_OPTIONS,
    ),
    # Customer papers stay out of chat: file upload is off in Sales' rooms.
    (
        "Sales",
        "Sales and customer accounts",
        False,
        ["carol"],
        ["carol", "paul"],
        ChatOptions(file_uploads=False),
    ),
    (
        "Support",
        "Customer support and escalations",
        True,
        ["erin"],
        ["erin", "paul", "olivia"],
        DEFAULT_OPTIONS,
    ),
]
# An add-in of Engineering's, shown in one of its rooms: name, address, room.
DEMO_ADD_IN = ("Release calendar", "https://calendar.example.org/releases", "Platform team")
ROOMS = [
    # name, description, category, privacy, auditorium, manager, members
    (
        "Engineering announcements",
        "News for all engineers",
        "Engineering",
        Privacy.OPEN,
        True,
        "carol",
        [],
    ),
    (
        "Platform team",
        "Day-to-day platform work",
        "Engineering",
        Privacy.CLOSED,
        False,
        "carol",
        ["erin"],
    ),
    (
        "Incident war room",
        "Live incidents only",
        "Engineering",
        Privacy.SECRET,
        False,
        "carol",
        ["erin"],
    ),
    ("Sales pipeline", "Deals in progress", "Sales", Privacy.CLOSED, False, "carol", ["paul"]),
    ("Deals desk", "Ask about pricing and contracts", "Sales", Privacy.OPEN, False, "carol", []),
    ("Escalations", "Customer escalations", "Support", Privacy.SECRET, False, "erin", ["paul"]),
]


def _chat_person_missing(client: IndexedChatBackend[MatrixChatBackend], localpart: str) -> bool:
    try:
        client.get_user(client.user_id_for(localpart))
    except ChatNotFound:
        return True
    return False


def seed_demo(client: IndexedChatBackend[MatrixChatBackend]) -> list[DemoLogin]:
    """Make what is missing of the demo world, on the chat server and in the portal.

    Never overwrites: an existing person, account, category or room is left exactly as
    it is (password, roles and scope included), so running it on every start is safe.
    """
    logins = []
    for localpart, display_name, password, who in CHAT_PEOPLE:
        created = _chat_person_missing(client, localpart)
        if created:
            client.ensure_user(
                localpart,
                password=password,
                display_name=display_name,
                email=f"{localpart}@example.org",
            )
        logins.append(DemoLogin(localpart, password, f"{display_name}: {who}", created))
    if directory.configured():  # they sign in with their directory password
        for person in DIRECTORY_SEED.people:
            if person.username not in {p[0] for p in CHAT_PEOPLE}:
                who = f"{person.name}: in the directory only, in Support through its group"
                logins.append(DemoLogin(person.username, person.password, who))
    for username, password, who, flags in LOCAL_ACCOUNTS:
        created = not User.objects.filter(username=username).exists()
        if created:
            user = User(username=username, **flags)
            user.set_password(password)
            user.save()
        logins.append(DemoLogin(username, password, f"local account, {who}", created))

    existing = {c.name: c for c in client.list_categories()}
    categories = {}
    for name, description, invitations, creators, scope, options in CATEGORIES:
        category = existing.get(name)
        if category is None:
            category = client.create_category(
                name=name,
                description=description,
                invitations_allowed=invitations,
                creators=[client.user_id_for(c) for c in creators],
                options=options,
            )
            client.add_to_category_scope(category.id, [client.user_id_for(u) for u in scope])
            if name == DIRECTORY_SCOPE[0] and directory.configured():
                admin = User.objects.get(username="admin")
                group = f"{DIRECTORY_SCOPE[1]},{settings.DIRECTORY_BASE}"
                directory_services.principal_add(actor=admin, category_id=category.id, dn=group)
        categories[name] = category

    add_in, _ = AddInEntry.objects.get_or_create(
        name=DEMO_ADD_IN[0],
        defaults={"url": DEMO_ADD_IN[1], "category_ids": [categories["Engineering"].id]},
    )
    for name, description, category_name, privacy, auditorium, manager, members in ROOMS:
        if client.room_name_taken(name):
            continue
        manager_id = client.user_id_for(manager)
        member_ids = [client.user_id_for(m) for m in members]
        if privacy is not Privacy.OPEN:
            member_ids.insert(0, manager_id)
        made = client.create_room(
            RoomSettings(
                name=name,
                description=description,
                category_id=categories[category_name].id,
                privacy=privacy,
                auditorium=auditorium,
                invitations=Invitations.INHERIT,
            ),
            managers=[manager_id],
            members=member_ids,
        )
        if name == DEMO_ADD_IN[2]:
            client.attach_add_in(made.id, AddIn(str(add_in.pk), add_in.name, add_in.url))
    return logins
