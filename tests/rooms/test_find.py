"""Find a room and join it: a person in a category's scope finds its Open and Closed rooms
(not its Secret ones), joins an Open room on the chat server, and is refused the rest."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms.backend.records import Privacy
from tests.conftest import unique

pytestmark = pytest.mark.django_db
FIND = reverse("rooms:find")


@pytest.fixture
def rooms(make_room):
    stem = unique("Findable ")
    return {
        privacy: make_room(name=f"{stem} {privacy.value}", privacy=privacy) for privacy in Privacy
    } | {"stem": stem}


def found(client, **query) -> list[str]:
    return [listing.name for listing in client.get(FIND, query).context["listings"]]


def test_a_person_in_scope_finds_open_and_closed_rooms_not_secret_ones(client, member, rooms):
    client.force_login(member)
    names = found(client, q=rooms["stem"])
    assert names == [rooms[Privacy.CLOSED].name, rooms[Privacy.OPEN].name]
    assert found(client, q=rooms["stem"], privacy="open") == [rooms[Privacy.OPEN].name]
    assert found(client, q=rooms["stem"].upper()) == names  # any letter case


def test_a_person_outside_the_scope_finds_nothing(client, outsider, rooms):
    client.force_login(outsider)
    assert found(client, q=rooms["stem"]) == []
    assert "No room matches" in client.get(FIND, {"q": rooms["stem"]}).content.decode()


def test_joining_an_open_room_makes_the_person_a_member_on_the_chat_server(
    client, chat, member, rooms
):
    room = rooms[Privacy.OPEN]
    client.force_login(member)
    page = client.get(FIND, {"q": rooms["stem"]}).content.decode()
    assert reverse("rooms:join", args=[room.id]) in page
    assert reverse("rooms:join", args=[rooms[Privacy.CLOSED].id]) not in page
    response = client.post(reverse("rooms:join", args=[room.id]), follow=True)
    assert "it is in your chat client now" in response.content.decode()
    assert member.chat_id in chat.get_room(room.id).members  # the server's truth
    assert found(client, q=rooms["stem"], privacy="open") == [room.name]
    listing = client.get(FIND, {"q": rooms["stem"], "privacy": "open"}).context["listings"][0]
    assert listing.roles == ("Member",)
    entry = AuditEntry.objects.get(action="room.join")
    assert (entry.outcome, entry.target_id, entry.after) == (
        Outcome.SUCCEEDED,
        room.id,
        {"person": member.chat_id},
    )


def test_a_closed_room_is_not_joined_directly_and_the_refusal_is_audited(
    client, chat, member, rooms
):
    room = rooms[Privacy.CLOSED]
    client.force_login(member)
    response = client.post(reverse("rooms:join", args=[room.id]))
    assert response.status_code == 403
    assert member.chat_id not in chat.get_room(room.id).members
    entry = AuditEntry.objects.get(action="room.join")
    assert entry.outcome == Outcome.DENIED
    assert "ask one of the room's Managers" in entry.error


def test_nobody_outside_the_scope_joins_and_secret_rooms_stay_hidden(client, outsider, rooms):
    client.force_login(outsider)
    for privacy in Privacy:  # answered as if the room did not exist
        response = client.post(reverse("rooms:join", args=[rooms[privacy].id]))
        assert response.status_code == 404


def test_with_the_chat_server_down_nobody_is_told_they_joined(client, member, rooms, settings):
    room = rooms[Privacy.OPEN]
    client.force_login(member)
    settings.CHAT_SERVER_URL = "http://127.0.0.1:9"  # nothing listens: the join fails
    response = client.post(reverse("rooms:join", args=[room.id]), follow=True)
    page = response.content.decode()
    assert "You did not join the room" in page
    assert "cannot be reached" in page
    listing = client.get(FIND, {"q": rooms["stem"], "privacy": "open"}).context["listings"][0]
    assert listing.roles == ()  # the index holds no membership the server did not confirm
    entry = AuditEntry.objects.get(action="room.join")
    assert (entry.outcome, entry.target_id) == (Outcome.FAILED, room.id)


def test_asking_to_join_a_closed_room_the_managers_let_in_or_turn_down(
    client, chat, creator, make_room, category_world, mailoutbox, django_capture_on_commit_callbacks
):
    """From Find a room a person in scope asks to join a Closed room, with a message; the
    room's Managers see it, let them in (a Member on the chat server) or turn them down;
    the person is told by e-mail; asking twice is refused."""
    from rooms.models import JoinRequest
    from tests.conftest import portal_user

    asker = portal_user(category_world["member"])
    asker.email = "member@example.test"
    asker.save(update_fields=["email"])
    let_in, turned_down = make_room(), make_room()
    client.force_login(asker)
    found = client.get(reverse("rooms:find"), {"q": let_in.name}).content.decode()
    assert "Ask to join" in found
    for room in (let_in, turned_down):
        asked = client.post(reverse("rooms:ask", args=[room.id]), {"message": "On the team"})
        assert asked.status_code == 302
    again = client.post(reverse("rooms:ask", args=[let_in.id]), {"message": ""}, follow=True)
    assert "already asked to join" in again.content.decode()
    assert JoinRequest.objects.filter(status="pending").count() == 2
    assert "You asked to join" in client.get(reverse("rooms:find")).content.decode()

    client.force_login(creator)  # the rooms' Manager
    page = client.get(reverse("rooms:detail", args=[let_in.id])).content.decode()
    assert "Asking to join" in page
    assert "On the team" in page
    decide = "roles:decide"
    with django_capture_on_commit_callbacks(execute=True):  # the mail, once committed
        client.post(
            reverse(decide, args=[let_in.id]), {"user_id": asker.chat_id, "decision": "accept"}
        )
        client.post(
            reverse(decide, args=[turned_down.id]),
            {"user_id": asker.chat_id, "decision": "decline", "reason": "Staff only"},
        )
    assert asker.chat_id in chat.get_room(let_in.id).members
    assert asker.chat_id not in chat.get_room(turned_down.id).members
    assert sorted(JoinRequest.objects.values_list("status", flat=True)) == [
        "accepted",
        "declined",
    ]
    assert AuditEntry.objects.filter(action="room.join_request", outcome="succeeded").count() == 2
    assert AuditEntry.objects.get(action="room.join_request.accepted").outcome == "succeeded"
    declined = AuditEntry.objects.get(action="room.join_request.declined")
    assert (declined.outcome, declined.after["reason"]) == ("succeeded", "Staff only")
    subjects = sorted(mail.subject for mail in mailoutbox)
    assert any("You were let into" in s for s in subjects)
    turned = next(mail for mail in mailoutbox if "was turned down" in mail.subject)
    assert "The reason given: Staff only" in turned.body
    # Told in the portal too, whatever became of the mail; and free to ask again.
    client.force_login(asker)
    found = client.get(reverse("rooms:find"), {"q": turned_down.name}).content.decode()
    assert "Your request was turned down: “Staff only”" in found
    assert "Ask to join" in found


def test_people_asking_to_join_are_in_the_approval_queue_and_decided_there(
    client, chat, creator, make_room, make_chat_user, category_world
):
    """Portal requests and knocks of the rooms a person manages are in their approval queue
    and counted in its badge; deciding there comes back to the queue."""
    from rooms.models import JoinRequest
    from tests.conftest import portal_user

    room = make_room()
    asker = portal_user(category_world["member"])
    JoinRequest.objects.create(room_id=room.id, requester=asker, message="Please")
    knocker = make_chat_user("knocker")
    chat.add_to_category_scope(room.settings.category_id, [knocker.user_id])
    assert knocker.knock(room.id).status_code == 200
    chat.reindex(room.id)

    client.force_login(creator)
    queue = reverse("requests:queue")
    page = client.get(queue).content.decode()
    assert 'aria-label="2 waiting"' in page
    assert room.name in page
    assert "Please" in page
    assert knocker.user_id in page
    decided = client.post(
        reverse("roles:decide", args=[room.id]),
        {"user_id": asker.chat_id, "decision": "accept", "next": queue},
    )
    assert decided.url == queue
    page = client.get(queue).content.decode()
    assert "is now a Member" in page
    assert 'aria-label="1 waiting"' in page
    assert asker.chat_id in chat.get_room(room.id).members

    client.force_login(asker)  # not a Manager: nothing to decide, no badge
    assert "count-badge" not in client.get(queue).content.decode()


def test_accepting_someone_who_left_the_scope_turns_them_down(
    client, chat, creator, make_room, category_world, mailoutbox, django_capture_on_commit_callbacks
):
    from rooms.models import JoinRequest
    from tests.conftest import portal_user

    room = make_room()
    asker = portal_user(category_world["member"])
    asker.email = "member@example.test"
    asker.save(update_fields=["email"])
    asked = JoinRequest.objects.create(room_id=room.id, requester=asker)
    chat.remove_from_category_scope(room.settings.category_id, [asker.chat_id])
    client.force_login(creator)
    with django_capture_on_commit_callbacks(execute=True):  # the mail, once committed
        told = client.post(
            reverse("roles:decide", args=[room.id]),
            {"user_id": asker.chat_id, "decision": "accept"},
            follow=True,
        ).content.decode()
    assert "no longer in the scope" in told
    asked.refresh_from_db()
    assert (asked.status, asked.decision_reason) == ("declined", "outside the category's scope")
    assert asker.chat_id not in chat.get_room(room.id).members
    refused = AuditEntry.objects.get(action="room.join_request.accepted")
    declined = AuditEntry.objects.get(action="room.join_request.declined")
    assert (refused.outcome, declined.outcome) == (Outcome.DENIED, Outcome.SUCCEEDED)
    assert [m.subject for m in mailoutbox if "turned down" in m.subject]
