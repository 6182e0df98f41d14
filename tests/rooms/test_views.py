"""Room pages and forms for every kind of person, plain and with HTMX, and bad input."""

from __future__ import annotations

import json
import unicodedata
import uuid

import pytest
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms.backend.matrix.base import TRIES
from rooms.backend.records import Privacy
from rooms.services import rooms as room_services
from tests.conftest import portal_user, unique
from tests.factories import AdministratorFactory, AuditorFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def create_data(category_id: str, **changes) -> dict:
    return {
        "name": unique("Room "),
        "description": "Typed by a person",
        "category": category_id,
        "privacy": "closed",
        "invitations": "inherit",
        "submission": str(uuid.uuid4()),
    } | changes


def edit_data(room, **changes) -> dict:
    return {
        "name": room.name,
        "description": room.settings.description,
        "invitations": room.settings.invitations.value,
        "version": room_services.room_version(room),
    } | changes


# --- create -------------------------------------------------------------------------


def test_create_form_offers_the_creators_categories(client, creator, category_world):
    client.force_login(creator)
    response = client.get(reverse("rooms:create"), {"category": category_world["category"].id})
    assert response.status_code == 200
    page = response.content.decode()
    assert category_world["category"].name in page
    assert "Closed: Everyone in the category can find it and ask to join" in page


def test_create_lands_on_the_room_with_a_confirmation(client, chat, creator, category_world):
    client.force_login(creator)
    data = create_data(category_world["category"].id, privacy="secret", auditorium="on")
    response = client.post(reverse("rooms:create"), data, follow=True)
    room_id = response.resolver_match.kwargs["room_id"]
    assert f"The room “<bdi>{data['name']}</bdi>” was created." in response.content.decode()
    room = chat.get_room(room_id)
    assert (room.name, room.settings.privacy, room.settings.auditorium) == (
        data["name"],
        Privacy.SECRET,
        True,
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": ""}, "name", "Give the room a name."),
        ({"name": "   "}, "name", "Give the room a name."),
        ({"name": "x" * 257}, "name", "at most 256 characters"),
        ({"description": "d" * 257}, "description", "at most 256 characters"),
        ({"privacy": "public"}, "privacy", "Choose Open, Closed or Secret."),
        ({"category": ""}, "category", "Choose the category"),
    ],
)
def test_bad_input_is_a_clear_message_keeps_input_and_is_audited(
    client, creator, category_world, changes, field, message
):
    client.force_login(creator)
    data = create_data(category_world["category"].id, **changes)
    response = client.post(reverse("rooms:create"), data)
    assert response.status_code == 400
    form = response.context["form"]
    assert message in " ".join(form.errors[field])
    assert form["description"].value() == data["description"]  # nothing typed is lost
    entry = AuditEntry.objects.get(action="room.create")
    assert entry.outcome == Outcome.FAILED
    assert field in entry.error


def test_a_name_taken_in_other_letter_case_is_refused(client, creator, make_room, category_world):
    room = make_room()
    client.force_login(creator)
    data = create_data(category_world["category"].id, name=room.name.upper())
    response = client.post(reverse("rooms:create"), data)
    assert "is not available" in response.context["form"].errors["name"][0]


@pytest.mark.parametrize(
    ("change", "field", "said"),
    [
        (lambda n: n[:3] + "\u200d" + n[3:], "name", "is not available"),  # a hidden joiner
        (lambda n: n.replace("o", "\u043e"), "name", "is not available"),  # Cyrillic o
        (lambda n: n[:3] + "\u200b" + n[3:], "name", "U+200B ZERO WIDTH SPACE"),
        (lambda n: "PA \u202egnp.exe", "name", "reverses how text is shown"),
    ],
)
def test_look_alike_and_deceiving_names_are_refused_and_kept(
    client, creator, make_room, category_world, change, field, said
):
    room = make_room(name=unique("Lookalike room "))
    client.force_login(creator)
    data = create_data(category_world["category"].id, name=change(room.name))
    response = client.post(reverse("rooms:create"), data)
    assert response.status_code == 400
    assert said in response.context["form"].errors[field][0]
    assert response.context["form"]["description"].value() == data["description"]


