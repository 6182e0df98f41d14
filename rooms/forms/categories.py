"""Forms of the categories area: search, a category's settings, chat options, scope and
Creators."""

from __future__ import annotations

from django import forms

from rooms.backend.records import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    ChatOptions,
)
from rooms.chatserver.policy import KEEP_DAYS_AT_MOST
from rooms.forms.roles import PeopleListField


class ScopeChangeForm(forms.Form):
    """Chat IDs, one or more per field, to add to, remove from, deny in or allow again in
    a category's scope; `confirm` once the preview was seen."""

    add = forms.CharField(required=False, strip=False)
    remove = forms.CharField(required=False, strip=False)
    deny = forms.CharField(required=False, strip=False)
    undeny = forms.CharField(required=False, strip=False)
    confirm = forms.BooleanField(required=False)

    def typed(self) -> dict[str, str]:
        return {key: self.cleaned_data[key] for key in ("add", "remove", "deny", "undeny")}


class CreatorsForm(forms.Form):
    creators = PeopleListField(required=False)


class CategorySearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=NAME_MAX_LENGTH, label="Search by name")


class CategoryForm(forms.Form):
    name = forms.CharField(
        max_length=NAME_MAX_LENGTH,
        error_messages={
            "required": "Give the category a name.",
            "max_length": f"A category name has at most {NAME_MAX_LENGTH} characters.",
        },
    )
    description = forms.CharField(
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    invitations_allowed = forms.BooleanField(
        required=False,
        initial=True,
        label="Invitations allowed",
        help_text="New members of its rooms get an invitation to accept; off: added directly.",
    )


class ChatOptionsForm(forms.Form):
    """A category's chat options, which every room of it carries."""

    chat_history = forms.BooleanField(
        required=False,
        initial=True,
        label="Chat history",
        help_text="People who join a room later see what was said before; off: only what is "
        "said from then on.",
    )
    file_uploads = forms.BooleanField(
        required=False,
        initial=True,
        label="File upload",
        help_text="Files, images, audio and video may be sent in its rooms; off: the chat "
        "server refuses them.",
    )
    keep_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=KEEP_DAYS_AT_MOST,
        label="Keep messages for (days)",
        help_text="The chat server deletes messages older than this, for everyone; empty: "
        "kept for ever.",
    )
    managers_read = forms.BooleanField(
        required=False,
        initial=False,
        label="Managers read the history",
        help_text="Each room's Managers may read its history in the portal (each read is "
        "audited); administrators and compliance officers always may.",
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def options(self) -> ChatOptions:
        data = self.cleaned_data
        return ChatOptions(
            chat_history=data["chat_history"],
            file_uploads=data["file_uploads"],
            keep_days=data.get("keep_days") or 0,
            managers_read=data["managers_read"],
        )


class NewCategoryForm(CategoryForm):
    """A new category: its settings and its chat options."""

    chat_history = ChatOptionsForm.base_fields["chat_history"]
    file_uploads = ChatOptionsForm.base_fields["file_uploads"]
    keep_days = ChatOptionsForm.base_fields["keep_days"]
    managers_read = ChatOptionsForm.base_fields["managers_read"]


class AdoptForm(forms.Form):
    """Finding a space or room to adopt by name; the space, or the room and the category
    it goes into, chosen (their IDs)."""

    q = forms.CharField(required=False, max_length=NAME_MAX_LENGTH, label="Name")
    space = forms.CharField(required=False, max_length=255)
    room = forms.CharField(required=False, max_length=255)
    category = forms.CharField(required=False, max_length=255)
