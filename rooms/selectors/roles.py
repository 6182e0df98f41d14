"""Reads of the roles area: the people a Manager may give a role to."""

from __future__ import annotations

from dataclasses import dataclass

from rooms.backend.records import Category, Role, Room
from rooms.index import chat_backend
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