def test_a_description_of_stacked_marks_is_refused(client, creator, category_world):
    client.force_login(creator)
    data = create_data(category_world["category"].id, description="e" + "\u0301" * 200)
    response = client.post(reverse("rooms:create"), data)
    assert response.status_code == 400
    assert "accents or marks" in response.context["form"].errors["description"][0]


def test_a_name_is_kept_in_one_spelling(client, chat, creator, category_world):
    client.force_login(creator)
    decomposed = unique("Cafe\u0301 ")
    made = client.post(
        reverse("rooms:create"), create_data(category_world["category"].id, name=decomposed)
    )
    room = chat.get_room(made["Location"].split("/")[-2])
    assert room.name == unicodedata.normalize("NFC", decomposed)
    assert room.name != decomposed


def test_a_tampered_category_is_refused_with_403_and_audited(client, chat, creator, category_world):
    elsewhere = chat.create_category(name=unique("Not mine "), description="")
    client.force_login(creator)
    data = create_data(elsewhere.id)
    response = client.post(reverse("rooms:create"), data)
    assert response.status_code == 403
    assert "cannot create rooms" in response.context["form"].errors["category"][0]
    assert response.context["form"]["name"].value() == data["name"]
    assert AuditEntry.objects.get(action="room.create").outcome == Outcome.DENIED
    assert chat.get_category(elsewhere.id).room_ids == ()


def test_an_unknown_category_id_is_a_clear_error(client, creator):
    client.force_login(creator)
    response = client.post(reverse("rooms:create"), create_data("!nonsense:portal.test"))
    assert response.status_code == 400
    assert response.context["form"].errors["category"] == ["There is no such category."]


def test_person_without_create_rights_is_refused(client, member, category_world):
    client.force_login(member)
    assert "You cannot create rooms" in client.get(reverse("rooms:create")).content.decode()
    response = client.post(reverse("rooms:create"), create_data(category_world["category"].id))
    assert response.status_code == 403


def test_posting_twice_makes_one_room(client, chat, creator, category_world):
    client.force_login(creator)
    data = create_data(category_world["category"].id)
    first = client.post(reverse("rooms:create"), data)
    second = client.post(reverse("rooms:create"), data)
    assert first["Location"] == second["Location"]
    assert len(chat.get_category(category_world["category"].id).room_ids) == 1


def test_chat_server_down_on_create_keeps_the_input(client, creator, category_world, chat_down):
    client.force_login(creator)
    data = create_data(category_world["category"].id)
    response = client.post(reverse("rooms:create"), data)
    assert response.status_code == 503
    assert "The room was not created" in response.content.decode()
    assert response.context["form"]["name"].value() == data["name"]
    assert AuditEntry.objects.get(action="room.create").outcome == Outcome.FAILED


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", ""),
        (" " * 3, "Give the room a name."),
        ("n" * 300, "at most 256"),
        ("Free name", "is free"),
    ],
)
def test_check_name_as_it_is_typed(client, creator, name, expected):
    client.force_login(creator)
    response = client.get(reverse("rooms:check_name"), {"name": name}, **HTMX)
    assert expected in response.content.decode()


def test_check_name_finds_a_taken_name_but_not_the_room_itself(client, creator, make_room):
    room = make_room()
    client.force_login(creator)
    taken = client.get(reverse("rooms:check_name"), {"name": room.name.lower()})
    assert "is not available" in taken.content.decode()
    own = client.get(reverse("rooms:check_name"), {"name": room.name, "room": room.id})
    assert "is free" in own.content.decode()


# --- view -----------------------------------------------------------------------------


