"""What the common changes cost in chat-server requests, counted on the wire (every HTTP
request the portal sends the homeserver, from any of its clients): the numbers the README
gives, which grow with nothing but the change."""

from __future__ import annotations

import uuid

import httpx
import pytest
from django.urls import reverse

from rooms.backend.matrix.client import MatrixChatBackend
from tests.conftest import unique

pytestmark = pytest.mark.django_db

# The README's "Chat-server calls" list says these; change both together.
README_CALLS = {"create a room": 4, "add one member": 2, "change privacy": 3}


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        return super().handle_request(request)


@pytest.fixture
def wire(synapse, monkeypatch) -> CountingTransport:
    counting = CountingTransport()
    client = MatrixChatBackend(
        base_url=synapse.url,
        server_name=synapse.server_name,
        token=synapse.token,
        transport=counting,
    )
    monkeypatch.setattr("rooms.index.backend.server_client", lambda: client)
    counting.client = client
    return counting


def test_the_common_changes_cost_what_the_readme_says(wire, client, chat, creator, category_world):
    """Through the pages, as people make them, after the client's first request (which
    asks the homeserver who the service account is, once per process thread)."""
    client.force_login(creator)
    category = category_world["category"]
    assert wire.client.service_user  # its one-time request (whoami), out of the count
    name = unique("Counted ")

    def cost(url: str, data: dict) -> int:
        before = len(wire.sent)
        assert client.post(url, data).status_code == 302
        return len(wire.sent) - before

    data = {"name": name, "description": "", "category": category.id, "privacy": "closed"}
    created = cost(
        reverse("rooms:create"),
        data | {"invitations": "inherit", "submission": str(uuid.uuid4())},
    )
    [room] = [r for r in chat.get_rooms(chat.get_category(category.id).room_ids) if r.name == name]
    measured = {
        "create a room": created,
        "add one member": cost(
            reverse("roles:add", args=[room.id]),
            {"role": "member", "user_id": category_world["member"].user_id, "confirm": "on"},
        ),
        "change privacy": cost(
            reverse("rooms:privacy", args=[room.id]), {"privacy": "secret", "confirm": "on"}
        ),
    }
    assert measured == README_CALLS, wire.sent
