"""Groups and OUs of a real directory (slapd) in a category's scope: expanded with the
reason each person is in, applied on the chat server, and kept in step when people move
between groups, with every change audited with its cause."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone
from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, Connection, Server

import accounts.directory as directory
from accounts.directory.server import Person, Seed, group_dn, ou_dn, person_dn
from portal.models import AuditEntry, Outcome
from rooms import operations
from rooms.backend.records import Role
from rooms.models import DirectoryRead, DirectoryRole, DirectoryScope, Operation
from rooms.services import directory as directory_services
from rooms.services import directory_roles
from rooms.services.directory import Naming
from tests.api.test_api import call, make_token
from tests.api.test_roomctl import shell
from tests.conftest import modify
from tests.factories import AdministratorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.chat]


def test_a_group_expands_through_nested_groups_with_the_reason_and_an_ou_to_everyone_under_it(
    org,
):
    snapshot = directory.read()
    people = org["people"]
    support = directory.normal_dn(group_dn("Support engineers"))
    assert snapshot.expand(support) == {
        people["di"].username: "member of Support engineers",
        people["cy"].username: "member of Support engineers via Tier 2",
    }
    [engineering] = [p for p in directory.find("engineering") if p.kind == "ou"]
    assert engineering.label == "OU: Engineering"
    assert set(snapshot.expand(engineering.dn)) == {people["ann"].username, people["bob"].username}
    assert [p.label for p in directory.find("support")] == [
        "OU: Support",
        "Group: Support engineers",
    ]
    assert directory.find("*") == directory.find("a)(cn=*") == []  # a name, not a filter


def test_an_administrator_puts_a_group_in_scope_and_the_directory_keeps_it_in_step(
    org, chat, make_room, client
):
    category, ids, people = org["category"], org["id"], org["people"]
    admin = AdministratorFactory()
    client.force_login(admin)
    change = directory_services.principal_add(
        actor=admin, category_id=category.id, dn=group_dn("Support engineers")
    )
    assert sorted(change.added) == sorted([ids["cy"], ids["di"]])
    scope = chat.get_category(category.id)
    assert {ids["cy"], ids["di"]} <= scope.allowed_members
    assert chat.get_user(ids["cy"]).display_name == "Cy Example"  # a chat account made
    [named] = DirectoryScope.objects.filter(category_id=category.id)
    assert (str(named), named.people) == ("Group: Support engineers", 2)
    added = AuditEntry.objects.get(action="category.scope", target_id=category.id)
    assert added.after["principal"] == "Group: Support engineers"
    why = AuditEntry.objects.get(action="directory.scope", after__person=ids["cy"])
    assert why.after["cause"] == "member of Support engineers via Tier 2"
    page = client.get(reverse("people:detail", args=[ids["cy"]]))  # the person's page says why
    assert "member of Support engineers via Tier 2" in page.text

    # Cy holds a room role; then leaves Tier 2 in the directory, and Ann joins it.
    room = make_room()
    chat.add_to_role(room.id, Role.MEMBER, [ids["cy"]])
    modify(org, "Tier 2", MODIFY_ADD, people["ann"])
    modify(org, "Tier 2", MODIFY_DELETE, people["cy"])
    assert directory_roles.keep_in_step(force=True) == 2
    scope = chat.get_category(category.id)
    assert ids["cy"] not in scope.allowed_members
    assert ids["ann"] in scope.allowed_members
    assert ids["cy"] not in chat.get_room(room.id).members
    left = AuditEntry.objects.get(
        action="directory.scope", after__person=ids["cy"], after__change="removed"
    )
    assert left.after["cause"] == "no longer in Group: Support engineers"
    assert left.outcome == Outcome.SUCCEEDED
    assert directory_roles.keep_in_step(force=True) == 0  # nothing more to do
    assert DirectoryRead.objects.get().people == 5


def test_denied_beats_allowed_and_someone_in_by_name_stays_when_the_group_goes(org, chat):
    category, ids = org["category"], org["id"]
    admin = AdministratorFactory()
    chat.provision_user(org["people"]["ann"].username, display_name="Ann")
    chat.add_to_category_scope(category.id, [ids["ann"]])  # in by name, before any group
    directory_services.principal_add(
        actor=admin,
        category_id=category.id,
        dn=directory.normal_dn("ou=Engineering,ou=People," + org["connection"].base),
    )
    directory_services.principal_add(
        actor=admin, category_id=category.id, dn=group_dn("Blocked"), standing="denied"
    )
    scope = chat.get_category(category.id)
    assert {ids["ann"], ids["bob"]} <= scope.allowed_members
    assert ids["ed"] in scope.denied_members

    [ou] = DirectoryScope.objects.filter(category_id=category.id, kind="ou")
    change = directory_services.principal_remove(
        actor=admin, category_id=category.id, scope_id=ou.pk
    )
    assert change.removed == (ids["bob"],)  # Ann was in by name
    scope = chat.get_category(category.id)
    assert ids["ann"] in scope.allowed_members
    assert ids["bob"] not in scope.allowed_members


def test_a_directory_that_cannot_be_read_changes_nothing_and_is_told(org, chat, settings, client):
    category, ids = org["category"], org["id"]
    directory_services.principal_add(
        actor=AdministratorFactory(), category_id=category.id, dn=group_dn("Tier 2")
    )
    settings.DIRECTORY_URL = "ldap://127.0.0.1:9"  # nothing listens there
    assert directory_roles.keep_in_step(force=True) == 0
    assert ids["cy"] in chat.get_category(category.id).allowed_members
    state = DirectoryRead.objects.get()
    assert "could not be read" in state.error
    assert state.failed_at is not None
    told = client.get("/health/ready").json()["directory"]
    assert told["status"] == "unavailable"
    assert "could not be read" in told["error"]


def test_only_administrators_name_groups_and_a_refusal_is_audited(org, creator):
    with pytest.raises(PermissionDenied):
        directory_services.principal_add(
            actor=creator, category_id=org["category"].id, dn=group_dn("Tier 2")
        )
    refused = AuditEntry.objects.get(action="category.scope")
    assert refused.outcome == Outcome.DENIED
    assert not DirectoryScope.objects.exists()


def test_from_the_category_page_an_administrator_finds_previews_adds_then_takes_out_a_group(
    org, client, creator, chat, make_room
):
    category, ids = org["category"], org["id"]
    detail = reverse("categories:detail", args=[category.id])
    client.force_login(creator)
    assert (
        client.get(reverse("categories:directory", args=[category.id]), {"q": "s"}).status_code
        == 403
    )
    client.force_login(AdministratorFactory())
    assert "Groups and OUs of the directory" in client.get(detail).text
    found = client.get(reverse("categories:directory", args=[category.id]), {"q": "support"})
    assert "Group: Support engineers" in found.text
    assert "OU: Support" in found.text
    partial = client.get(
        reverse("categories:directory", args=[category.id]), {"q": "tier"}, HTTP_HX_REQUEST="true"
    )
    assert "Group: Tier 2" in partial.text
    assert "<html" not in partial.text

    people = client.get(
        reverse("categories:people", args=[category.id]), {"q": "support"}, HTTP_HX_REQUEST="true"
    )
    assert "Group of the directory" in people.text  # the people picker finds groups, marked
    add = reverse("categories:directory_add", args=[category.id])
    dn = directory.normal_dn(group_dn("Support engineers"))
    preview = client.post(add, {"dn": dn})
    assert "2 people come into the scope" in preview.text
    assert not DirectoryScope.objects.exists()  # nothing yet
    done = client.post(add, {"dn": dn, "confirm": "1"}, follow=True)
    assert "Done: 2 came into the scope." in done.text
    assert "Group: Support engineers</bdi>, 2 people" in done.text
    assert "member of Support engineers via Tier 2" in done.text  # why Cy is in scope
    named = client.get(reverse("categories:directory", args=[category.id]), {"q": "support"})
    assert "Named here" in named.text
    again = client.post(add, {"dn": dn})
    assert again.status_code == 400
    assert "Group: Support engineers is already named in this category (in scope)." in again.text

    [named] = DirectoryScope.objects.all()
    room = make_room()
    chat.add_to_role(room.id, Role.MEMBER, [ids["cy"]])
    remove = reverse("categories:directory_remove", args=[category.id])
    asked = client.post(remove, {"scope": named.pk})
    assert "2 people leave the scope" in asked.text
    assert f"<strong>{ids['cy']}</strong>: {room.name} (Member)" in asked.text  # what they lose
    gone = client.post(remove, {"scope": named.pk, "confirm": "1"}, follow=True)
    assert "Done: 2 left the scope." in gone.text
    assert not DirectoryScope.objects.exists()


def test_through_the_api_a_what_if_then_a_group_in_scope_then_taken_out(org, client):
    category, ids = org["category"], org["id"]
    token = make_token(client, AdministratorFactory())
    found = call(client, "GET", "/categories/directory/principals", token, q="tier").json()
    assert [(p["label"], p["kind"]) for p in found] == [("Group: Tier 2", "group")]
    path = f"/categories/{category.id}/directory"
    body = {"dn": found[0]["dn"]}
    asked = call(client, "POST", path, token, body, dry_run="true").json()
    assert (asked["applied"], asked["added"]) == (False, [ids["cy"]])
    assert not DirectoryScope.objects.exists()
    done = call(client, "POST", path, token, body).json()
    assert (done["applied"], done["added"]) == (True, [ids["cy"]])
    again = call(client, "POST", path, token, body)
    assert (again.status_code, again.json()["field"]) == (422, "principal")
    unknown = call(client, "POST", path, token, body | {"standing": "owner"})
    assert unknown.status_code == 422
    [listed] = call(client, "GET", path, token).json()
    assert (listed["name"], listed["people"], listed["standing"]) == ("Tier 2", 1, "allowed")
    gone = call(client, "DELETE", f"{path}/{listed['id']}", token).json()
    assert gone["removed"] == [ids["cy"]]
    reader = make_token(client, AdministratorFactory(), scope="read")
    refused = call(client, "POST", path, reader, body)
    assert refused.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_roomctl_finds_adds_lists_and_takes_out_a_group_by_its_name(org, live_server):
    category, ids = org["category"], org["id"]
    admin = shell(live_server, AdministratorFactory())
    found = admin("roomctl category directory-find support")
    assert "Group: Support engineers" in found.stdout, found.stderr
    what_if = admin(f"roomctl category directory-add '{category.id}' 'Support engineers' --what-if")
    assert what_if.returncode == 0, what_if.stderr
    assert what_if.stdout.startswith("Would do. 2 into the scope:")
    added = admin(f"roomctl category directory-add '{category.id}' 'Support engineers'")
    assert added.stdout.startswith("Done. 2 into the scope:"), added.stderr
    assert "Support engineers" in admin(f"roomctl category directory '{category.id}'").stdout
    unasked = admin(f"roomctl category directory-remove '{category.id}' 'Support engineers'")
    assert unasked.returncode == 2  # not confirmed
    removed = admin(f"roomctl category directory-remove '{category.id}' 'Support engineers' --yes")
    assert removed.stdout.startswith("Done. 2 out of the scope"), removed.stderr
    assert ids["cy"] in removed.stdout


def test_someone_the_chat_server_refuses_is_audited_as_failed_and_added_at_the_next_read(
    org, chat, monkeypatch
):
    from rooms.backend.errors import ChatServerUnavailable
    from rooms.backend.matrix.client import MatrixChatBackend

    category, ids, people = org["category"], org["id"], org["people"]
    provision = MatrixChatBackend.provision_user

    def refusing(self, localpart, *, display_name):
        if localpart == people["cy"].username:
            raise ChatServerUnavailable("The chat server cannot be reached.")
        return provision(self, localpart, display_name=display_name)

    monkeypatch.setattr(MatrixChatBackend, "provision_user", refusing)
    change = directory_services.principal_add(
        actor=AdministratorFactory(), category_id=category.id, dn=group_dn("Support engineers")
    )
    assert (change.added, change.failed) == ((ids["di"],), (ids["cy"],))
    failed = AuditEntry.objects.get(action="directory.scope", outcome=Outcome.FAILED)
    assert failed.after["person"] == ids["cy"]
    assert "cannot be reached" in failed.error
    assert ids["cy"] not in chat.get_category(category.id).allowed_members

    monkeypatch.undo()
    assert directory_roles.keep_in_step(force=True) == 1
    assert ids["cy"] in chat.get_category(category.id).allowed_members


def test_the_groups_of_a_deleted_category_go_with_it(org, chat):
    category = org["category"]
    directory_services.principal_add(
        actor=AdministratorFactory(), category_id=category.id, dn=group_dn("Tier 2")
    )
    DirectoryScope.objects.create(
        category_id="!gone:portal.test", kind="group", dn="cn=x", name="X"
    )
    assert directory_roles.keep_in_step(force=True) == 0  # the other category still read
    assert list(DirectoryScope.objects.values_list("category_id", flat=True)) == [category.id]


def test_a_group_as_creators_makes_its_people_in_scope_creators_and_follows_who_leaves(org, chat):
    category, ids, people = org["category"], org["id"], org["people"]
    admin = AdministratorFactory()
    engineering = directory.normal_dn("ou=Engineering,ou=People," + org["connection"].base)
    directory_services.principal_add(actor=admin, category_id=category.id, dn=engineering)
    asked = directory_services.principal_preview(
        actor=admin, category_id=category.id, dn=group_dn("Tier 2"), standing="creator"
    )[1]
    assert asked.creators == ()  # Cy, its one person, is not in the scope
    modify(org, "Tier 2", MODIFY_ADD, people["ann"])
    change = directory_services.principal_add(
        actor=admin, category_id=category.id, dn=group_dn("Tier 2"), standing="creator"
    )
    assert change.creators == (ids["ann"],)
    assert ids["ann"] in chat.get_category(category.id).creators
    made = AuditEntry.objects.get(action="directory.scope", after__change="creator")
    assert made.after["cause"] == "member of Tier 2"

    modify(org, "Tier 2", MODIFY_DELETE, people["ann"])  # leaves the group, stays in scope
    assert directory_roles.keep_in_step(force=True) == 1
    now = chat.get_category(category.id)
    assert ids["ann"] not in now.creators
    assert ids["ann"] in now.allowed_members
    assert category.creators <= now.creators  # the Creator by name stays


def test_two_administrators_naming_one_group_at_once_name_it_once(org, monkeypatch):
    category = org["category"]
    admin = AdministratorFactory()
    first = directory_services.principal_add
    first(actor=admin, category_id=category.id, dn=group_dn("Tier 2"))
    # The second checked before the first saved: it gets past the check, not the database.
    monkeypatch.setattr(
        directory_services, "_principal", lambda snapshot, c, dn: snapshot.principals[dn]
    )
    with pytest.raises(directory_services.CategoryInvalid, match="just named by someone else"):
        first(actor=admin, category_id=category.id, dn=directory.normal_dn(group_dn("Tier 2")))
    assert DirectoryScope.objects.count() == 1


def test_a_group_taken_out_by_a_process_that_died_is_audited_and_finished_by_retry(
    org, chat, client
):
    category, ids = org["category"], org["id"]
    admin = AdministratorFactory()
    directory_services.principal_add(actor=admin, category_id=category.id, dn=group_dn("Tier 2"))
    [named] = DirectoryScope.objects.all()
    op = Operation.objects.create(  # running when its process died, part-way through
        kind="category.scope",
        target_id=category.id,
        target_label=category.name,
        actor=admin,
        change=asdict(Naming(named.dn, str(named), standing=named.standing, taking_out=named.pk)),
    )
    operations.resume_abandoned(now=timezone.now() + timedelta(minutes=5))
    entry = AuditEntry.objects.get(action="category.scope", outcome=Outcome.PARTIAL)
    assert entry.error == "Its portal process stopped mid-way; listed for Retry."
    client.force_login(admin)
    client.post(reverse("operations:retry", args=[op.pk]), follow=True)
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert ids["cy"] not in chat.get_category(category.id).allowed_members
    assert not DirectoryScope.objects.exists()


def test_someone_disabled_or_deleted_in_the_directory_leaves_with_that_cause(
    org, chat, settings, make_room, creator
):
    category, ids, people = org["category"], org["id"], org["people"]
    settings.DIRECTORY_DISABLED_FILTER = "(employeeType=disabled)"
    directory_services.principal_add(
        actor=AdministratorFactory(), category_id=category.id, dn=group_dn("Support engineers")
    )
    room = make_room()
    directory_roles.principal_add(
        actor=creator, room_id=room.id, role=Role.MEMBER, dn=group_dn("Support engineers")
    )
    found = org["connection"]
    with Connection(Server(found.url), found.bind_dn, found.password, auto_bind=True) as ldap:
        disabled = {"employeeType": [(MODIFY_REPLACE, ["disabled"])]}
        assert ldap.modify(person_dn(people["cy"]), disabled), ldap.result
        assert ldap.delete(person_dn(people["di"])), ldap.result
    assert directory_roles.keep_in_step(force=True) == 2  # out of the scope, and its rooms
    assert not {ids["cy"], ids["di"]} & chat.get_category(category.id).allowed_members
    assert not {ids["cy"], ids["di"]} & chat.get_room(room.id).members
    causes = {
        (e.action, e.after["person"]): e.after["cause"]
        for e in AuditEntry.objects.filter(
            action__in=["directory.scope", "directory.role"], after__change="removed"
        )
    }
    assert causes[("directory.scope", ids["cy"])] == "disabled in the directory"
    assert causes[("directory.scope", ids["di"])] == "no longer in the directory"


def test_someone_in_through_two_groups_stays_when_one_goes(org, chat, make_room, creator):
    category, ids = org["category"], org["id"]
    admin = AdministratorFactory()
    for group in ("Tier 2", "Support engineers"):  # Cy is in both
        directory_services.principal_add(actor=admin, category_id=category.id, dn=group_dn(group))
    room = make_room()
    for group in ("Tier 2", "Support engineers"):
        directory_roles.principal_add(
            actor=creator, room_id=room.id, role=Role.MEMBER, dn=group_dn(group)
        )
    tier2 = DirectoryScope.objects.get(name="Tier 2")
    change = directory_services.principal_remove(
        actor=admin, category_id=category.id, scope_id=tier2.pk
    )
    assert change.removed == ()
    [named] = DirectoryRole.objects.filter(name="Tier 2")
    assert (
        directory_roles.principal_remove(actor=creator, room_id=room.id, named_id=named.pk).removed
        == ()
    )
    assert ids["cy"] in chat.get_category(category.id).allowed_members
    assert ids["cy"] in chat.get_room(room.id).members


def test_an_ou_without_the_ous_under_it_holds_only_its_own_people(
    make_directory, chat, category_world, client
):
    category = category_world["category"]
    people = [
        Person(f"ua{uuid.uuid4().hex[:6]}", "Ua", ("Ops",), "pw"),
        Person(f"ub{uuid.uuid4().hex[:6]}", "Ub", ("Ops", "Night"), "pw"),
    ]
    make_directory(Seed(people=people))
    ops = directory.normal_dn(ou_dn(("Ops",)))
    snapshot = directory.read()
    assert set(snapshot.expand(ops)) == {people[0].username, people[1].username}
    assert set(snapshot.expand(ops, subtree=False)) == {people[0].username}

    token = make_token(client, AdministratorFactory())
    path = f"/categories/{category.id}/directory"
    body = {"dn": ops, "subtree": False}
    asked = call(client, "POST", path, token, body, dry_run="true").json()
    assert asked["added"] == [chat.user_id_for(people[0].username)]
    call(client, "POST", path, token, body)
    [listed] = call(client, "GET", path, token).json()
    assert (listed["subtree"], listed["people"]) == (False, 1)
    assert str(DirectoryScope.objects.get()) == "OU: Ops (without the OUs under it)"
    preview = client.post(
        reverse("categories:directory_add", args=[category.id]), {"dn": ops, "subtree": "0"}
    )
    assert "already named" in preview.text  # named once, whichever way
    night = directory.normal_dn(ou_dn(("Ops", "Night")))
    add = reverse("categories:directory_add", args=[category.id])
    offered = client.post(add, {"dn": night})
    assert "Only the people right in this OU, not in the OUs under it…" in offered.text
    narrowed = client.post(add, {"dn": night, "subtree": "0"})
    assert "OU: Night (without the OUs under it)" in narrowed.text
