"""Categories: spaces the service account created, with their scope and Creators."""

from __future__ import annotations

from collections.abc import Iterable

from rooms.backend.errors import ChatConflict, ChatNotFound
from rooms.backend.matrix.base import ADMIN, CLIENT, PAGE_SIZE, MatrixBase, state_event
from rooms.backend.matrix.state import CREATOR_LEVEL, category_from_state, category_power_levels
from rooms.backend.matrix.transport import segment
from rooms.backend.records import DEFAULT_OPTIONS, Category, ChatOptions
from rooms.chatserver.policy import CATEGORY_SETTINGS_EVENT, SPACE_TYPE


class CategoryOperations(MatrixBase):
    def _space_ids(self) -> list[str]:
        """Every space the service account created: the portal's categories."""
        ids, start = [], 0
        while True:
            body = self.http.request(
                "GET", f"{ADMIN}/v1/rooms", params={"from": start, "limit": PAGE_SIZE}
            )
            rooms = body.get("rooms", [])
            ids += [
                r["room_id"]
                for r in rooms
                if isinstance(r, dict)
                and r.get("room_type") == SPACE_TYPE
                and r.get("creator") == self.service_user
            ]
            next_batch = body.get("next_batch")
            if not rooms or next_batch is None:
                return ids
            start = int(next_batch)

    def list_categories(self) -> list[Category]:
        """Every category on the server, sorted by name (the portal's pages read the index;
        this is for checking the server itself)."""
        service_user = self.service_user
        states = [self._state(space_id) for space_id in self._space_ids()]
        categories = [category_from_state(state, service_user=service_user) for state in states]
        return sorted(categories, key=lambda c: c.name.casefold())

    def find_categories_with_create_rights(self, user_id: str) -> list[Category]:
        """The categories in which this person may create rooms (Lync's
        FindCategoriesWithCreateRights)."""
        return [c for c in self.list_categories() if c.is_creator(user_id)]

    def get_category(self, category_id: str) -> Category:
        """One category with its scope, creators and rooms."""
        state = self._state(category_id)
        if not state.is_space or self.service_user not in state.creators:
            raise ChatNotFound("There is no such category.")
        return category_from_state(state, service_user=self.service_user)

    def create_category(
        self,
        *,
        name: str,
        description: str,
        invitations_allowed: bool = True,
        creators: Iterable[str] = (),
        options: ChatOptions = DEFAULT_OPTIONS,
    ) -> Category:
        """Create a category (a space only the service account and Creators change)."""
        body = self.http.request(
            "POST",
            f"{CLIENT}/createRoom",
            json={
                "name": name,
                "topic": description,
                "preset": "private_chat",
                "creation_content": {"type": SPACE_TYPE},
                "initial_state": [
                    state_event(
                        CATEGORY_SETTINGS_EVENT, category_settings(invitations_allowed, options)
                    ),
                    state_event("m.room.guest_access", {"guest_access": "forbidden"}),
                ],
                "power_level_content_override": category_power_levels(creators=creators),
            },
        )
        return self.get_category(body["room_id"])

    def add_to_category_scope(self, category_id: str, user_ids: Iterable[str]) -> None:
        """Put people in the category's scope (joined to its space, so Open rooms admit them)."""
        for user_id in user_ids:
            self._again(lambda: self._ensure_member(category_id, user_id, invite=False))  # noqa: B023

    def remove_from_category_scope(self, category_id: str, user_ids: Iterable[str]) -> None:
        """Take people out of the category's scope (they leave its space)."""
        for user_id in user_ids:
            self._membership(category_id, user_id, "kick", "Removed from the category's scope")

    def deny_in_category(self, category_id: str, user_ids: Iterable[str]) -> None:
        """Deny people the category (banned from its space, so also out of its scope)."""
        for user_id in user_ids:
            self._membership(category_id, user_id, "ban", "Denied in this category")

    def undeny_in_category(self, category_id: str, user_ids: Iterable[str]) -> None:
        """Lift a denial; the person is not put back in scope by that alone."""
        for user_id in user_ids:
            self._membership(category_id, user_id, "unban", "")

    def _membership(self, space_id: str, user_id: str, how: str, reason: str) -> None:
        """Kick, ban or unban someone in a space, safe to repeat: done already is fine."""
        settled = {"kick": {"leave", "ban"}, "ban": {"ban"}, "unban": {"leave", "join", "invite"}}
        body = {"user_id": user_id} | ({"reason": reason} if reason else {})
        self._again(
            lambda: self._settle(
                space_id,
                user_id,
                lambda: self.http.request(
                    "POST", f"{CLIENT}/rooms/{segment(space_id)}/{how}", json=body
                ),
                settled[how],
            )
        )

    def update_category(
        self,
        category_id: str,
        *,
        name: str,
        description: str,
        invitations_allowed: bool,
        options: ChatOptions | None = None,
    ) -> Category:
        """Change a category's name, description, whether its rooms use invitations and
        its chat options (None: as they are; its rooms take them in `set_room_options`)."""
        current = self.get_category(category_id)
        options = options or current.options
        if name != current.name:
            self._put_state(category_id, "m.room.name", {"name": name})
        if description != current.description:
            self._put_state(category_id, "m.room.topic", {"topic": description})
        if (invitations_allowed, options) != (current.invitations_allowed, current.options):
            self._put_state(
                category_id,
                CATEGORY_SETTINGS_EVENT,
                category_settings(invitations_allowed, options),
            )
        return self.get_category(category_id)

    def set_category_creators(self, category_id: str, creators: Iterable[str]) -> Category:
        """Make exactly these people the category's Creators."""
        state = self._state(category_id)
        levels = state.user_levels()
        wanted = set(creators)
        changes: dict[str, int | None] = {
            user: None
            for user, level in levels.items()
            if level >= CREATOR_LEVEL and user not in wanted and user != self.service_user
        }
        changes |= {user: CREATOR_LEVEL for user in wanted if levels.get(user, 0) < CREATOR_LEVEL}
        if changes:
            self._set_levels(state, users=changes)
        return self.get_category(category_id)

    def delete_category(self, category_id: str) -> None:
        """Delete an empty category's space."""
        category = self.get_category(category_id)
        if category.room_ids:
            raise ChatConflict("The category still has rooms.")
        self._purge(category_id, "This category was deleted.")


def category_settings(invitations_allowed: bool, options: ChatOptions) -> dict[str, bool | int]:
    """The category's settings event: invitations, and the chat options its rooms carry."""
    return {"invitations_allowed": invitations_allowed} | options.values()
