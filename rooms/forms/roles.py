"""Forms of the roles area: give and take roles, one person or a list at a time."""

from __future__ import annotations

from typing import Any

from django import forms

from rooms.backend.records import (
    Role,
)

MAX_PEOPLE = 1000  # as many as a bulk add takes
ROLE_CHOICES = [(r.value, r.label) for r in Role]
NO_SUCH_ROLE = "There is no such role: choose Member, Manager or Presenter."


def role_field(*, required: bool = True) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        choices=ROLE_CHOICES,
        coerce=Role,
        required=required,
        empty_value=Role.MEMBER,
        error_messages={"required": NO_SUCH_ROLE, "invalid_choice": NO_SUCH_ROLE},
    )


class RoleChangeForm(forms.Form):
    """Give or take one person's role; `confirm` once a removal was confirmed."""

    role = role_field()
    # Who is checked by the service, which says what is wrong with a blank or unknown ID.
    user_id = forms.CharField(required=False, max_length=255)
    also_member = forms.BooleanField(required=False)
    confirm = forms.BooleanField(required=False)


class JoinDecisionForm(forms.Form):
    """Letting in or turning down someone asking to join, with an optional reason, and
    the page (the room's, or the approval queue) to go back to."""

    user_id = forms.CharField(max_length=255)
    decision = forms.ChoiceField(choices=[("accept", "Let in"), ("decline", "Turn down")])
    reason = forms.CharField(required=False, max_length=500)
    next = forms.CharField(required=False, max_length=500)


class PeopleSearchForm(forms.Form):
    """Part of a name or chat ID, and the role people are being found for."""

    q = forms.CharField(required=False, max_length=255)
    role = role_field(required=False)


class BulkRoleForm(forms.Form):
    """A pasted list of people for one role; `apply` once its preview was seen."""

    role = role_field(required=False)
    people = forms.CharField(required=False, strip=False)
    apply = forms.BooleanField(required=False)


class PeopleListField(forms.Field):
    """Several chat IDs posted under one name (checkboxes); the service checks each."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        values = value if isinstance(value, list | tuple) else [value] if value else []
        if len(values) > MAX_PEOPLE:
            raise forms.ValidationError(f"At most {MAX_PEOPLE} people at once.")
        return [str(v).strip() for v in values if str(v).strip()]


class ExplainForm(forms.Form):
    person = forms.CharField(required=False, max_length=255)
