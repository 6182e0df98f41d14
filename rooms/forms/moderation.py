"""Forms of the moderation area."""

from __future__ import annotations

from django import forms

from rooms.backend.records import NAME_MAX_LENGTH


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
