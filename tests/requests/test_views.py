"""Room request pages, for requesters, approvers and everyone else, with bad input."""

from __future__ import annotations

import pytest
from django.urls import reverse

from rooms.backend.records import Privacy, RoomSettings
from rooms.models import RoomRequest
from rooms.services import requests as request_services
from tests.conftest import unique
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
    response = client.get(reverse("rooms:check_name"), {"name": asked.name.lower(), "requests": 1})
    assert "is not available" in response.content.decode()
    own = client.get(
        reverse("rooms:check_name"), {"name": asked.name, "requests": 1, "request": asked.pk}
    )
    assert "is free" in own.content.decode()


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


def test_decline_needs_a_reason(client, creator, asked):
    client.force_login(creator)
    empty = client.post(reverse("requests:decline", args=[asked.pk]), {"reason": ""})
    assert empty.status_code == 400
    assert "Tell the requester why" in empty.content.decode()
    client.post(reverse("requests:decline", args=[asked.pk]), {"reason": "No"})
    asked.refresh_from_db()
    assert asked.status == RoomRequest.Status.DECLINED


def test_others_are_refused(client, outsider, member, asked):
    client.force_login(outsider)
    assert client.get(reverse("requests:detail", args=[asked.pk])).status_code == 403
    assert client.post(reverse("requests:approve", args=[asked.pk]), {}).status_code == 403
    assert (
        client.post(reverse("requests:decline", args=[asked.pk]), {"reason": "x"}).status_code
        == 403
    )
    assert client.post(reverse("requests:cancel", args=[asked.pk])).status_code == 403
    client.force_login(AuditorFactory())
    assert client.get(reverse("requests:edit", args=[asked.pk])).status_code == 403
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
