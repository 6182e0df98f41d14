"""Category administration against the real Synapse, and its effect on real chat users."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms.backend.errors import ChatNotFound
from rooms.backend.matrix.base import TRIES
from rooms.backend.records import Privacy, Role
from rooms.models import Operation
from rooms.services import categories as category_services
from tests.conftest import unique
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return AdministratorFactory()


def change(admin, category, **lists):
    typed = {"add": "", "remove": "", "deny": "", "undeny": ""} | lists
    checked = category_services.scope_change_check(actor=admin, category_id=category.id, **typed)
    return category_services.scope_change_apply(
        actor=admin, category_id=category.id, change=checked
    )


def test_create_and_edit_a_category(chat, admin):
    name = unique("Finance ")
    category = category_services.category_create(
        actor=admin, name=name, description="Money", invitations_allowed=False
    )
    assert chat.get_category(category.id).invitations_allowed is False
    updated = category_services.category_update(
        actor=admin,
        category_id=category.id,
        name=name + " & Legal",
        description="More",
        invitations_allowed=True,
    )
    assert (updated.name, updated.description, updated.invitations_allowed) == (
        name + " & Legal",
        "More",
        True,
    )
    entry = AuditEntry.objects.get(action="category.update")
    assert (entry.before["name"], entry.after["name"]) == (name, name + " & Legal")


@pytest.mark.parametrize(("name", "message"), [("", "Give"), ("x" * 257, "at most 256")])
def test_bad_names_are_refused(admin, name, message):
    with pytest.raises(category_services.CategoryInvalid, match=message):
        category_services.category_create(
            actor=admin, name=name, description="", invitations_allowed=True
        )


def test_duplicate_names_in_any_case_are_refused(admin, category_world):
    with pytest.raises(category_services.CategoryInvalid, match="already a category"):
        category_services.category_create(
            actor=admin,
            name=category_world["category"].name.upper(),
            description="",
            invitations_allowed=True,
        )


def test_only_administrators_manage_categories(creator):
    with pytest.raises(PermissionDenied):
        category_services.category_create(
            actor=creator, name=unique("X "), description="", invitations_allowed=True
        )
    assert AuditEntry.objects.get(action="category.create").outcome == Outcome.DENIED


def test_scope_add_remove_deny_on_the_chat_server(chat, admin, make_chat_user):
    person, other = make_chat_user("scoped"), make_chat_user("denied")
    category = chat.create_category(name=unique("Scope "), description="")
    after = change(admin, category, add=f"{person.user_id}\n{other.user_id}")
    assert after.allowed_members == {person.user_id, other.user_id}
    after = change(admin, after, deny=other.user_id)
    assert other.user_id in after.denied_members
    assert other.user_id not in after.allowed_members
    assert chat._state(category.id).memberships("ban") == {other.user_id}
    after = change(admin, after, undeny=other.user_id)
    assert after.denied_members == set()


def test_a_person_both_allowed_and_denied_is_refused(chat, admin, make_chat_user):
    person = make_chat_user("both")
    category = chat.create_category(name=unique("Both "), description="")
    with pytest.raises(category_services.CategoryInvalid, match="both allowed and denied"):
        category_services.scope_change_check(
            actor=admin,
            category_id=category.id,
            add=person.user_id,
            remove="",
            deny=person.user_id,
            undeny="",
        )


def test_unknown_and_malformed_people_are_refused(chat, admin):
    category = chat.create_category(name=unique("Unknown "), description="")
    for typed, message in (("@ghost:portal.test", "no person"), ("not an id!", "Not chat IDs")):
        with pytest.raises(category_services.CategoryInvalid, match=message):
            category_services.scope_change_check(
                actor=admin, category_id=category.id, add=typed, remove="", deny="", undeny=""
            )


def test_leaving_the_scope_shows_and_removes_room_roles_and_access(
    chat, admin, make_room, category_world
):
    person = category_world["member"]
    open_room = make_room(privacy=Privacy.OPEN)
    closed_room = make_room()
    chat.add_to_role(closed_room.id, Role.MEMBER, [person.user_id])
    category = chat.get_category(category_world["category"].id)
    checked = category_services.scope_change_check(
        actor=admin, category_id=category.id, add="", remove=person.user_id, deny="", undeny=""
    )
    [(who, held)] = checked.leaving
    assert who == person.user_id
    assert [(room.id, roles) for room, roles in held] == [(closed_room.id, (Role.MEMBER,))]
    assert person.join(open_room.id).status_code == 200  # still in scope until applied

    category_services.scope_change_apply(actor=admin, category_id=category.id, change=checked)
    assert person.user_id not in chat.get_room(closed_room.id).members
    removal = AuditEntry.objects.get(action="role.remove.member", target_id=closed_room.id)
    assert (removal.outcome, removal.before["person"]) == (Outcome.SUCCEEDED, person.user_id)
    assert person.visible_rooms(category.id) is None
    other_open = make_room(privacy=Privacy.OPEN)
    assert person.join(other_open.id).status_code == 403


def test_creators_are_chosen_from_the_scope(chat, admin, category_world, make_chat_user):
    category = category_world["category"]
    member = category_world["member"].user_id
    after = category_services.creators_set(actor=admin, category_id=category.id, creators=[member])
    assert after.creators == {member}
    assert [c.id for c in chat.find_categories_with_create_rights(member)] == [category.id]
    with pytest.raises(category_services.CategoryInvalid, match="chosen from the people in scope"):
        category_services.creators_set(
            actor=admin, category_id=category.id, creators=[category_world["outsider"].user_id]
        )


def test_a_category_with_rooms_is_not_deleted(chat, admin, make_room, category_world):
    make_room()
    with pytest.raises(category_services.CategoryInvalid, match="still has 1 room"):
        category_services.category_delete(actor=admin, category_id=category_world["category"].id)
    empty = chat.create_category(name=unique("Empty "), description="")
    category_services.category_delete(actor=admin, category_id=empty.id)
    with pytest.raises(ChatNotFound):
        chat.get_category(empty.id)


def test_pages_refuse_everyone_but_administrators(client, creator, category_world):
    client.force_login(creator)
    category_id = category_world["category"].id
    assert client.get(reverse("categories:manage")).status_code == 403
    assert client.get(reverse("categories:detail", args=[category_id])).status_code == 403
    assert (
        client.post(
            reverse("categories:scope", args=[category_id]), {"add": creator.chat_id}
        ).status_code
        == 403
    )
    assert client.post(reverse("categories:creators", args=[category_id])).status_code == 403
    assert client.post(reverse("categories:delete", args=[category_id])).status_code == 403


def test_scope_preview_page_then_apply(client, chat, admin, make_chat_user):
    person = make_chat_user("previewed")
    category = chat.create_category(name=unique("Preview "), description="")
    client.force_login(admin)
    url = reverse("categories:scope", args=[category.id])
    preview = client.post(url, {"add": person.user_id})
    assert preview.templates[0].name == "categories/scope_preview.html"
    assert chat.get_category(category.id).allowed_members == set()
    client.post(url, {"add": person.user_id, "confirm": "yes"})
    assert chat.get_category(category.id).allowed_members == {person.user_id}


def test_scope_form_errors_keep_what_was_typed(client, chat, admin):
    category = chat.create_category(name=unique("Typed "), description="")
    client.force_login(admin)
    response = client.post(
        reverse("categories:scope", args=[category.id]),
        {"add": "not valid!", "remove": "@x:portal.test"},
    )
    assert response.status_code == 400
    assert "Not chat IDs" in response.content.decode()
    assert response.context["typed"]["remove"] == "@x:portal.test"


def test_unknown_category_is_404(client, admin):
    client.force_login(admin)
    assert client.get(reverse("categories:detail", args=["!nope:portal.test"])).status_code == 404


def test_a_chat_server_failure_half_way_is_reported_and_audited(
    client, chat, admin, failing_chat, make_chat_user, monkeypatch
):
    kept, denied = make_chat_user("kept"), make_chat_user("tobedenied")
    category = chat.create_category(name=unique("Half "), description="")
    chat.add_to_category_scope(category.id, [kept.user_id, denied.user_id])
    failing = failing_chat("/ban", "POST", times=TRIES)  # however often it is retried
    monkeypatch.setattr(category_services, "chat_backend", lambda: failing)
    client.force_login(admin)
    response = client.post(
        reverse("categories:scope", args=[category.id]),
        {"deny": denied.user_id, "confirm": "yes"},
        follow=True,
    )
    assert "The change stopped part-way" in response.content.decode()
    assert AuditEntry.objects.get(action="category.scope").outcome == Outcome.FAILED
    assert denied.user_id in chat.get_category(category.id).allowed_members  # told, not hidden
    [op] = Operation.objects.filter(kind="category.scope")  # listed, for Retry
    assert op.status == Operation.Status.UNFINISHED


def test_scope_picker_shows_where_people_stand(client, admin, category_world):
    client.force_login(admin)
    category = category_world["category"]
    url = reverse("categories:people", args=[category.id])
    member = category_world["member"].user_id
    found = client.get(url, {"q": member[1:12]}, HTTP_HX_REQUEST="true")
    assert found.template_name == "categories/category_detail.html#candidates"
    assert "In scope" in found.content.decode()
    assert "Remove from scope" in found.content.decode()
    outsider = category_world["outsider"].user_id
    page = client.get(url, {"q": outsider[1:12]})
    assert page.templates[0].name == "categories/category_detail.html"
    assert "Add to scope" in page.content.decode()