def test_room_page_shows_settings_and_roles_escaped(client, creator, make_room):
    room = make_room(name=unique("<script>alert(1)</script> "))
    client.force_login(creator)
    page = client.get(reverse("rooms:detail", args=[room.id])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page
    assert creator.chat_id in page
    assert "A Manager is not a Member by that alone" in page


def test_a_change_made_in_a_chat_client_shows_on_the_room_page(client, chat, creator, make_room):
    room = make_room()
    chat._put_state(room.id, "m.room.topic", {"topic": "Changed in Element"})
    chat.reindex(room.id)
    client.force_login(creator)
    assert (
        "Changed in Element" in client.get(reverse("rooms:detail", args=[room.id])).content.decode()
    )


@pytest.mark.parametrize(("privacy", "visible"), [("closed", 200), ("open", 200), ("secret", 404)])
def test_in_scope_people_see_rooms_as_in_chat_clients(client, member, make_room, privacy, visible):
    room = make_room(privacy=Privacy(privacy))
    client.force_login(member)
    assert client.get(reverse("rooms:detail", args=[room.id])).status_code == visible


def test_outsiders_do_not_see_rooms(client, outsider, make_room):
    room = make_room(privacy=Privacy.OPEN)
    client.force_login(outsider)
    assert client.get(reverse("rooms:detail", args=[room.id])).status_code == 404


@pytest.mark.parametrize("factory", [AdministratorFactory, AuditorFactory])
def test_administrators_and_auditors_see_every_room(client, make_room, factory):
    room = make_room(privacy=Privacy.SECRET)
    client.force_login(factory())
    assert client.get(reverse("rooms:detail", args=[room.id])).status_code == 200


@pytest.mark.parametrize("room_id", ["!doesnotexist:portal.test", "not-a-room-id", "%00"])
def test_unknown_or_tampered_room_ids_are_404(client, creator, room_id):
    client.force_login(creator)
    assert client.get(f"/rooms/{room_id}/").status_code == 404


def test_a_category_id_is_not_a_room(client, creator, category_world):
    client.force_login(creator)
    url = reverse("rooms:detail", args=[category_world["category"].id])
    assert client.get(url).status_code == 404


def test_my_rooms_lists_searches_and_filters(client, creator, make_room):
    alpha = make_room(name=unique("Alpha "), privacy=Privacy.OPEN)
    beta = make_room(name=unique("Beta "), privacy=Privacy.SECRET)
    client.force_login(creator)
    everything = client.get(reverse("rooms:list"))
    assert {listing.id for listing in everything.context["listings"]} == {alpha.id, beta.id}
    searched = client.get(reverse("rooms:list"), {"q": "alpha"}, **HTMX)
    assert [listing.id for listing in searched.context["listings"]] == [alpha.id]
    fragment = searched.content.decode()  # the results alone, not the page
    assert fragment.lstrip().startswith('<div id="room-results">')
    assert "<h1" not in fragment
    secret = client.get(reverse("rooms:list"), {"privacy": "secret"})
    assert [listing.id for listing in secret.context["listings"]] == [beta.id]
    tampered = client.get(reverse("rooms:list"), {"privacy": "bogus", "category": "!x"})
    assert tampered.status_code == 200


def test_my_rooms_is_paginated(client, creator, make_room, settings, monkeypatch):
    monkeypatch.setattr("rooms.views.rooms.ROOMS_PER_PAGE", 1)
    make_room()
    make_room()
    client.force_login(creator)
    response = client.get(reverse("rooms:list"), {"page": 2})
    assert response.context["page"].number == 2
    assert "Page 2 of 2" in response.content.decode()


# --- update ---------------------------------------------------------------------------


def test_inline_edit_with_htmx(client, chat, creator, make_room):
    room = make_room()
    client.force_login(creator)
    form = client.get(reverse("rooms:edit", args=[room.id]), **HTMX)
    assert form.template_name == "rooms/room_edit.html#form"
    response = client.post(
        reverse("rooms:edit", args=[room.id]), edit_data(room, description="Inline"), **HTMX
    )
    assert response.templates[0].name == "rooms/_room_settings.html"
    assert json.loads(response["HX-Trigger"]) == {"roomChanged": {}}
    assert chat.get_room(room.id).settings.description == "Inline"


def test_edit_without_javascript(client, chat, creator, make_room):
    room = make_room()
    client.force_login(creator)
    assert client.get(reverse("rooms:edit", args=[room.id])).status_code == 200
    response = client.post(
        reverse("rooms:edit", args=[room.id]), edit_data(room, name=room.name + " 2")
    )
    assert response["Location"] == reverse("rooms:detail", args=[room.id])
    assert chat.get_room(room.id).name == room.name + " 2"


def test_stale_edit_shows_current_values_and_the_refused_changes(client, chat, creator, make_room):
    room = make_room()
    client.force_login(creator)
    stale = edit_data(room, description="Mine")
    chat._put_state(room.id, "m.room.topic", {"topic": "Theirs"})
    chat.reindex(room.id)
    response = client.post(reverse("rooms:edit", args=[room.id]), stale)
    assert response.status_code == 409
    assert response.context["form"]["description"].value() == "Theirs"
    assert response.context["theirs"]["description"] == "Mine"
    assert "Someone else changed this room" in response.content.decode()
    assert chat.get_room(room.id).settings.description == "Theirs"


def test_non_managers_cannot_edit(client, member, make_room):
    room = make_room(privacy=Privacy.OPEN)
    client.force_login(member)
    assert client.get(reverse("rooms:edit", args=[room.id])).status_code == 403
    assert client.post(reverse("rooms:edit", args=[room.id]), edit_data(room)).status_code == 403
    assert (
        client.post(reverse("rooms:privacy", args=[room.id]), {"privacy": "secret"}).status_code
        == 403
    )
    assert client.post(reverse("rooms:disable", args=[room.id])).status_code == 403
    assert client.get(reverse("rooms:move", args=[room.id])).status_code == 403


# --- privacy, disable, move, delete ---------------------------------------------------


def test_making_a_room_secret_asks_first(client, chat, creator, make_room):
    room = make_room()
    client.force_login(creator)
    url = reverse("rooms:privacy", args=[room.id])
    ask = client.post(url, {"privacy": "secret"}, **HTMX)
    assert ask.template_name == "rooms/room_privacy.html#confirm"
    assert "disappear from the category" in ask.content.decode()
    assert chat.get_room(room.id).settings.privacy is Privacy.CLOSED
    client.post(url, {"privacy": "secret", "confirm": "yes"})
    assert chat.get_room(room.id).settings.privacy is Privacy.SECRET


@pytest.mark.parametrize(
    ("start", "said"),
    [(Privacy.SECRET, "will be listed in the category"), (Privacy.OPEN, "only members get in")],
)
def test_making_a_room_closed_asks_first_too(client, chat, creator, make_room, start, said):
    room = make_room(privacy=start)
    client.force_login(creator)
    url = reverse("rooms:privacy", args=[room.id])
    ask = client.post(url, {"privacy": "closed"})
    assert said in ask.content.decode()
    assert chat.get_room(room.id).settings.privacy is start
    assert client.post(url, {"privacy": "closed", "confirm": "yes"}).status_code == 302
    assert chat.get_room(room.id).settings.privacy is Privacy.CLOSED


def test_a_tampered_privacy_value_changes_nothing(client, chat, creator, make_room):
    room = make_room()
    client.force_login(creator)
    response = client.post(
        reverse("rooms:privacy", args=[room.id]), {"privacy": "everyone"}, follow=True
    )
    assert "Choose Open, Closed or Secret." in response.content.decode()
    assert chat.get_room(room.id).settings.privacy is Privacy.CLOSED


def test_disable_asks_first_then_enable_restores(client, chat, creator, make_room):
    room = make_room()
    client.force_login(creator)
    url = reverse("rooms:disable", args=[room.id])
    assert "Nobody will be able to join" in client.get(url).content.decode()
    client.post(url)
    assert chat.get_room(room.id).disabled
    client.post(url, {"enable": "yes"})
    assert not chat.get_room(room.id).disabled


def test_move_previews_who_leaves_the_scope_then_moves(
    client, chat, creator, make_room, category_world
):
    room = make_room()
    target = chat.create_category(
        name=unique("Target "), description="", creators=[creator.chat_id]
    )
    chat.add_to_category_scope(target.id, [creator.chat_id])
    chat.add_to_role(room.id, "member", [category_world["member"].user_id])
    client.force_login(creator)
    url = reverse("rooms:move", args=[room.id])
    preview = client.post(url, {"category": target.id})
    assert category_world["member"].user_id in preview.content.decode()
    assert chat.get_room(room.id).settings.category_id == category_world["category"].id
    version = preview.context["version"]
    done = client.post(url, {"category": target.id, "confirm": "yes", "version": version})
    assert done.status_code == 302
    assert chat.get_room(room.id).settings.category_id == target.id


def test_move_to_a_tampered_category_is_refused(client, creator, make_room):
    room = make_room()
    client.force_login(creator)
    response = client.post(reverse("rooms:move", args=[room.id]), {"category": "!forged:x"})
    assert response.status_code == 400


def test_delete_is_for_administrators_with_the_typed_name(client, chat, creator, make_room):
    room = make_room()
    client.force_login(creator)
    assert client.get(reverse("rooms:delete", args=[room.id])).status_code == 403
    client.force_login(AdministratorFactory())
    url = reverse("rooms:delete", args=[room.id])
    wrong = client.post(url, {"confirm_name": "nope"})
    assert wrong.status_code == 400
    assert wrong.context["typed"] == "nope"
    done = client.post(url, {"confirm_name": room.name})
    assert done["Location"] == reverse("rooms:list")
    assert client.get(reverse("rooms:detail", args=[room.id])).status_code == 404


def test_a_half_made_room_is_reported_as_rolled_back(
    client, failing_chat, creator, category_world, monkeypatch
):
    failing = failing_chat("m.space.child", times=TRIES)
    monkeypatch.setattr(room_services, "chat_backend", lambda: failing)
    client.force_login(creator)
    data = create_data(category_world["category"].id)
    response = client.post(reverse("rooms:create"), data)
    assert response.status_code == 503
    assert "it was removed again: nothing was created" in response.content.decode()
    assert response.context["form"]["name"].value() == data["name"]


# --- the name check tells nothing to those who may not use it -------------------------


@pytest.fixture
def secret_elsewhere(chat, make_chat_user):
    """A Secret room in a category the test's people have nothing to do with."""
    other = make_chat_user("othercreator")
    category = chat.create_category(
        name=unique("Hidden "), description="", creators=[other.user_id]
    )
    chat.add_to_category_scope(category.id, [other.user_id])
    return chat.create_room(
        room_services.RoomSettings(
            name=unique("Secret plans "),
            description="",
            category_id=category.id,
            privacy=Privacy.SECRET,
        ),
        managers=[other.user_id],
        members=[other.user_id],
    )


def test_people_who_may_not_create_get_no_answer_from_the_name_check(
    client, outsider, secret_elsewhere
):
    client.force_login(outsider)
    response = client.get(reverse("rooms:check_name"), {"name": secret_elsewhere.name})
    assert response.status_code == 403
    assert secret_elsewhere.name not in response.content.decode()
    refusal = AuditEntry.objects.get(action="access.denied")
    assert (refusal.outcome, refusal.target_id) == (Outcome.DENIED, reverse("rooms:check_name"))


def test_in_scope_people_may_check_only_for_requests(client, member, category_world):
    client.force_login(member)
    category = category_world["category"].id
    assert (
        client.get(reverse("rooms:check_name"), {"name": "x", "category": category}).status_code
        == 403
    )
    asking = client.get(
        reverse("rooms:check_name"), {"name": "x", "category": category, "requests": 1}
    )
    assert asking.status_code == 200


def test_a_name_taken_where_the_person_cannot_see_reads_only_not_available(
    client, creator, category_world, secret_elsewhere
):
    client.force_login(creator)
    response = client.get(
        reverse("rooms:check_name"),
        {"name": secret_elsewhere.name.upper(), "category": category_world["category"].id},
    )
    text = response.content.decode()
    assert "is not available" in text
    assert secret_elsewhere.id not in text
    assert "Hidden" not in text


def test_a_creator_cannot_check_names_for_another_category(client, creator, secret_elsewhere):
    client.force_login(creator)
    response = client.get(
        reverse("rooms:check_name"),
        {"name": "Anything", "category": secret_elsewhere.settings.category_id},
    )
    assert response.status_code == 403


def test_only_a_rooms_managers_check_names_for_renaming_it(client, member, make_room):
    room = make_room()
    client.force_login(member)
    response = client.get(reverse("rooms:check_name"), {"name": "x", "room": room.id})
    assert response.status_code == 403


@pytest.mark.parametrize("query", [{"request": "²", "requests": 1}, {"request": "-1"}])
def test_a_name_check_asked_nonsense_is_a_400(client, creator, query):
    client.force_login(creator)
    assert client.get(reverse("rooms:check_name"), {"name": "x"} | query).status_code == 400


def test_someone_elses_form_token_does_not_lead_to_their_room(
    client, creator, category_world, make_chat_user
):
    category = category_world["category"].id
    client.force_login(creator)
    data = create_data(category)
    first = client.post(reverse("rooms:create"), data)
    assert first.status_code == 302
    # Another Creator of the same category posts a form carrying that same token.
    other = make_chat_user("secondcreator")
    room_services.chat_backend().set_category_creators(
        category, [category_world["creator"].user_id, other.user_id]
    )
    room_services.chat_backend().add_to_category_scope(category, [other.user_id])
    client.force_login(portal_user(other))
    second = client.post(
        reverse("rooms:create"), create_data(category, submission=data["submission"])
    )
    assert second.status_code == 400
    assert "reload the page" in second.content.decode()
    assert first["Location"] not in second.content.decode()
    entry = AuditEntry.objects.filter(action="room.create", actor=portal_user(other)).get()
    assert entry.outcome == Outcome.FAILED


def test_a_change_the_chat_server_cannot_take_is_audited_as_failed(
    client, creator, make_room, settings
):
    room = make_room(privacy=Privacy.SECRET)
    client.force_login(creator)
    settings.CHAT_SERVER_URL = "http://127.0.0.1:9"  # nothing listens: the change fails
    response = client.post(
        reverse("rooms:privacy", args=[room.id]),
        {"privacy": "closed", "confirm": "yes"},
        follow=True,
    )
    assert "The privacy was not changed" in response.content.decode()
    entry = AuditEntry.objects.get(action="room.privacy")
    assert (entry.outcome, entry.target_id) == (Outcome.FAILED, room.id)
    assert "cannot be reached" in entry.error
    # Reading the room needs no chat server: the page answers from the index.
    assert client.get(reverse("rooms:detail", args=[room.id])).status_code == 200


def test_a_name_check_costs_no_chat_server_call(client, creator, category_world):
    client.force_login(creator)
    check = {"name": unique("Fresh "), "category": category_world["category"].id}
    calls = room_services.chat_backend().server.http
    before = calls.calls
    response = client.get(reverse("rooms:check_name"), check)
    assert "is free" in response.content.decode()
    assert calls.calls == before  # the category and the names are read from the index
