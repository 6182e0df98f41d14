"""Filtering the audit log: every filter is optional, validated, and kept in the URL."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Q, QuerySet
from django.utils import timezone

from portal.models import AuditEntry, Outcome

SEARCH_MAX = 200
# Dates a timestamp can hold in any time zone, a day either side.
EARLIEST, LATEST = date(1900, 1, 1), date(9998, 12, 31)
DATE_RANGE = f"Enter a date between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}."
KNOWN_ACTIONS = [
    "auth.login",
    "auth.logout",
    "auth.redirect",
    "access.denied",
    "page.failed",
    "account.role_grant",
    "account.role_revoke",
    "room.create",
    "room.update",
    "room.privacy",
    "room.move",
    "room.disable",
    "room.enable",
    "room.delete",
    "moderation.clear",
    "moderation.read",
    "moderation.remove",
    "moderation.report",
    "moderation.export",
    "role.add.member",
    "role.add.manager",
    "role.add.presenter",
    "role.remove.member",
    "role.remove.manager",
    "role.remove.presenter",
    "role.bulk.member",
    "room.join",
    "room.join_request",
    "room.join_request.accepted",
    "room.join_request.declined",
    "room.knock.declined",
    "room.adopt",
    "category.create",
    "category.update",
    "category.scope",
    "category.creators",
    "category.delete",
    "category.adopt",
    "person.remove",
    "operation.retry",
    "operation.undo",
    "token.create",
    "token.revoke",
    "request.submitted",
    "request.edited",
    "request.cancelled",
    "request.approved",
    "request.declined",
    "request.expired",
    "request.created",
    "request.creation_failed",
    "request.retried",
    "audit.export",
    "audit.checkpoint",
    # Changes made on the chat server outside the portal, seen by the sync worker.
    "chat.room.appeared",
    "chat.room.changed",
    "chat.room.gone",
    "chat.category.appeared",
    "chat.category.changed",
    "chat.category.gone",
    # The rules at the chat server: refused by the homeserver, or undone by the worker.
    "policy.refused",
    "policy.breach",
    "policy.enforced",
    "index.resynced",
    "index.reconciled",
]


def actor_matches(actor: str) -> Q:
    """Who did it, however the auditor names them: a local username, a chat ID, a chat
    user's localpart ("carol" is @carol:any-server) or their display name, in any case."""
    match = Q(actor_username=actor) | Q(actor_chat_id=actor) | Q(actor__display_name__iexact=actor)
    if actor and not actor.startswith("@") and ":" not in actor:
        match |= Q(actor_chat_id__startswith=f"@{actor.lower()}:")
    return match


class AuditFilterForm(forms.Form):
    actor = forms.CharField(
        required=False,
        max_length=255,
        label="Actor",
        help_text="A username, chat ID or display name (carol, @carol:example.org, Carol Creator).",
    )
    action = forms.CharField(
        required=False,
        max_length=64,
        label="Action",
        help_text="An action, or its area: “room” for every room action, “room.knock” "
        "for every knock.",
    )
    target = forms.CharField(
        required=False,
        max_length=255,
        label="Room or category",
        help_text="A name (or part of it) or an ID.",
    )
    outcome = forms.ChoiceField(
        required=False,
        label="Outcome",
        choices=[("", "Any outcome"), *Outcome.choices],
        error_messages={"invalid_choice": "Choose an outcome from the list."},
    )
    date_from = forms.DateField(
        required=False,
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[
            MinValueValidator(EARLIEST, DATE_RANGE),
            MaxValueValidator(LATEST, DATE_RANGE),
        ],
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )
    date_to = forms.DateField(
        required=False,
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[
            MinValueValidator(EARLIEST, DATE_RANGE),
            MaxValueValidator(LATEST, DATE_RANGE),
        ],
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )
    q = forms.CharField(
        required=False,
        max_length=SEARCH_MAX,
        label="Search",
        error_messages={"max_length": f"Search for at most {SEARCH_MAX} characters."},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "“To” is before “From”: swap the dates.")
        return data

    @property
    def active(self) -> dict[str, str]:
        """The filters in use, as typed, for links, file names and the export record."""
        if not self.is_valid():
            return {}
        return {k: str(v) for k, v in self.cleaned_data.items() if v not in ("", None)}

    def apply(self, entries: QuerySet[AuditEntry]) -> QuerySet[AuditEntry]:
        if not self.is_valid():
            return entries.none()
        data = self.cleaned_data
        if data["actor"]:
            entries = entries.filter(actor_matches(data["actor"].strip()))
        if data["action"]:
            action = data["action"].strip()
            # An action by its exact name, or an area: "room." or "room", "room.knock"
            # (every "room.knock.…" entry).
            entries = entries.filter(
                Q(action=action) | Q(action__startswith=action.rstrip(".") + ".")
            )
        if data["target"]:
            target = data["target"].strip()
            entries = entries.filter(
                Q(target_id=target)
                | Q(category_id=target)
                | Q(target_label__icontains=target)
                | Q(category_label__icontains=target)
            )
        if data["outcome"]:
            entries = entries.filter(outcome=data["outcome"])
        zone = timezone.get_current_timezone()
        if data["date_from"]:
            entries = entries.filter(
                created_at__gte=datetime.combine(data["date_from"], time.min, tzinfo=zone)
            )
        if data["date_to"]:
            end = datetime.combine(data["date_to"] + timedelta(days=1), time.min, tzinfo=zone)
            entries = entries.filter(created_at__lt=end)
        if data["q"]:
            text = data["q"].strip()
            entries = entries.filter(
                Q(action__icontains=text)
                | Q(actor_username__icontains=text)
                | Q(target_label__icontains=text)
                | Q(target_id__icontains=text)
                | Q(category_label__icontains=text)
                | Q(error__icontains=text)
            )
        return entries
