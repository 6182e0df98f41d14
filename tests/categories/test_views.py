"""The categories page, for every kind of person."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from accounts.models import User
from tests.factories import AdministratorFactory, AuditorFactory

pytestmark = pytest.mark.django_db
CATEGORIES = reverse("categories:list")


def as_portal_user(client, chat_user) -> User:
    user = User.objects.create(username=chat_user.user_id, chat_id=chat_user.user_id)
    client.force_login(user)
    return user


def test_anonymous_people_are_sent_to_log_in(client):
    response = client.get(CATEGORIES)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_dashboard_leads_to_the_categories(client, category_world):
    as_portal_user(client, category_world["creator"])
    assert client.get(reverse("dashboard"))["Location"] == CATEGORIES


def test_creator_sees_their_categories_from_the_index(client, category_world):
    as_portal_user(client, category_world["creator"])
    response = client.get(CATEGORIES)
    assert response.status_code == 200
    assert [c.pk for c in response.context["categories"]] == [category_world["category"].id]
    assert category_world["category"].name in response.content.decode()


def test_person_without_create_rights_sees_how_to_get_them(client, category_world):
    as_portal_user(client, category_world["member"])
    response = client.get(CATEGORIES)
    assert response.context["categories"] == []
    assert "You cannot create rooms in any category yet" in response.content.decode()


def test_administrator_sees_every_category(client, category_world):
    client.force_login(AdministratorFactory())
    ids = {c.pk for c in client.get(CATEGORIES).context["categories"]}
    assert category_world["category"].id in ids


def test_auditor_without_chat_id_has_no_create_rights(client, category_world):
    client.force_login(AuditorFactory())
    assert client.get(CATEGORIES).context["categories"] == []


def test_with_the_chat_server_down_pages_answer_from_the_index(client, category_world, chat_down):
    as_portal_user(client, category_world["creator"])
    response = client.get(CATEGORIES)
    assert response.status_code == 200
    assert category_world["category"].name in response.content.decode()
    # A change needs the server: it is refused, clearly, and the input is kept.
    create = client.post(
        reverse("rooms:create"),
        {
            "name": "Kept name",
            "category": category_world["category"].id,
            "privacy": "closed",
            "invitations": "inherit",
            "submission": str(uuid.uuid4()),
        },
    )
    assert create.status_code == 503
    page = create.content.decode()
    assert "The room was not created" in page
    assert "Kept name" in page


def test_only_get_is_allowed(client, category_world):
    as_portal_user(client, category_world["creator"])
    assert client.post(CATEGORIES).status_code == 405


def test_many_categories_are_paged_and_searched_in_the_database(
    client, chat, category_world, monkeypatch
):
    creator = category_world["creator"].user_id
    stem = uuid.uuid4().hex[:6]
    for n in range(3):
        made = chat.create_category(name=f"Paged {stem} {n}", description="", creators=[creator])
        chat.add_to_category_scope(made.id, [creator])
    monkeypatch.setattr("rooms.views.categories.CATEGORIES_PER_PAGE", 2)
    as_portal_user(client, category_world["creator"])
    first = client.get(CATEGORIES)
    assert len(first.context["categories"]) == 2
    assert first.context["page"].paginator.count == 4  # and the fixture's own
    assert "Page 1 of 2" in first.content.decode()
    second = client.get(CATEGORIES, {"page": 2})
    assert len(second.context["categories"]) == 2
    shown = {c.pk for c in first.context["categories"] + second.context["categories"]}
    assert len(shown) == 4
    searched = client.get(CATEGORIES, {"q": f"PAGED {stem} 2"})  # any letter case
    assert [c.name for c in searched.context["categories"]] == [f"Paged {stem} 2"]
    nothing = client.get(CATEGORIES, {"q": "no such category at all"})
    assert "No category matches this search" in nothing.content.decode()
