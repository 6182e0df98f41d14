"""The roles panel, picker, bulk add and explainer, plain and with HTMX."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from portal.models import AuditEntry
from rooms import jobs
from rooms.backend.records import Privacy, Role
from rooms.models import Operation
from rooms.views import roles as roles_views
from tests.factories import AuditorFactory, UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name, room, **kwargs):
    return reverse(name, kwargs={"room_id": room.id, **kwargs})


def test_panel_filters_people_with_htmx(client, chat, creator, make_room, category_world):
    room = make_room()
    chat.add_to_role(room.id, Role.MEMBER, [category_world["member"].user_id])
    client.force_login(creator)
    response = client.get(url("roles:panel", room), {"q": "member"}, **HTMX)
    assert response.templates[0].name == "roles/_room_roles.html"
    members = [person for person, _ in response.context["lists"]["member"]]
    assert members == [category_world["member"].user_id]
    assert client.get(url("roles:panel", room))["Location"] == url("rooms:detail", room)


def test_the_panel_lists_the_first_people_of_a_large_role_and_says_how_many_more(
    client, chat, creator, make_room, category_world, monkeypatch
):
    room = make_room()
    chat.add_to_role(room.id, Role.MEMBER, [creator.chat_id, category_world["member"].user_id])
    monkeypatch.setattr(roles_views, "SHOWN", 1)  # as a room of 101 Members would be
    client.force_login(creator)
    page = client.get(url("rooms:detail", room))
    assert len(page.context["lists"]["member"]) == 1
    assert page.context["counts"]["member"] == 2
    assert "… and 1 more: find a person by name above." in page.text
    found = client.get(url("roles:panel", room), {"q": "member"}, **HTMX)
    assert "more: find a person" not in found.text  # one found, shown


def test_open_rooms_explain_there_is_no_member_list(client, creator, make_room):
    room = make_room(privacy=Privacy.OPEN)
    client.force_login(creator)
    page = client.get(url("rooms:detail", room)).content.decode()
    assert "Open rooms have no member list" in page


def test_a_manager_not_a_member_is_marked_and_offered_membership(
    client, chat, creator, make_room, category_world
):
    room = make_room()
    chat.add_to_role(room.id, Role.MANAGER, [category_world["member"].user_id])
    client.force_login(creator)
    page = client.get(url("rooms:detail", room)).content.decode()
    assert "not a Member" in page
    assert "Also add as Member" in page


def test_picker_shows_people_in_and_out_of_scope(client, creator, make_room, category_world):
    room = make_room()
    client.force_login(creator)
    outsider = category_world["outsider"].user_id
    inside = category_world["member"].user_id
    found_out = client.get(
        url("roles:people", room), {"role": "member", "q": outsider[1:12]}, **HTMX
    )
    assert "not in the scope" in found_out.content.decode()
    assert "Add as Member" not in found_out.content.decode()
    found_in = client.get(url("roles:people", room), {"role": "member", "q": inside[1:12]})
    assert found_in.templates[0].name == "roles/people_picker.html"
    assert "Add as Member" in found_in.content.decode()


def test_add_with_htmx_refreshes_the_panel(client, chat, creator, make_room, category_world):
    room = make_room()
    person = category_world["member"].user_id
    client.force_login(creator)
    response = client.post(
        url("roles:add", room), {"role": "manager", "user_id": person, "also_member": "yes"}, **HTMX
    )
    assert json.loads(response["HX-Trigger"]) == {"rolesChanged": {}}
    room = chat.get_room(room.id)
    assert person in room.managers
    assert person in room.members


def test_a_person_added_is_shown_by_name_at_once(
    client, chat, creator, make_room, category_world, make_chat_user
):
    """A Manager has no member event to carry a name: the panel still names them."""
    room = make_room()
    person = make_chat_user("named", display_name="Zelda Quartermain").user_id
    chat.add_to_category_scope(category_world["category"].id, [person])
    client.force_login(creator)
    panel = client.post(url("roles:add", room), {"role": "manager", "user_id": person}, **HTMX)
    assert "Zelda Quartermain" in panel.content.decode()
    chat.reindex(category_world["category"].id, room.id)  # as the sync worker reads it
    again = client.get(url("roles:panel", room), **HTMX)
    assert "Zelda Quartermain" in again.content.decode()


def test_a_refused_add_says_why(client, creator, make_room, category_world):
    room = make_room()
    client.force_login(creator)
    response = client.post(
        url("roles:add", room),
        {"role": "member", "user_id": category_world["outsider"].user_id},
        follow=True,
    )
    assert "not in the scope" in response.content.decode()


@pytest.mark.parametrize("user_id", ["@nobody:portal.test", "not-an-id", ""])
def test_unknown_or_malformed_people_are_refused(client, creator, make_room, user_id):
    room = make_room()
    client.force_login(creator)
    response = client.post(
        url("roles:add", room), {"role": "member", "user_id": user_id}, follow=True
    )
    assert "There is no person" in response.content.decode()


def test_removal_asks_first(client, chat, creator, make_room, category_world):
    room = make_room()
    person = category_world["member"].user_id
    chat.add_to_role(room.id, Role.MEMBER, [person])
    client.force_login(creator)
    ask = client.post(url("roles:remove", room), {"role": "member", "user_id": person})
    assert ask.templates[0].name == "roles/role_remove.html"
    assert person in chat.get_room(room.id).members
    client.post(url("roles:remove", room), {"role": "member", "user_id": person, "confirm": "yes"})
    assert person not in chat.get_room(room.id).members


def test_removing_the_last_manager_is_refused(client, chat, creator, make_room):
    room = make_room()
    client.force_login(creator)
    response = client.post(
        url("roles:remove", room),
        {"role": "manager", "user_id": creator.chat_id, "confirm": "yes"},
        follow=True,
    )
    assert "at least one Manager" in response.content.decode()
    assert chat.get_room(room.id).managers == {creator.chat_id}


def test_unknown_role_is_a_clear_400(client, creator, make_room):
    room = make_room()
    client.force_login(creator)
    response = client.post(url("roles:add", room), {"role": "owner", "user_id": creator.chat_id})
    assert response.status_code == 400
    assert "choose Member, Manager or Presenter" in response.content.decode()


def test_bulk_preview_then_apply_with_progress(client, chat, creator, make_room, category_world):
    room = make_room()
    person = category_world["member"].user_id
    client.force_login(creator)
    text = f"{person}\n@ghost:portal.test"
    preview = client.post(url("roles:bulk", room), {"role": "member", "people": text})
    assert preview.context["to_add"] == 1
    assert "Unknown person" in preview.content.decode()
    assert person not in chat.get_room(room.id).members
    started = client.post(
        url("roles:bulk", room), {"role": "member", "people": text, "apply": "yes"}
    )
    op = Operation.objects.get(kind="role.bulk")
    assert started["Location"] == url("roles:bulk_run", room, run_id=op.pk)
    waiting = client.get(started["Location"], **HTMX)
    assert waiting.template_name == "roles/bulk_run.html#progress"
    assert "0 of 1" in waiting.content.decode()
    assert 'hx-trigger="load delay:1s"' in (waiting.content.decode())
    assert person not in chat.get_room(room.id).members
    jobs.turn()
    assert person in chat.get_room(room.id).members
    page = client.get(started["Location"])
    assert "1 of 1" in page.content.decode()
    assert "finished" in page.content.decode()
    assert "hx-trigger" not in page.content.decode().split('id="bulk-progress"')[1][:200]


def test_a_5000_line_paste_is_refused_with_the_limit(client, creator, make_room):
    room = make_room()
    client.force_login(creator)
    text = "\n".join(f"@p{n}:portal.test" for n in range(5000))
    response = client.post(
        url("roles:bulk", room), {"role": "member", "people": text, "apply": "yes"}
    )
    assert response.status_code == 400
    assert "At most 1000 people at once" in response.content.decode()
    assert response.context["text"] == text  # kept, to be split
    assert not Operation.objects.exists()


def test_explainer_for_managers_and_auditors(client, creator, make_room, category_world):
    room = make_room()
    client.force_login(creator)
    person = category_world["member"].user_id
    response = client.get(url("roles:explain", room), {"person": person}, **HTMX)
    assert response.template_name == "roles/room_explain.html#result"
    assert "may ask to join" in response.content.decode()
    client.force_login(AuditorFactory())
    assert client.get(url("roles:explain", room), {"person": person}).status_code == 200


def test_the_explainer_takes_a_login_name_and_knows_nobody_when_there_is_nobody(
    client, creator, make_room, category_world
):
    room = make_room()
    client.force_login(creator)
    member = category_world["member"].user_id
    localpart = member[1:].split(":")[0]
    by_login = client.get(url("roles:explain", room), {"person": localpart}).content.decode()
    assert member in by_login
    assert "may ask to join" in by_login  # in scope, as they are: not "out of scope"
    nobody = client.get(url("roles:explain", room), {"person": "nobody-at-all"})
    assert "There is nobody called" in nobody.content.decode()
    assert "Can they" not in nobody.content.decode()


def test_people_without_the_manager_role_are_refused_everywhere(client, member, make_room):
    room = make_room(privacy=Privacy.OPEN)
    client.force_login(member)
    assert client.get(url("roles:people", room), {"q": "abc"}).status_code == 403
    assert (
        client.post(url("roles:add", room), {"role": "member", "user_id": "x"}).status_code == 403
    )
    assert (
        client.post(url("roles:remove", room), {"role": "member", "user_id": "x"}).status_code
        == 403
    )
    assert client.get(url("roles:bulk", room)).status_code == 403
    assert client.get(url("roles:explain", room)).status_code == 403


def test_who_is_asking_to_join_is_shown_to_managers_only(
    client, chat, creator, member, make_room, category_world, make_chat_user
):
    """A knock names a person who wants in: the room's Managers decide, and only they (and
    administrators) see it, by display name and chat ID; a Member of the room does not."""
    room = make_room(privacy=Privacy.CLOSED)
    chat.add_to_role(room.id, Role.MEMBER, [member.chat_id])
    asker = make_chat_user("asker")
    chat.add_to_category_scope(room.settings.category_id, [asker.user_id])
    assert asker.knock(room.id).status_code == 200
    chat.reindex(room.id)
    client.force_login(member)
    seen_by_member = client.get(url("rooms:detail", room)).content.decode()
    assert "Asking to join" not in seen_by_member
    assert asker.user_id not in seen_by_member
    client.force_login(creator)
    seen_by_manager = client.get(url("rooms:detail", room)).content.decode()
    assert "Asking to join" in seen_by_manager
    assert f"Asker ({asker.user_id})" in seen_by_manager
    assert f"Asker ({asker.user_id})" in client.get(reverse("requests:queue")).content.decode()


def test_a_portal_request_to_join_shows_who_asks_by_name(client, chat, creator, make_room):
    from rooms.models import JoinRequest

    room = make_room(privacy=Privacy.CLOSED)
    asker = UserFactory(display_name="Ravi Asker")
    JoinRequest.objects.create(room_id=room.id, requester=asker, message="On the team")
    client.force_login(creator)
    for page in (url("rooms:detail", room), reverse("requests:queue")):
        shown = client.get(page).content.decode()
        assert f"Ravi Asker ({asker.chat_id})" in shown
        assert "On the team" in shown


def test_a_manager_lets_one_asker_in_and_turns_another_down(
    client, chat, creator, make_room, make_chat_user
):
    room = make_room(privacy=Privacy.CLOSED)
    welcome, refused = make_chat_user("welcome"), make_chat_user("refused")
    chat.add_to_category_scope(room.settings.category_id, [welcome.user_id, refused.user_id])
    for asker in (welcome, refused):
        assert asker.knock(room.id).status_code == 200
    chat.reindex(room.id)
    client.force_login(creator)
    let_in = client.post(
        url("roles:decide", room), {"decision": "accept", "user_id": welcome.user_id}, **HTMX
    )
    assert let_in.status_code == 200
    turned_down = client.post(
        url("roles:decide", room), {"decision": "decline", "user_id": refused.user_id}, **HTMX
    )
    assert turned_down.status_code == 200
    assert "Asking to join" not in turned_down.content.decode()
    on_server = chat.get_room(room.id)
    assert welcome.user_id in on_server.members
    assert refused.user_id not in on_server.members
    assert on_server.knocking == frozenset()
    entry = AuditEntry.objects.get(action="room.join_request.declined")
    assert (entry.outcome, entry.after["person"]) == ("succeeded", refused.user_id)
    again = client.post(
        url("roles:decide", room), {"decision": "decline", "user_id": refused.user_id}, follow=True
    )
    assert "is not asking to join" in again.content.decode()
    late = client.post(
        url("roles:decide", room), {"decision": "accept", "user_id": welcome.user_id}, follow=True
    )
    assert "they are a Member already" in late.content.decode()
