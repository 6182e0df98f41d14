"""Forms of the requests area: asking for a room, approving with changes, declining."""

from __future__ import annotations

from typing import Any

from django import forms

from rooms.backend.records import (
    Privacy,
)
from rooms.forms.rooms import PRIVACY_CHOICES, RoomCreateForm, RoomSettingsBase
from rooms.services.requests import request_name_problem


class RoomRequestForm(RoomCreateForm):
    """What someone without create rights asks for, and why."""

    justification = forms.CharField(
        label="Why do you need this room?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Say why the room is needed: approvers decide on it."},
    )

    def __init__(self, *args: Any, request_pk: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_pk = request_pk
        if request_pk is not None:  # a change to a request: there is nothing to make twice
            del self.fields["submission"]
        else:  # the page sends it; a post without it makes a request all the same
            self.fields["submission"].required = False

    def name_problem(self, name: str) -> str:
        # The raw choice: the category field is cleaned after the name.
        category_id = str(self.data.get("category", ""))
        return request_name_problem(name, category_id=category_id, exclude_pk=self.request_pk)


class RoomApproveForm(RoomSettingsBase):
    """The settings an approver may adjust before approving."""

    privacy = forms.ChoiceField(
        widget=forms.RadioSelect,
        choices=PRIVACY_CHOICES,
        error_messages={"invalid_choice": "Choose Open, Closed or Secret."},
    )

    def __init__(self, *args: Any, invitations_allowed: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invitations_offered = invitations_allowed

    def clean_privacy(self) -> Privacy:
        return Privacy(self.cleaned_data["privacy"])


class DeclineForm(forms.Form):
    reason = forms.CharField(
        label="Why is it declined?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Tell the requester why: they will read it."},
    )
