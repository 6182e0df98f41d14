"""Reads of the roles area: the people a Manager may give a role to, and what one person
can do in a room."""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from rooms.backend.errors import ChatBackendError, ChatNotFound
from rooms.backend.records import Category, Role, Room, person_label
from rooms.index import NamesWhenAsked, PeopleWhenAsked, chat_backend
from rooms.models import DirectoryGrant, DirectoryScope
from rooms.permissions import Capability, effective_permissions
from rooms.services.directory_roles import reasons_in
from rooms.services.roles import role_problem


@dataclass(frozen=True)
class Candidate:
    """A person found by the people picker, and whether they may get the role."""

    id: str
    label: str
    problem: str


def role_candidates(*, room: Room, category: Category, role: Role, term: str) -> list[Candidate]:
    """People matching part of a name or chat ID, each with why they can't be picked."""
    term = term.strip()
    if len(term) < 2:
        return []
    found = chat_backend().search_users(term, limit=20)
    return [
        Candidate(
            person.id,
            person.described,
            "Already a " + role.label
            if person.id in room.principals(role)
            else role_problem(room, category, role, person.id),
        )
        for person in found
    ]


def role_list(
    *, room: Room, role: Role, term: str, limit: int
) -> tuple[int, list[tuple[str, str]]]:
    """A role's people as the roles panel lists them: how many match `term` (part of a
    chat ID or display name, letter case aside; everyone when empty), and the first
    `limit` of those by chat ID (chat IDs are lower case), each with its label. For a
    room read to be shown (`index.room_to_show`) with nothing typed, that is a count, the
    first few and their names: a room of 10,000 Members costs what one of 100 does."""
    people = room.principals(role)
    if not term and isinstance(people, PeopleWhenAsked):
        count, first = len(people), people.first(limit)
        if isinstance(room.names, NamesWhenAsked):
            room.names.read(first)
        return count, [(person, room.label(person)) for person in first]
    names = dict(room.names)  # read once, not a query a person
    found = [
        person
        for person in people
        if not term
        or term in person.casefold()
        or term in person_label(person, names.get(person, "")).casefold()
    ]
    first = heapq.nsmallest(limit, found)
    return len(found), [(person, person_label(person, names.get(person, ""))) for person in first]


@dataclass(frozen=True)
class Explanation:
    """What one person can do in a room, and why; or why that cannot be said."""

    person: str  # the chat ID asked about ("paul" is asked as @paul:server)
    display_name: str = ""
    capabilities: tuple[Capability, ...] = ()
    roles_held: tuple[str, ...] = ()
    through: tuple[str, ...] = ()  # the groups and OUs of the directory behind them
    unknown: bool = False  # the chat server has nobody by that ID
    problem: str = ""  # the chat server could not be asked


def explained(*, room: Room, category: Category, asked: str) -> Explanation:
    """The explainer's answer for a chat ID or login name: a person the chat server does
    not know is said so, not explained as if they were someone."""
    person = chat_backend().user_id_for(asked)
    try:
        principal = chat_backend().get_user(person)
    except ChatNotFound:
        return Explanation(person, unknown=True)
    except ChatBackendError as exc:
        return Explanation(person, problem=f"The person could not be looked up: {exc.detail}")
    return Explanation(
        person,
        display_name=principal.display_name,
        capabilities=tuple(effective_permissions(room, category, person)),
        roles_held=tuple(r.label for r in room.roles_of(person)),
        through=_through(room, category, person),
    )


def _through(room: Room, category: Category, person: str) -> tuple[str, ...]:
    """Which group or OU puts the person in the category's scope and gives them each of
    their roles in the room, said as "In scope: member of Support engineers via Tier 2"."""
    said = [
        f"{DirectoryScope.Standing(standing).label}: {reason}"
        for standing, reason in DirectoryGrant.objects.filter(
            scope__category_id=category.id, user_id=person
        ).values_list("scope__standing", "reason")
    ]
    held = reasons_in(room.id, people=[person])
    said += [f"{Role(role).label}: {why[person]}" for role, why in held.items() if person in why]
    return tuple(said)
