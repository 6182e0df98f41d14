"""The rules on the chat server, read and put back: what a room's state breaks (in the
portal's words, `rooms.chatserver.policy`), and undoing it as the service account."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rooms.backend.matrix.rooms import RoomOperations, portal_settings
from rooms.backend.matrix.state import RoomState, category_of, join_rules_for, widget_content
from rooms.backend.records import Category, Privacy, Room
from rooms.chatserver.policy import (
    ADD_IN_PREFIX,
    DAY_MS,
    GUEST_ACCESS,
    OPEN_SERVER_ACL,
    ROOM_SETTINGS_EVENT,
    WIDGET_EVENT,
    Breach,
    Governed,
    Rule,
    breaches,
    kind_refused,
    repaired_levels,
)

StateKey = tuple[str, str]


class EnforcementOperations(RoomOperations):
    def read_breaches(
        self,
        room_id: str,
        *,
        category_id: str,
        category_for: Callable[[str], Category | None],
        changed: Iterable[StateKey],
        name_holder: Callable[[str], str | None],
    ) -> tuple[RoomState, Category | None, list[Breach]]:
        """A room's state now, its category (the one given, else the one its state links
        it to; None: the room is not governed), and what in it breaks the rules: all its
        state breaks, and the kinds of change (`changed`) no chat user may make at all."""
        state = self._state(room_id)
        category = category_for(category_id or category_of(state))
        if category is None or state.is_space:
            return state, None, []
        view = self.governed(state, category, name_holder=name_holder)
        found = breaches(view)
        for event_type, state_key in changed:
            by_kind = kind_refused(view, event_type, state_key)
            if by_kind is not None and by_kind not in found:
                found.append(by_kind)
        return state, category, found

    def governed(
        self,
        state: RoomState,
        category: Category,
        *,
        name_holder: Callable[[str], str | None] = lambda key: None,
    ) -> Governed:
        return Governed(
            state.room_id,
            state.events,
            self.service_user,
            category.id,
            category.name,
            in_scope=category.in_scope,
            creators=frozenset(state.creators),
            name_holder=name_holder,
        )

    def undo(
        self, state: RoomState, found: list[Breach], *, room: Room | None, category: Category
    ) -> dict[StateKey, str]:
        """Put back, as the service account, what these breaches changed; for each piece
        of state, what was undone ("" where it cannot be: encryption stays on)."""
        room_id = state.room_id
        view = self.governed(state, category)
        done: dict[StateKey, str] = {}
        for breach in found:
            subject = breach.subject
            if subject in done:
                continue
            event_type, state_key = subject
            if event_type == "m.room.member":
                self._kick(room_id, state_key, "Outside the category's scope")
                done[subject] = f"removed {state_key} from the room"
            elif event_type == "m.room.power_levels":
                out = {b.person for b in found if b.rule is Rule.SCOPE and b.person}
                self._put_state(room_id, event_type, repaired_levels(view, people_out=out))
                done[subject] = "put the power levels back as the roles allow"
            elif breach.rule is Rule.PRIVACY:
                privacy = room.settings.privacy if room else Privacy.SECRET
                self._put_state(room_id, event_type, join_rules_for(privacy, category.id))
                done[subject] = f"put the privacy back to {privacy.label}"
            elif breach.rule is Rule.HISTORY:
                wanted = view.history_visibility
                self._put_state(room_id, event_type, {"history_visibility": wanted})
                done[subject] = f"put history visibility back to “{wanted}”"
            elif breach.rule is Rule.RETENTION:
                self._put_state(room_id, event_type, view.retention)
                days = view.retention.get("max_lifetime", 0) // DAY_MS
                done[subject] = (
                    f"put message retention back to {days} days"
                    if days
                    else ("put message retention back to for ever")
                )
            elif breach.rule is Rule.GUESTS:
                self._put_state(room_id, event_type, {"guest_access": GUEST_ACCESS})
                done[subject] = f"put guest access back to “{GUEST_ACCESS}”"
            elif breach.rule is Rule.SERVER_ACL:
                self._put_state(room_id, event_type, OPEN_SERVER_ACL)
                done[subject] = "lifted the server access list"
            elif breach.rule is Rule.UPGRADE:
                self._put_state(room_id, event_type, {})
                done[subject] = "withdrew the upgrade's tombstone"
            elif breach.rule is Rule.CATEGORY:
                self._relink(state, category.id)
                done[subject] = f"linked the room to the category “{category.name}” again"
            elif breach.rule is Rule.NAME and room is not None:
                self._put_state(room_id, "m.room.name", {"name": room.name})
                done[subject] = f"put the name back to “{room.name}”"
            elif breach.rule is Rule.ADD_INS:
                attached = {ADD_IN_PREFIX + a.id: a for a in room.add_ins} if room else {}
                if event_type == WIDGET_EVENT and state_key in attached:
                    content = widget_content(attached[state_key], creator=self.service_user)
                    done[subject] = f"put the add-in “{attached[state_key].name}” back"
                else:
                    content = {}
                    done[subject] = "took away a widget the portal did not attach"
                self._put_state(room_id, event_type, content, state_key)
            elif breach.rule is Rule.PORTAL_SETTINGS:
                content = (
                    portal_settings(room.settings, room.disabled, room.options)
                    if room is not None and subject == (ROOM_SETTINGS_EVENT, "")
                    else {}
                )
                self._put_state(room_id, event_type, content, state_key)
                done[subject] = "put the portal's settings back"
            else:
                done[subject] = ""  # encryption cannot be turned off; a name with no earlier one
        return done

    def _relink(self, state: RoomState, category_id: str) -> None:
        """The room's one canonical link to its category, and no other."""
        for parent in state.of_type("m.space.parent"):
            if parent != category_id:
                self._put_state(state.room_id, "m.space.parent", {}, parent)
        wanted = {"via": [self.server_name], "canonical": True}
        if state.content("m.space.parent", category_id) != wanted:
            self._put_state(state.room_id, "m.space.parent", wanted, category_id)

    def undo_child_links(self, category: Category, changed: Iterable[str]) -> dict[str, str]:
        """Put a category's links to its rooms back as the portal made them (`category` as
        the index has it), for the links a chat user changed."""
        state = self._state(category.id)
        present = set(state.of_type("m.space.child"))
        done: dict[str, str] = {}
        for child in changed:
            if child in category.room_ids and child not in present:
                self._put_state(category.id, "m.space.child", {"via": [self.server_name]}, child)
                done[child] = f"linked {child} to the category again"
            elif child not in category.room_ids and child in present:
                self._put_state(category.id, "m.space.child", {}, child)
                done[child] = f"took the link to {child} away"
        return done
