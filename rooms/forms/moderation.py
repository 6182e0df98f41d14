"""Forms of the moderation area."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from rooms.backend.records import NAME_MAX_LENGTH
from rooms.services.moderation import REASON_MAX_LENGTH
from rooms.services.roles import NotAChatId, chat_id_of


class ClearHistoryForm(forms.Form):
    """Clear a room's messages sent before a moment (in the portal's time zone); once
    previewed, confirmed by typing the room's name."""

    before = forms.DateTimeField(
        label="Clear messages sent before",
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S"
        ),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
    )
    confirm_name = forms.CharField(required=False, strip=False, max_length=4 * NAME_MAX_LENGTH)
    # The moment the shown count was for: a confirmation for another moment counts again.
    counted = forms.CharField(required=False, max_length=32)


FORMATS = [
    ("jsonl", "JSON Lines (one line each, with a SHA-256 end line)"),
    ("rsmf", "RSMF 2.0, for review tools (with the files sent)"),
]


class MatchingForm(forms.Form):
    """Which messages: by person, by words, between two days (both included)."""

    sender = forms.CharField(required=False, max_length=255, label="Sent by (chat ID or name)")
    text = forms.CharField(
        required=False,
        max_length=200,
        label="Containing the words",
        help_text="Whole words, in any order and letter case.",
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean_sender(self) -> str:
        return _person(self.cleaned_data["sender"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The last day comes before the first.")
        return cleaned

    def moments(self) -> tuple[datetime | None, datetime | None]:
        return _day_bounds(self.cleaned_data.get("since"), self.cleaned_data.get("until"))


class HistoryFilterForm(MatchingForm):
    """Which of a room's messages to read, from a page onwards (`start`, the token of the
    page before's end), and the format of an export of them."""

    start = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)
    format = forms.ChoiceField(required=False, choices=FORMATS, widget=forms.HiddenInput)


class EventIds(forms.MultipleChoiceField):
    """Message IDs chosen on the page: any may be given (the chat server says which are
    the room's), none longer than an event ID can be."""

    def valid_value(self, value: Any) -> bool:
        return bool(value) and len(str(value)) <= 255


class RemoveMessagesForm(forms.Form):
    """Remove the messages chosen on the history page, with the reason shown in their
    place, and a notice in the room if asked; back to the page they were chosen on."""

    event_ids = EventIds(required=False)
    # Every message the page showed, for "Remove all shown" (`every`).
    shown = EventIds(required=False)
    every = forms.BooleanField(required=False)
    reason = forms.CharField(
        required=False, max_length=REASON_MAX_LENGTH, label="Reason (shown in their place)"
    )
    notice = forms.BooleanField(required=False, label="Say in the room that they were removed")
    back = forms.CharField(required=False, max_length=2000)


class ReportDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("dismiss", "Dismiss"), ("remove", "Remove"), ("remove_sender", "Remove both")]
    )


class ExportForm(forms.Form):
    """What to export: a category's rooms, what one person sent (in a category, or in every
    room of the portal), or both; between two days, both included."""

    category = forms.ChoiceField(required=False, label="Category")
    person = forms.CharField(required=False, max_length=255, label="Sent by (chat ID or name)")
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    format = forms.ChoiceField(
        required=False, choices=FORMATS, initial="jsonl", widget=forms.RadioSelect, label="Format"
    )

    def clean_format(self) -> str:
        return self.cleaned_data["format"] or "jsonl"  # JSON Lines unless asked otherwise

    def __init__(self, *args: Any, categories: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["category"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Every room (with a person)"), *categories]

    def clean_person(self) -> str:
        return _person(self.cleaned_data["person"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("category") and not cleaned.get("person"):
            raise forms.ValidationError("Choose a category, a person, or both.")
        return cleaned

    def moments(self) -> tuple[datetime | None, datetime | None]:
        return _day_bounds(self.cleaned_data.get("since"), self.cleaned_data.get("until"))


def _person(typed: str) -> str:
    """A chat ID as typed (or a name on this server); "" for nothing typed."""
    if not typed.strip():
        return ""
    try:
        return chat_id_of(typed)
    except NotAChatId as exc:
        raise forms.ValidationError(str(exc)) from exc


def _day_bounds(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """The first day's start and the day after the last's start, in the portal's time
    zone (None: unbounded)."""
    zone = timezone.get_current_timezone()
    return (
        datetime.combine(since, time.min, zone) if since else None,
        datetime.combine(until + timedelta(days=1), time.min, zone) if until else None,
    )


class SweepForm(MatchingForm):
    """Remove every message that matches (a person's, a phrase's, or a person's with a
    phrase; between two days, both included) in one room or in each room of a category;
    previewed first, then confirmed with the reason shown in their place."""

    room = forms.CharField(required=False, max_length=255, widget=forms.HiddenInput)
    category = forms.ChoiceField(required=False, label="In the rooms of the category")
    reason = forms.CharField(
        required=False, max_length=REASON_MAX_LENGTH, label="Reason (shown in their place)"
    )
    notice = forms.BooleanField(
        required=False, label="Say in each room how many were removed, and why"
    )
    # What the shown preview was for: a confirmation of other criteria previews again.
    previewed = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)

    CRITERIA = ("room", "category", "sender", "text", "since", "until")

    def __init__(self, *args: Any, categories: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["category"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Choose a category"), *categories]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not cleaned.get("room") and not cleaned.get("category"):
            self.add_error("category", "Choose the category whose rooms to read.")
        return cleaned

    def criteria(self) -> str:
        """The criteria as given, to tell whether a confirmation is of the preview shown."""
        return "|".join(str(self.cleaned_data.get(name) or "") for name in self.CRITERIA)
