"""Forms of the rooms area: a room's settings, filters, and the confirmations of privacy,
disable, move and delete. Rules are checked as the person types and again on submit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol, cast

from django import forms

from portal.forms import LongSelect
from rooms.backend.errors import ChatBackendError
from rooms.backend.records import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    NOT_ONE_LINE,
    Invitations,
    Privacy,
    RoomSettings,
    is_one_line,
)
from rooms.chatserver.text import clean
from rooms.services.rooms import name_problem

INVITATION_CHOICES = [
    (Invitations.INHERIT.value, "On: new members get an invitation to accept"),
    (Invitations.OFF.value, "Off: new members are added directly"),
]


def settings_from(data: dict[str, Any]) -> RoomSettings:
    """Room settings from a room-settings form's cleaned values."""
    return RoomSettings(
        name=data["name"],
        description=data["description"],
        category_id=data["category"],
        privacy=data["privacy"],
        auditorium=data["auditorium"],
        invitations=data["invitations"],
    )


PRIVACY_CHOICES = [(p.value, f"{p.label}: {p.explanation}") for p in Privacy]


def no_control_characters(value: str) -> None:
    """Names are one line of visible text: no line breaks, tabs or other control codes."""
    if not is_one_line(value):
        raise forms.ValidationError(NOT_ONE_LINE)


class CategoryOption(Protocol):
    """What a form needs of a category: a record, or the index's short form of one."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def invitations_allowed(self) -> bool: ...


class NameField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            max_length=NAME_MAX_LENGTH,
            strip=True,
            validators=[no_control_characters],
            error_messages={
                "required": "Give the room a name.",
                "max_length": f"A room name has at most {NAME_MAX_LENGTH} characters.",
            },
            **kwargs,
        )

    def to_python(self, value: Any) -> str:
        """Kept in Unicode NFC: one spelling for what looks like one name."""
        return clean(super().to_python(value) or "")


class NameCheckForm(forms.Form):
    """What the live name check is asked: a name, and where it is for."""

    name = forms.CharField(required=False, strip=False, max_length=4 * NAME_MAX_LENGTH)
    category = forms.CharField(required=False, max_length=255)
    room = forms.CharField(required=False, max_length=255)
    requests = forms.BooleanField(required=False)
    request = forms.IntegerField(required=False, min_value=1)


class RoomSettingsBase(forms.Form):
    """Name and description, with the name checked against every room on the server."""

    name = NameField()
    description = forms.CharField(
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={
            "max_length": f"A description has at most {DESCRIPTION_MAX_LENGTH} characters."
        },
    )
    auditorium = forms.BooleanField(
        required=False,
        label="Auditorium",
        help_text="Members read; only Presenters post.",
    )
    invitations = forms.ChoiceField(
        choices=INVITATION_CHOICES,
        initial=Invitations.INHERIT.value,
        label="Invitations",
    )
    room_id = ""

    def name_problem(self, name: str) -> str:
        return name_problem(name, exclude_room_id=self.room_id)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        try:
            problem = self.name_problem(name)
        except ChatBackendError as exc:
            raise forms.ValidationError(f"The name could not be checked: {exc.detail}") from exc
        if problem:
            raise forms.ValidationError(problem)
        return str(name)

    def clean_invitations(self) -> Invitations:
        return Invitations(self.cleaned_data["invitations"])


class RoomCreateForm(RoomSettingsBase):
    # Any ID is accepted here: whether the person may create rooms in that category is
    # the service's decision, refused with 403 and audited.
    category = forms.CharField(
        label="Category",
        max_length=255,
        widget=LongSelect,
        error_messages={
            "required": "Choose the category the room belongs to.",
            "max_length": "Choose a category from the list.",
        },
    )
    privacy = forms.ChoiceField(
        widget=forms.RadioSelect,
        choices=PRIVACY_CHOICES,
        initial=Privacy.CLOSED.value,
        error_messages={"invalid_choice": "Choose Open, Closed or Secret."},
    )
    submission = forms.UUIDField(widget=forms.HiddenInput)

    field_order = ["name", "description", "category", "privacy", "auditorium", "invitations"]

    def __init__(self, *args: Any, categories: Sequence[CategoryOption], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.categories = {c.id: c for c in categories}
        self.fields["category"].widget.choices = [("", "Choose a category")] + [
            (c.id, c.name) for c in categories
        ]
        if not self.is_bound and "submission" in self.fields:
            self.initial.setdefault("submission", uuid.uuid4())

    @property
    def chosen_category(self) -> CategoryOption | None:
        chosen = self.data.get("category") if self.is_bound else self.initial.get("category")
        return self.categories.get(chosen or "")

    @property
    def invitations_offered(self) -> bool:
        category = self.chosen_category
        return category is None or category.invitations_allowed

    def clean_privacy(self) -> Privacy:
        return Privacy(self.cleaned_data["privacy"])

    def room_settings(self) -> RoomSettings:
        """The valid form's values as room settings."""
        return settings_from(self.cleaned_data)


class RoomEditForm(RoomSettingsBase):
    version = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, room_id: str, invitations_allowed: bool, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.room_id = room_id
        self.invitations_offered = invitations_allowed


class AskForm(forms.Form):
    """Asking to join a Closed room: a word for its Managers, if the person wants."""

    message = forms.CharField(
        required=False,
        max_length=500,
        label="Message to the Managers (optional)",
        error_messages={"max_length": "A message has at most 500 characters."},
    )


class DisableForm(forms.Form):
    enable = forms.BooleanField(required=False)


class MoveForm(forms.Form):
    """The category chosen, the room's version when the page was loaded, and `confirm`
    once the people leaving the scope were shown."""

    category = forms.CharField(required=False, max_length=255)
    version = forms.CharField(required=False, max_length=64)
    confirm = forms.BooleanField(required=False)


class DeleteForm(forms.Form):
    confirm_name = forms.CharField(required=False, strip=False, max_length=4 * NAME_MAX_LENGTH)


class PrivacyForm(forms.Form):
    """A privacy change; `confirm` once the person has read what it means."""

    privacy = forms.TypedChoiceField(choices=[(p.value, p.label) for p in Privacy], coerce=Privacy)
    confirm = forms.BooleanField(required=False)


class RoomFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=NAME_MAX_LENGTH, label="Search by name")
    category = forms.ChoiceField(required=False, label="Category", widget=LongSelect)
    privacy = forms.ChoiceField(
        required=False,
        label="Privacy",
        choices=[("", "Any privacy")] + [(p.value, p.label) for p in Privacy],
    )

    def __init__(self, *args: Any, categories: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        category = cast(forms.ChoiceField, self.fields["category"])
        category.choices = [("", "Any category"), *categories]
