"""Forms of the add-ins area: registering one, and attaching or taking one from a room."""

from __future__ import annotations

from typing import Any

from django import forms

from rooms.selectors.addins import category_choices


class AddInForm(forms.Form):
    name = forms.CharField(max_length=100, error_messages={"required": "Give the add-in a name."})
    url = forms.CharField(
        label="Web address",
        max_length=2000,
        help_text="https://…; the page is shown beside the conversation in chat clients.",
        error_messages={"required": "Give the add-in's web address."},
    )
    category_ids = forms.MultipleChoiceField(
        label="Categories whose rooms may use it",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one category."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["category_ids"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = category_choices()


class RoomAddInForm(forms.Form):
    add_in = forms.CharField(max_length=20)
