"""Room request pages, for requesters, approvers and everyone else, with bad input."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms.backend.records import Privacy, RoomSettings
from rooms.models import RoomRequest
from rooms.services import requests as request_services
from tests.conftest import portal_user, unique
from tests.factories import AuditorFactory

pytestmark = pytest.mark.django_db


def form_data(category_id: str, **changes) -> dict:
    return {
        "name": unique("Asked "),
        "description": "",
        "category": category_id,
        "privacy": "closed",
        "invitations": "inherit",
        "justification": "Because",
    } | changes


@pytest.fixture
def asked(member, category_world):
    return request_services.request_submit(
        actor=member,
        settings=RoomSettings(unique("Asked "), "", category_world["category"].id, Privacy.SECRET),
        justification="Because",
    )


def test_ask_for_a_room(client, member, category_world):
    client.force_login(member)
    page = client.get(reverse("requests:new"))
    assert category_world["category"].name in page.content.decode()
    response = client.post(reverse("requests:new"), form_data(category_world["category"].id))
    request = RoomRequest.objects.get()
    assert response["Location"] == reverse("requests:detail", args=[request.pk])
    assert request.requester == member


def test_the_same_request_form_sent_twice_asks_once(client, member, category_world, outsider):
    client.force_login(member)
    page = client.get(reverse("requests:new"))
    token = page.context["form"].initial["submission"]
    assert f'value="{token}"' in page.content.decode()  # the form carries its token
    data = form_data(category_world["category"].id) | {"submission": str(token)}
    first = client.post(reverse("requests:new"), data)
    again = client.post(reverse("requests:new"), data)  # a resent post, a double click
    request = RoomRequest.objects.get()
    assert first["Location"] == again["Location"] == reverse("requests:detail", args=[request.pk])
    assert AuditEntry.objects.filter(action="request.submitted").count() == 1
    client.force_login(outsider)  # someone else's token is not theirs to send
    taken = client.post(reverse("requests:new"), data)
    assert taken.status_code == 400
    assert RoomRequest.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": " "}, "name"),
        ({"justification": ""}, "justification"),
        ({"privacy": "x"}, "privacy"),
    ],
)
def test_bad_input_is_a_field_error_and_kept(client, member, category_world, changes, field):
    client.force_login(member)
    data = form_data(category_world["category"].id, **changes)
    response = client.post(reverse("requests:new"), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert response.context["form"]["description"].value() == data["description"]


def test_a_category_outside_the_scope_is_refused(client, chat, member):
    elsewhere = chat.create_category(name=unique("Elsewhere "), description="")
    client.force_login(member)
    response = client.post(reverse("requests:new"), form_data(elsewhere.id))
    assert response.status_code == 403
    assert "not in the scope" in response.context["form"].errors["category"][0]


def test_check_name_flags_names_in_pending_requests(client, member, asked):
    client.force_login(member)
    check = {"name": asked.name.lower(), "requests": 1, "category": asked.category_id}
    response = client.get(reverse("rooms:check_name"), check)
    assert "is not available" in response.content.decode()
    own = client.get(reverse("rooms:check_name"), check | {"request": asked.pk})
    assert "is free" in own.content.decode()


def test_another_categorys_pending_names_are_not_told(client, chat, make_chat_user, asked):
    """Someone asking in another category learns nothing of this category's requests: the
    name is free to them, and their request for it is taken."""
    elsewhere = chat.create_category(name=unique("Elsewhere "), description="")
    stranger = portal_user(make_chat_user("stranger"))
    chat.add_to_category_scope(elsewhere.id, [stranger.chat_id])
    client.force_login(stranger)
    check = {"name": asked.name, "requests": 1, "category": elsewhere.id}
    assert "is free" in client.get(reverse("rooms:check_name"), check).content.decode()
    response = client.post(
        reverse("requests:new"), form_data(elsewhere.id, name=asked.name.upper())
    )
    assert response.status_code == 302
    assert RoomRequest.objects.filter(name__iexact=asked.name).count() == 2


def test_someone_elses_request_is_answered_as_one_not_there_and_audited(
    client, make_chat_user, asked
):
    prober = portal_user(make_chat_user("prober"))
    client.force_login(prober)
    absent = asked.pk + 1000
    for name in ("requests:detail", "requests:edit"):
        theirs = client.get(reverse(name, args=[asked.pk]))
        nothing = client.get(reverse(name, args=[absent]))
        assert theirs.status_code == nothing.status_code == 404
    for name in ("requests:cancel", "requests:approve", "requests:decline", "requests:retry"):
        theirs = client.post(reverse(name, args=[asked.pk]), {"reason": "x"})
        nothing = client.post(reverse(name, args=[absent]), {"reason": "x"})
        assert theirs.status_code == nothing.status_code == 404
    asked.refresh_from_db()
    assert asked.status == RoomRequest.Status.PENDING
    refusals = AuditEntry.objects.filter(outcome=Outcome.DENIED, actor_username=prober.username)
    # Both reads of theirs, and every change asked (of theirs and of nothing).
    assert refusals.count() == 2 + 4 * 2


def test_my_requests_and_the_queue_with_its_badge(client, creator, member, asked):
    client.force_login(member)
    assert asked.name in client.get(reverse("requests:list")).content.decode()
    client.force_login(creator)
    queue = client.get(reverse("requests:queue"))
    assert list(queue.context["requests"]) == [asked]
    assert 'aria-label="1 waiting"' in queue.content.decode()


def test_approve_from_the_page(client, chat, creator, member, asked):
    client.force_login(creator)
    page = client.get(reverse("requests:detail", args=[asked.pk]))
    assert "Approve and create the room" in page.content.decode()
    response = client.post(
        reverse("requests:approve", args=[asked.pk]),
        {"name": asked.name, "description": "", "privacy": "secret", "invitations": "inherit"},
        follow=True,
    )
    assert "was created for its requester" in response.content.decode()
    asked.refresh_from_db()
    assert chat.get_room(asked.room_id).managers == {member.chat_id}


def test_the_ask_stays_shown_beside_what_was_approved(client, creator, member, asked):
    client.force_login(creator)
    approved_name = unique("Approved ")
    client.post(
        reverse("requests:approve", args=[asked.pk]),
        {"name": approved_name, "description": "", "privacy": "closed", "invitations": "off"},
    )
    client.force_login(member)
    page = client.get(reverse("requests:detail", args=[asked.pk])).content.decode()
    asked_part, approved_part = page.split("What was approved")
    assert asked.name in asked_part
    assert "Secret" in asked_part
    assert "new members accept an invitation" in asked_part  # said in words, not "Inherit"
    assert approved_name in approved_part
    assert "Closed" in approved_part
    assert "added directly" in approved_part
    assert "changed the name, privacy, invitations" in approved_part


def test_decline_needs_a_reason(client, creator, asked):
    client.force_login(creator)
    empty = client.post(reverse("requests:decline", args=[asked.pk]), {"reason": ""})
    assert empty.status_code == 400
    assert "Tell the requester why" in empty.content.decode()
    client.post(reverse("requests:decline", args=[asked.pk]), {"reason": "No"})
    asked.refresh_from_db()
    assert asked.status == RoomRequest.Status.DECLINED


def test_others_are_told_it_is_not_there_and_the_requester_may_not_decide(
    client, outsider, member, asked
):
    client.force_login(outsider)
    assert client.get(reverse("requests:detail", args=[asked.pk])).status_code == 404
    assert client.post(reverse("requests:approve", args=[asked.pk]), {}).status_code == 404
    assert (
        client.post(reverse("requests:decline", args=[asked.pk]), {"reason": "x"}).status_code
        == 404
    )
    assert client.post(reverse("requests:cancel", args=[asked.pk])).status_code == 404
    client.force_login(AuditorFactory())
    assert client.get(reverse("requests:edit", args=[asked.pk])).status_code == 404
    client.force_login(member)  # the requester cannot approve their own request
    own = client.post(
        reverse("requests:approve", args=[asked.pk]),
        {"name": asked.name, "description": "", "privacy": "secret", "invitations": "inherit"},
    )
    assert own.status_code == 403


@pytest.mark.parametrize("pk", [999999])
def test_tampered_ids_are_404(client, member, pk):
    client.force_login(member)
    assert client.get(reverse("requests:detail", args=[pk])).status_code == 404
    assert client.post(reverse("requests:cancel", args=[pk])).status_code == 404
    assert client.post(reverse("requests:retry", args=[pk])).status_code == 404


def test_a_line_break_in_a_name_is_a_form_error_and_nothing_is_saved(
    client, member, category_world, mailoutbox
):
    client.force_login(member)
    response = client.post(
        reverse("requests:new"),
        form_data(category_world["category"].id, name="Two\nlines"),
    )
    assert response.status_code == 400
    assert "one line of text" in response.content.decode()
    assert not RoomRequest.objects.exists()
    assert mailoutbox == []


def test_a_refusal_is_one_log_line_without_a_traceback(client, outsider, caplog):
    client.force_login(outsider)
    with caplog.at_level("WARNING"):
        response = client.get(reverse("rooms:check_name"), {"name": "x"})
    assert response.status_code == 403
    refusals = [r for r in caplog.records if r.name == "django.request"]
    assert len(refusals) == 1
    assert refusals[0].exc_info is None
    assert "Traceback" not in caplog.text
