"""Real chat users with their own Matrix logins, to check what people can do in a room."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

CLIENT = "/_matrix/client/v3"


def _q(value: str) -> str:
    return quote(value, safe="")


@dataclass
class ChatUser:
    user_id: str
    http: httpx.Client

    @classmethod
    def login(cls, url: str, user_id: str, password: str) -> ChatUser:
        response = httpx.post(
            f"{url}{CLIENT}/login",
            json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user_id},
                "password": password,
            },
        )
        response.raise_for_status()
        token = response.json()["access_token"]
        return cls(
            user_id,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10),
        )

    def join(self, room_id: str) -> httpx.Response:
        return self.http.post(f"{CLIENT}/join/{_q(room_id)}", json={})

    def knock(self, room_id: str) -> httpx.Response:
        return self.http.post(f"{CLIENT}/knock/{_q(room_id)}", json={})

    def put_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> httpx.Response:
        """Change room state as a chat client (Element) would."""
        return self.http.put(
            f"{CLIENT}/rooms/{_q(room_id)}/state/{_q(event_type)}/{_q(state_key)}", json=content
        )

    def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
        response = self.http.get(
            f"{CLIENT}/rooms/{_q(room_id)}/state/{_q(event_type)}/{_q(state_key)}"
        )
        response.raise_for_status()
        return dict(response.json())

    def invite(self, room_id: str, user_id: str) -> httpx.Response:
        return self.http.post(f"{CLIENT}/rooms/{_q(room_id)}/invite", json={"user_id": user_id})

    def kick(self, room_id: str, user_id: str) -> httpx.Response:
        return self.http.post(f"{CLIENT}/rooms/{_q(room_id)}/kick", json={"user_id": user_id})

    def send(self, room_id: str, text: str) -> httpx.Response:
        return self.http.put(
            f"{CLIENT}/rooms/{_q(room_id)}/send/m.room.message/{uuid.uuid4().hex}",
            json={"msgtype": "m.text", "body": text},
        )

    def state_ids(self, room_id: str) -> dict[tuple[str, str], str]:
        """The event ID of each piece of the room's current state."""
        response = self.http.get(f"{CLIENT}/rooms/{_q(room_id)}/state")
        response.raise_for_status()
        return {(e["type"], e["state_key"]): e["event_id"] for e in response.json()}

    def redact(self, room_id: str, event_id: str) -> httpx.Response:
        return self.http.put(
            f"{CLIENT}/rooms/{_q(room_id)}/redact/{_q(event_id)}/{uuid.uuid4().hex}", json={}
        )

    def read(self, room_id: str) -> httpx.Response:
        return self.http.get(f"{CLIENT}/rooms/{_q(room_id)}/messages", params={"dir": "b"})

    def visible_rooms(self, space_id: str) -> set[str] | None:
        """The rooms this person sees in a category (None: the category itself is hidden)."""
        response = self.http.get(f"/_matrix/client/v1/rooms/{_q(space_id)}/hierarchy")
        if response.status_code == 403:
            return None
        response.raise_for_status()
        return {room["room_id"] for room in response.json()["rooms"]} - {space_id}
