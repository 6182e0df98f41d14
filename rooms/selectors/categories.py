"""Reads of the categories area: where a person may create rooms, the category pages,
and people for a category's scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from accounts.models import User
from rooms import index
from rooms.backend.records import Category, Room
from rooms.index import chat_backend
from rooms.models import IndexedCategory
from rooms.selectors.roles import Candidate


def categories_with_create_rights(*, user: User) -> list[Category]:
    """The categories in which this person may create rooms; administrators may in all."""
    client = chat_backend()
    if user.is_administrator:
        return client.list_categories()
    if not user.chat_id:
        return []
    return client.find_categories_with_create_rights(user.chat_id)


@dataclass(frozen=True)
class CategoryChoice:
    """A category as a form offers it: no scope or Creators needed."""

    id: str
    name: str
    invitations_allowed: bool


def category_choices(*, user: User) -> list[CategoryChoice]:
    """The categories where the person may create rooms, by name, for a form's list."""
    rows = category_rows(user=user).values_list("category_id", "name", "invitations_allowed")
    return [CategoryChoice(*row) for row in rows]


def category_rows(*, user: User, search: str = "") -> QuerySet[IndexedCategory]:
    """The categories listed to this person, by name, searchable by part of the name, for
    paging in the database: where they may create rooms (every one, for administrators)."""
    rows = IndexedCategory.objects.order_by("name_key", "category_id")
    if not user.is_administrator:
        rows = rows.filter(
            category_id__in=index.category_ids_with_create_rights(user.chat_id or "")
        )
    if search.strip():
        rows = rows.filter(name_key__contains=search.strip().casefold())
    return rows


def categories_page(
    *, user: User, search: str, page: str | None, per_page: int, people: bool
) -> tuple[Page[Any], list[Category] | list[IndexedCategory]]:
    """One page of the categories listed to this person: as records with their scope and
    Creators (`people`), or as the index's rows, for listing name and rooms alone."""
    found = Paginator(category_rows(user=user, search=search), per_page).get_page(page)
    if not people:
        return found, list(found)
    return found, chat_backend().get_categories([row.category_id for row in found])


def category_by_id(category_id: str) -> Category:
    return chat_backend().get_category(category_id)


def category_rooms(category: Category) -> list[Room]:
    """The rooms of a category that still exist, by name."""
    return chat_backend().get_rooms(category.room_ids)


def some_rooms(room_ids: list[str], *, limit: int) -> list[Room]:
    """The first of these rooms, to name a few of many."""
    return chat_backend().get_rooms(tuple(room_ids[:limit]))


def scope_candidates(*, category: Category, term: str) -> list[Candidate]:
    """People matching part of a name or chat ID, and where they stand in the category."""
    term = term.strip()
    if len(term) < 2:
        return []
    found = chat_backend().search_users(term, limit=20)
    standing = {
        **dict.fromkeys(category.allowed_members, "In scope"),
        **dict.fromkeys(category.denied_members, "Denied"),
    }
    return [
        Candidate(
            person.id,
            person.described,
            standing.get(person.id, ""),
        )
        for person in found
    ]
