"""Groups and OUs of a real directory (slapd) as a room's Members, Managers and
Presenters: named by a Manager from the room's page, the API and roomctl, held to the
rules, kept in step when people move between groups, each change audited with its cause."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from ldap3 import MODIFY_ADD, MODIFY_DELETE

from accounts.directory import normal_dn
from accounts.directory.server import group_dn
from portal.models import AuditEntry, Outcome
from rooms import operations
from rooms.backend.errors import ChatServerUnavailable
from rooms.backend.matrix.client import MatrixChatBackend
from rooms.backend.records import Privacy, Role
from rooms.models import DirectoryRole, DirectoryRoleGrant, Operation
from rooms.services import directory as directory_services
from rooms.services import directory_roles
from rooms.services.categories import CategoryInvalid
from rooms.services.directory import Naming
from rooms.services.roles import RoleRefused
from tests.api.test_api import call, make_token
from tests.api.test_roomctl import shell
from tests.conftest import modify, portal_user
from tests.factories import AdministratorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.chat]


@pytest.fixture
def support(org):
    """The category's scope names the OU Support (Cy and Di); Ed (Sales) is outside it."""
    ou = normal_dn("ou=Support,ou=People," + org["connection"].base)
    directory_services.principal_add(
        actor=AdministratorFactory(), category_id=org["category"].id, dn=ou
    )
    return org


def test_a_manager_makes_a_group_the_members_of_a_closed_room_and_moves_in_the_directory_follow(
    support, chat, make_room, client, creator
):
    ids, people = support["id"], support["people"]
    room = make_room()  # Closed; its creator is its Manager
    client.force_login(creator)
    page = client.get(reverse("rooms:detail", args=[room.id]))
    assert "Find a group or an OU" in page.text
    found = client.get(
        reverse("roles:directory", args=[room.id]), {"q": "support"}, HTTP_HX_REQUEST="true"
    )
    assert "Group: Support engineers" in found.text
    assert "Make Members…" in found.text
    assert "Make Presenters…" not in found.text  # not an auditorium
    assert "<html" not in found.text
    assert (
        "Group: Tier 2"
        in client.get(reverse("roles:directory", args=[room.id]), {"q": "tier"}).text
    )

    picked = client.get(
        reverse("roles:people", args=[room.id]),
        {"role": "member", "q": "tier"},
        HTTP_HX_REQUEST="true",
    )
    assert "Group: Tier 2" in picked.text  # the people picker finds groups too, marked
    assert "Group of the directory" in picked.text

    add = reverse("roles:directory_add", args=[room.id])
    dn = normal_dn(group_dn("Support engineers"))
    preview = client.post(add, {"dn": dn, "role": "member"})
    assert "2 people are given a role" in preview.text
    ou = normal_dn("ou=Support,ou=People," + support["connection"].base)
    offered = client.post(add, {"dn": ou, "role": "manager"})  # an OU: the other way offered
    assert "Only the people right in this OU, not in the OUs under it…" in offered.text
    assert not DirectoryRole.objects.exists()  # nothing yet
    done = client.post(add, {"dn": dn, "role": "member", "confirm": "1"}, follow=True)
    assert "Done: 2 given a role." in done.text
    assert "Group: Support engineers</bdi>, 2 people" in done.text
    assert "member of Support engineers via Tier 2" in done.text  # why Cy is a Member
    assert {ids["cy"], ids["di"]} <= chat.get_room(room.id).members  # on the chat server
    named = AuditEntry.objects.get(action="role.directory")
    assert (named.outcome, named.after["principal"]) == (
        Outcome.SUCCEEDED,
        "Group: Support engineers",
    )
    why = AuditEntry.objects.get(action="directory.role", after__person=ids["cy"])
    assert (why.after["change"], why.after["cause"]) == (
        "added",
        "member of Support engineers via Tier 2",
    )
    explained = client.get(reverse("roles:explain", args=[room.id]), {"person": ids["cy"]})
    assert "Member: member of Support engineers via Tier 2" in explained.text
    assert "In scope: in OU: Support" in explained.text  # the OU behind the scope

    # Cy moves out of Tier 2 (stays in the OU, so in scope); Ann is not in scope yet.
    modify(support, "Tier 2", MODIFY_ADD, people["ann"])  # a group is never empty
    modify(support, "Tier 2", MODIFY_DELETE, people["cy"])
    assert directory_roles.keep_in_step(force=True) == 1
    now = chat.get_room(room.id)
    assert ids["cy"] not in now.members
    assert ids["ann"] not in now.members  # outside the category's scope
    assert ids["cy"] in chat.get_category(support["category"].id).allowed_members
    left = AuditEntry.objects.get(action="directory.role", after__change="removed")
    assert (left.after["person"], left.after["cause"]) == (
        ids["cy"],
        "no longer in Group: Support engineers",
    )
    # Cy comes back: a Member again at the next read.
    modify(support, "Tier 2", MODIFY_ADD, people["cy"])
    assert directory_roles.keep_in_step(force=True) == 1
    assert ids["cy"] in chat.get_room(room.id).members
    assert directory_roles.keep_in_step(force=True) == 0  # nothing more to do


