"""A room and its category read to be shown: the same answers as read at once, with each
role's people read when asked, so a page's cost does not grow with the room."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from rooms import index, jobs
from rooms.chatserver.policy import name_key
from rooms.models import CategoryPerson, IndexedCategory, IndexedRoom, RoomName, RoomPerson

pytestmark = pytest.mark.django_db
ROOM, CATEGORY, MANAGER = "!big:example.org", "!space:example.org", "@manager:example.org"


def indexed(members: int) -> None:
    """A Closed room of `members` Members (the first named), with a Manager and someone
    knocking, in a category whose scope holds them all; written to the index only."""
    people = [f"@person{i:05}:example.org" for i in range(members)]
    category = IndexedCategory.objects.create(
        category_id=CATEGORY, name="Big", name_key="big", room_ids=[ROOM]
    )
    CategoryPerson.objects.bulk_create(
        [CategoryPerson(category=category, user_id=p, standing="allowed") for p in people]
        + [
            CategoryPerson(category=category, user_id=MANAGER, standing="allowed"),
            CategoryPerson(category=category, user_id=MANAGER, standing="creator"),
            CategoryPerson(category=category, user_id="@gone:example.org", standing="denied"),
        ]
    )
    room = IndexedRoom.objects.create(
        room_id=ROOM,
        category=category,
        name="Everyone",
        name_key="everyone",
        privacy="closed",
        invitations="inherit",
        names={people[0]: "Zoë Quist", MANAGER: "Mona Manager"},
    )
    RoomPerson.objects.bulk_create(
        [RoomPerson(room=room, user_id=p, role="member") for p in people]
        + [
            RoomPerson(room=room, user_id=MANAGER, role="manager"),
            RoomPerson(room=room, user_id="@asking:example.org", role="knocking"),
        ]
    )


def test_a_room_read_to_show_answers_as_one_read_at_once() -> None:
    indexed(members=5)
    at_once, shown = index.room(ROOM), index.room_to_show(ROOM)
    assert "@person00003:example.org" in shown.members
    assert "@nobody:example.org" not in shown.members
    assert len(shown.members) == 5
    assert len(shown.managers) == 1
    assert not shown.presenters
    assert isinstance(shown.members, index.PeopleWhenAsked)
    assert shown.members.first(2) == ["@person00000:example.org", "@person00001:example.org"]
    assert shown.label("@person00000:example.org") == at_once.label("@person00000:example.org")
    assert shown.label("@person00004:example.org") == "@person00004:example.org"
    assert shown.members | {"@new:example.org"} == at_once.members | {"@new:example.org"}
    assert shown == at_once
    assert dict(shown.names) == dict(at_once.names)
    category_at_once, category_shown = index.category(CATEGORY), index.category_to_show(CATEGORY)
    assert category_shown.in_scope(MANAGER)
    assert category_shown.is_creator(MANAGER)
    assert not category_shown.in_scope("@gone:example.org")
    assert category_shown == category_at_once


@pytest.fixture
def whole_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many people each whole read of a role (or of the names) brought in."""
    sizes: list[int] = []
    people_all, names_all = index.PeopleWhenAsked._all, index.NamesWhenAsked._all

    def people(self: index.PeopleWhenAsked) -> frozenset[str]:
        held = people_all(self)
        sizes.append(len(held))
        return held

    def names(self: index.NamesWhenAsked) -> dict[str, str]:
        held = names_all(self)
        sizes.append(len(held))
        return held

    monkeypatch.setattr(index.PeopleWhenAsked, "_all", people)
    monkeypatch.setattr(index.NamesWhenAsked, "_all", names)
    return sizes


def test_the_room_page_reads_no_role_whole(client, whole_reads, django_assert_max_num_queries):
    indexed(members=300)
    client.force_login(User.objects.create(username="manager", chat_id=MANAGER))
    with django_assert_max_num_queries(30):
        page = client.get(reverse("rooms:detail", args=[ROOM]))
    assert isinstance(page.context["room"].members, index.PeopleWhenAsked)
    assert page.context["counts"]["member"] == 300
    assert len(page.context["lists"]["member"]) == 100
    assert page.context["lists"]["member"][0] == (
        "@person00000:example.org",
        "Zoë Quist (@person00000:example.org)",
    )
    assert "… and 200 more" in page.text
    assert max(whole_reads, default=0) <= 1  # the one person knocking, nobody else
    # Found by a part of the name, which reads the names (a search, not a page view).
    found = client.get(reverse("roles:panel", args=[ROOM]), {"q": "quist"}, HTTP_HX_REQUEST="true")
    assert found.context["lists"]["member"] == [
        ("@person00000:example.org", "Zoë Quist (@person00000:example.org)")
    ]


def test_the_room_page_costs_the_same_queries_whatever_the_room_size(
    client, django_assert_num_queries
):
    indexed(members=150)
    client.force_login(User.objects.create(username="manager", chat_id=MANAGER))
    url = reverse("rooms:detail", args=[ROOM])
    client.get(url)  # the session and its caches, warm
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    RoomPerson.objects.bulk_create(
        [
            RoomPerson(room_id=ROOM, user_id=f"@more{i:05}:example.org", role="member")
            for i in range(3000)
        ]
    )
    with django_assert_num_queries(len(small)):
        assert client.get(url).context["counts"]["member"] == 3150


def test_a_name_claimed_by_a_change_that_died_is_given_back_by_the_job_runner() -> None:
    """A rename holds no transaction: a process killed part-way leaves its claimed name,
    which the job runner gives back once no change could still be making it."""
    assert index.claim_name("Renamed then killed")
    assert index.claim_name("Being created now")
    RoomName.objects.filter(name_key=name_key("Renamed then killed")).update(
        claimed_at=timezone.now() - index.CLAIM_STALE - timedelta(seconds=1)
    )
    assert jobs.turn() >= 1
    assert not index.name_taken("renamed then killed")
    assert index.name_taken("Being created now")  # a change may still be making it
