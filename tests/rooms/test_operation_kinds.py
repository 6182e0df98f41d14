"""Recorded work is of a kind the portal knows: each kind has its label, its page and its
way of being finished; a kind nothing carries out is never recorded."""

from __future__ import annotations

import pytest

from rooms.models import Operation

pytestmark = pytest.mark.django_db

Kind = Operation.Kind


def test_a_kind_nothing_carries_out_is_never_recorded():
    with pytest.raises(ValueError, match=r"room\.nonsense"):
        Operation.objects.create(kind="room.nonsense", target_id="!r:portal.test")
    assert not Operation.objects.exists()


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_has_its_label_and_its_page(kind):
    target = "@ann:portal.test" if kind is Kind.PERSON_REMOVE else "!r:portal.test"
    op = Operation.objects.create(kind=kind, target_id=target)
    assert op.label == kind.label
    page = op.get_absolute_url()
    assert page.startswith("/")
    if kind in Operation.JOBS:
        assert str(op.pk) in page or page == "/operations/"
    named = {Kind.PERSON_REMOVE: "person", Kind.CATEGORY_SCOPE: "category"}
    assert op.target_kind == named.get(kind, "category" if kind is Kind.CATEGORY_ADOPT else "room")


def test_a_room_change_is_undone_the_others_are_retried():
    undone = {k for k in Kind if Operation(kind=k).of_room}
    assert undone == {k for k in Kind if k.startswith("room.")}
    assert not undone & Operation.JOBS