def test_the_rules_hold_for_a_group_s_people_and_presenters_come_from_the_members(
    support, chat, make_room, creator
):
    ids = support["id"]
    room = make_room(auditorium=True)
    chat.add_to_role(room.id, Role.MEMBER, [ids["di"]])  # a Member by name
    engineers = group_dn("Support engineers")
    presenters = directory_roles.principal_add(
        actor=creator, room_id=room.id, role=Role.PRESENTER, dn=engineers
    )
    assert presenters.added == (("presenter", ids["di"]),)
    assert presenters.skipped == (
        (ids["cy"], f"{ids['cy']} must be a Member before becoming a Presenter."),
    )
    managers = directory_roles.principal_add(
        actor=creator, room_id=room.id, role=Role.MANAGER, dn=group_dn("Blocked")
    )
    assert managers.added == ()
    kept_out = dict(managers.skipped)  # the whole room's: Cy is still no Member
    assert "is not in the scope of the category" in kept_out[ids["ed"]]
    assert ids["cy"] in kept_out

    # Tier 2 as Members: Cy is a Member, and so a Presenter in the same change.
    members = directory_roles.principal_add(
        actor=creator, room_id=room.id, role=Role.MEMBER, dn=group_dn("Tier 2")
    )
    assert {("member", ids["cy"]), ("presenter", ids["cy"])} <= set(members.added)
    assert ids["cy"] in chat.get_room(room.id).presenters
    assert directory_roles.keep_in_step(force=True) == 0

    # Tier 2 as another room's Managers: Cy manages it, and is not a Member by that alone.
    other = make_room()
    directory_roles.principal_add(
        actor=creator, room_id=other.id, role=Role.MANAGER, dn=group_dn("Tier 2")
    )
    held = chat.get_room(other.id)
    assert ids["cy"] in held.managers
    assert ids["cy"] not in held.members

    open_room = make_room(privacy=Privacy.OPEN)
    with pytest.raises(RoleRefused, match="Open rooms have no member list"):
        directory_roles.principal_preview(
            actor=creator, room_id=open_room.id, role=Role.MEMBER, dn=engineers
        )


def test_taking_a_group_off_shows_who_loses_which_role_and_someone_in_by_name_keeps_it(
    support, chat, make_room, creator, client
):
    ids = support["id"]
    room = make_room()
    chat.add_to_role(room.id, Role.MEMBER, [ids["di"]])  # a Member by name first
    directory_roles.principal_add(
        actor=creator, room_id=room.id, role=Role.MEMBER, dn=group_dn("Support engineers")
    )
    assert DirectoryRoleGrant.objects.get(user_id=ids["di"]).added is False
    [named] = DirectoryRole.objects.all()
    client.force_login(creator)
    remove = reverse("roles:directory_remove", args=[room.id])
    asked = client.post(remove, {"named": named.pk})
    assert "1 person loses a role" in asked.text
    assert f"{ids['cy']} (member)" in asked.text
    assert ids["di"] not in asked.text
    gone = client.post(remove, {"named": named.pk, "confirm": "1"}, follow=True)
    assert "Done: 1 lost a role." in gone.text
    now = chat.get_room(room.id)
    assert ids["cy"] not in now.members
    assert ids["di"] in now.members
    assert not DirectoryRole.objects.exists()


