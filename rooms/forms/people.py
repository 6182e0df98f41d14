"""Forms of the people area: finding a person, and choosing what a removal takes away."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms

SUCCESSOR = "successor:"  # a successor field's name: this, then the room's ID


class PersonFindForm(forms.Form):
    q = forms.CharField(required=False, max_length=255, label="Chat ID or name")


class RemovalForm(forms.Form):
    """The items (keys of what the person holds) a removal takes away; the successor named
    for each room that would be left without a Manager; `confirm` once previewed."""

    confirm = forms.BooleanField(required=False)

    def __init__(self, data: Any, *, keys: Iterable[str]) -> None:
        super().__init__(data)
        self.fields["items"] = forms.MultipleChoiceField(
            required=False, choices=[(key, key) for key in keys]
        )

    def successors(self, room_ids: Iterable[str]) -> dict[str, str]:
        """What was typed as the successor of each of these rooms."""
        return {room: str(self.data.get(SUCCESSOR + room, ""))[:255] for room in room_ids}
