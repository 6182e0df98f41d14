"""Recorded work is of a kind the portal knows: each kind has its label, its page and its
way of being finished; a kind nothing carries out is never recorded."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from rooms.models import Operation
from rooms.services.directory import Naming

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


@pytest.mark.django_db(transaction=True)
def test_a_naming_recorded_before_its_payload_was_typed_is_read_after_the_migration():
    """Operations left unfinished by the earlier code (`named` / `scope` for the row taken
    out) are read as `Naming`s once 0025 has run, and put back by its reversal."""
    executor = MigrationExecutor(connection)
    executor.migrate([("rooms", "0024_operation_kinds")])
    old = executor.loader.project_state([("rooms", "0024_operation_kinds")]).apps
    Old = old.get_model("rooms", "Operation")
    room = Old.objects.create(
        kind="role.directory",
        target_id="!r:portal.test",
        change={"named": 7, "dn": "cn=t2,dc=x", "principal": "Group: Tier 2"},
    )
    scope = Old.objects.create(
        kind="category.scope",
        target_id="!c:portal.test",
        change={"dn": "cn=t2,dc=x", "principal": "Group: Tier 2", "standing": "allowed"},
    )
    people = Old.objects.create(
        kind="category.scope",
        target_id="!c:portal.test",
        change={"add": ["@a:portal.test"], "remove": [], "deny": [], "undeny": []},
    )
    executor = MigrationExecutor(connection)
    executor.migrate([("rooms", "0025_naming_payload")])

    def read(pk: object) -> Operation:
        return Operation.objects.get(pk=pk)

    assert Naming.of(read(room.pk)) == Naming("cn=t2,dc=x", "Group: Tier 2", taking_out=7)
    assert Naming.of(read(scope.pk)) == Naming("cn=t2,dc=x", "Group: Tier 2", standing="allowed")
    assert Naming.recorded_in(read(room.pk))
    assert Naming.recorded_in(read(scope.pk))
    assert not Naming.recorded_in(read(people.pk))
    assert read(people.pk).change["add"] == ["@a:portal.test"]

    executor = MigrationExecutor(connection)
    executor.migrate([("rooms", "0024_operation_kinds")])
    assert old.get_model("rooms", "Operation").objects.get(pk=room.pk).change == {
        "named": 7,
        "dn": "cn=t2,dc=x",
        "principal": "Group: Tier 2",
        "role": "",
    }
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