def test_through_the_api_a_manager_names_a_group_and_someone_else_is_refused_and_audited(
    support, client, make_room, creator, category_world
):
    ids = support["id"]
    room = make_room()
    token = make_token(client, creator)
    found = call(client, "GET", f"/rooms/{room.id}/directory/principals", token, q="tier").json()
    assert [(p["label"], p["kind"]) for p in found] == [("Group: Tier 2", "group")]
    path = f"/rooms/{room.id}/directory"
    body = {"role": "member", "dn": found[0]["dn"]}
    asked = call(client, "POST", path, token, body, dry_run="true").json()
    assert (asked["applied"], asked["added"]) == (False, [{"role": "member", "person": ids["cy"]}])
    assert not DirectoryRole.objects.exists()
    done = call(client, "POST", path, token, body).json()
    assert done["added"] == [{"role": "member", "person": ids["cy"]}]
    [listed] = call(client, "GET", path, token).json()
    assert (listed["name"], listed["role"], listed["people"]) == ("Tier 2", "member", 1)
    again = call(client, "POST", path, token, body)
    assert (again.status_code, again.json()["field"]) == (422, "principal")

    member = portal_user(category_world["member"])  # in scope, not the room's Manager
    other = make_token(client, member)
    refused = call(client, "POST", path, other, body | {"role": "manager"})
    assert refused.status_code == 403
    assert AuditEntry.objects.filter(action="role.directory", outcome=Outcome.DENIED).exists()
    assert (
        call(client, "GET", f"/rooms/{room.id}/directory/principals", other, q="t").status_code
        == 403
    )

    what_if = call(client, "DELETE", f"{path}/{listed['id']}", token, dry_run="true").json()
    assert what_if["removed"] == [{"role": "member", "person": ids["cy"]}]
    gone = call(client, "DELETE", f"{path}/{listed['id']}", token).json()
    assert (gone["applied"], gone["removed"]) == (True, [{"role": "member", "person": ids["cy"]}])


@pytest.mark.django_db(transaction=True)
def test_roomctl_names_a_group_for_a_role_lists_it_and_takes_it_off(
    support, live_server, make_room, creator
):
    ids = support["id"]
    room = make_room()
    manager = shell(live_server, creator)
    what_if = manager(f"roomctl role group '{room.id}' 'Support engineers' --role member --what-if")
    assert what_if.stdout.startswith("Would do. 2 given the role:"), what_if.stderr
    done = manager(f"roomctl role group '{room.id}' 'Support engineers' --role member")
    assert done.stdout.startswith("Done. 2 given the role:"), done.stderr
    assert f"{ids['cy']} (member)" in done.stdout
    listed = manager(f"roomctl role groups '{room.id}'")
    assert "Support engineers" in listed.stdout
    unasked = manager(f"roomctl role ungroup '{room.id}' 'Support engineers'")
    assert unasked.returncode == 2  # not confirmed
    gone = manager(f"roomctl role ungroup '{room.id}' 'Support engineers' --yes")
    assert gone.stdout.startswith("Done. 2 lost the role:"), gone.stderr


def test_someone_the_chat_server_refuses_is_audited_as_failed_and_given_the_role_at_the_next_read(
    support, chat, make_room, creator, monkeypatch
):
    ids = support["id"]
    room = make_room()

    def refusing(self, *args, **kwargs):
        raise ChatServerUnavailable("The chat server cannot be reached.")

    monkeypatch.setattr(MatrixChatBackend, "add_to_role", refusing)
    change = directory_roles.principal_add(
        actor=creator, room_id=room.id, role=Role.MEMBER, dn=group_dn("Tier 2")
    )
    assert (change.added, change.failed) == ((), (("member", ids["cy"]),))
    failed = AuditEntry.objects.get(action="directory.role", outcome=Outcome.FAILED)
    assert failed.after["person"] == ids["cy"]
    assert "cannot be reached" in failed.error
    assert not DirectoryRoleGrant.objects.exists()

    monkeypatch.undo()
    assert directory_roles.keep_in_step(force=True) == 1
    assert ids["cy"] in chat.get_room(room.id).members
    assert DirectoryRoleGrant.objects.get(user_id=ids["cy"]).added is True


