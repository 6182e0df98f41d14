from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from portal.audit import audit_record
from portal.models import Outcome
from rooms.backend.errors import ChatServerUnavailable


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": (
            "That username and password do not match an account. Use your chat username "
            "(such as alice or @alice:example.org) and your chat password."
        ),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Chat username"
        self.fields["username"].widget.attrs.update(
            {"autocomplete": "username", "placeholder": "alice or @alice:example.org"}
        )

    def clean_username(self) -> str:
        # AuthenticationForm sets max_length after the field is built, so it adds no
        # validator: check it here, before anything is sent to the chat server.
        username = self.cleaned_data["username"]
        limit = self.fields["username"].max_length  # type: ignore[attr-defined]
        if limit is not None and len(username) > limit:
            raise forms.ValidationError(
                f"A username has at most {limit} characters (this one has {len(username)})."
            )
        return str(username)

    def get_invalid_login_error(self) -> forms.ValidationError:
        refusal = getattr(self.request, "login_refusal", "")
        if refusal:
            return forms.ValidationError(refusal, code="refused")
        return super().get_invalid_login_error()

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except ChatServerUnavailable as exc:
            username = self.cleaned_data.get("username", "")
            audit_record(
                action="auth.login",
                outcome=Outcome.FAILED,
                request=self.request,
                target_kind="user",
                target_id=username,
                target_label=username,
                error=exc.detail,
            )
            exc.audited = True  # type: ignore[attr-defined]  # the 503 page writes no second
            raise


class TokenForm(forms.Form):
    """A new personal access token: its name, what it may do, how long it lasts."""

    name = forms.CharField(max_length=100, help_text="What it is for, such as “nightly report”.")
    scope = forms.ChoiceField(
        choices=[("read", "Read only"), ("write", "Read and write")], initial="read"
    )
    days = forms.IntegerField(min_value=1, max_value=366, initial=90, label="Expires after (days)")