def test_a_change_whose_process_died_is_audited_and_finished_by_retry(
    support, chat, make_room, creator, client
):
    """The Manager's process named Tier 2 as Members and died before anyone got the role:
    the job runner writes the entry it never wrote (partly done) and lists it; Retry gives
    the role."""
    ids = support["id"]
    room = make_room()
    named = DirectoryRole.objects.create(
        room_id=room.id,
        role="member",
        kind="group",
        dn=normal_dn(group_dn("Tier 2")),
        name="Tier 2",
    )
    op = Operation.objects.create(
        kind=directory_roles.KIND,
        target_id=room.id,
        target_label=room.name,
        actor=creator,
        change={"dn": named.dn, "principal": "Group: Tier 2", "role": "member"},
    )
    operations.resume_abandoned(now=timezone.now() + timedelta(minutes=5))
    op.refresh_from_db()
    assert op.status == Operation.Status.UNFINISHED
    entry = AuditEntry.objects.get(action="role.directory", target_id=room.id)
    assert (entry.outcome, entry.target_kind) == (Outcome.PARTIAL, "room")

    client.force_login(AdministratorFactory())
    client.post(reverse("operations:retry", args=[op.pk]), follow=True)
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert ids["cy"] in chat.get_room(room.id).members
    retried = AuditEntry.objects.get(action="operation.retry", target_id=room.id)
    assert retried.outcome == Outcome.SUCCEEDED


def test_taking_a_group_off_whose_process_died_is_finished_by_retry(
    support, chat, make_room, creator, client
):
    ids = support["id"]
    room = make_room()
    directory_roles.principal_add(
        actor=creator, room_id=room.id, role=Role.MEMBER, dn=group_dn("Tier 2")
    )
    [named] = DirectoryRole.objects.all()
    op = Operation.objects.create(  # as a process that died while taking it off left it
        kind=directory_roles.KIND,
        target_id=room.id,
        target_label=room.name,
        actor=creator,
        status=Operation.Status.UNFINISHED,
        change=asdict(Naming(named.dn, str(named), role=named.role, taking_out=named.pk)),
    )
    client.force_login(AdministratorFactory())
    client.post(reverse("operations:retry", args=[op.pk]), follow=True)
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert ids["cy"] not in chat.get_room(room.id).members
    assert not DirectoryRole.objects.exists()


def test_a_managers_group_that_empties_leaves_the_room_its_last_manager(
    support, chat, make_room, creator
):
    ids, people = support["id"], support["people"]
    room = make_room()
    directory_roles.principal_add(
        actor=creator, room_id=room.id, role=Role.MANAGER, dn=group_dn("Tier 2")
    )
    chat.remove_from_role(room.id, Role.MANAGER, [creator.chat_id])  # Cy is the only one now
    modify(support, "Tier 2", MODIFY_ADD, people["ann"])  # outside the scope: not a Manager
    modify(support, "Tier 2", MODIFY_DELETE, people["cy"])
    assert directory_roles.keep_in_step(force=True) == 0
    assert chat.get_room(room.id).managers == {ids["cy"]}
    kept = AuditEntry.objects.get(action="directory.role", after__change="kept")
    assert kept.after["person"] == ids["cy"]
    assert kept.after["cause"] == (
        f"no longer in Group: Tier 2; {ids['cy']} stays a Manager: a room keeps at least one "
        "Manager."
    )
    assert directory_roles.keep_in_step(force=True) == 0  # from now on as if named
    assert chat.get_room(room.id).managers == {ids["cy"]}


def test_of_two_managers_naming_one_group_at_once_the_second_is_told(
    support, make_room, creator, monkeypatch
):
    room = make_room()
    dn = normal_dn(group_dn("Support engineers"))
    checked = directory_roles._principal

    def the_other_manager_first(snapshot, room_, role, dn_):
        principal = checked(snapshot, room_, role, dn_)  # free when checked…
        DirectoryRole.objects.create(  # …and named by another Manager just after
            room_id=room_.id, role=role, kind=principal.kind, dn=principal.dn, name="theirs"
        )
        return principal

    monkeypatch.setattr(directory_roles, "_principal", the_other_manager_first)
    with pytest.raises(CategoryInvalid, match="just named by someone else"):
        directory_roles.principal_add(actor=creator, room_id=room.id, role=Role.MEMBER, dn=dn)
    assert DirectoryRole.objects.filter(room_id=room.id).count() == 1  # named once
    assert not DirectoryRoleGrant.objects.exists()  # nothing given twice, nor by this one
    entry = AuditEntry.objects.filter(action=directory_roles.KIND).latest("pk")
    assert entry.outcome == Outcome.FAILED
    assert "just named by someone else" in entry.error
