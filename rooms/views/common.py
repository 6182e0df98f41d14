"""What the views of every area share: running a service for a form, telling a failure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sized
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import HttpRequest

from rooms.backend.errors import ChatBackendError, ChatNotFound, RoomCreationIncomplete
from rooms.operations import OperationUnfinished
from rooms.services import requests as request_services
from rooms.services import rooms as room_services

T = TypeVar("T")


def creation_failed_message(exc: RoomCreationIncomplete) -> str:
    if exc.rolled_back:
        return (
            f"The room could not be set up completely, so it was removed again: nothing was "
            f"created. The chat server said: {exc.detail} Your settings are kept below; "
            "try again."
        )
    return (
        f"The room was created but could not be set up completely, and removing it failed "
        f"too. The chat server said: {exc.detail} Ask an administrator to check room "
        f"{exc.room_id}."
    )


def told(exc: ChatBackendError, nothing: str) -> str:
    """What a person is told of a failed change: `nothing` (for example "Nothing was
    changed.") only when that is true; a change left part-made says so instead."""
    if isinstance(exc, OperationUnfinished):
        return exc.detail
    return f"{nothing} {exc.detail}"


def run_for_form(form: forms.Form, action: Callable[[], T], *, failed: str) -> tuple[T | None, int]:
    """Run a service for a valid room-settings form. What it refuses becomes an error on
    the form, which keeps everything typed; returns the result (None if refused) and the
    HTTP status to answer with."""
    try:
        return action(), 200
    except PermissionDenied as exc:
        form.add_error("category", str(exc))
        return None, 403
    except room_services.RoomSettingsInvalid as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return None, 400
    except (room_services.SubmissionInProgress, request_services.RequestConflict) as exc:
        form.add_error(None, str(exc))
        return None, 409
    except ChatNotFound:
        form.add_error("category", "There is no such category.")
        return None, 400
    except RoomCreationIncomplete as exc:
        form.add_error(None, creation_failed_message(exc))
        return None, 503
    except ChatBackendError as exc:
        form.add_error(None, f"{failed} {exc.detail}")
        return None, 503


def valid_or_400(form: forms.Form) -> dict[str, Any]:
    """A form's values, or a 400 that says what was wrong: these forms are the page's own
    buttons and links, so anything else was not made by the portal."""
    if not form.is_valid():
        raise BadRequest(" ".join(str(e) for errors in form.errors.values() for e in errors))
    return form.cleaned_data


def directory_told(request: HttpRequest, parts: Iterable[tuple[Sized, str]], failed: int) -> None:
    """Tell what applying a group or an OU of the directory did: "Done: 2 came into the
    scope; 1 denied.", and how many people the chat server refused (tried again later)."""
    said = [f"{len(people)} {what}" for people, what in parts if people]
    messages.success(request, "Done: " + ("; ".join(said) if said else "nobody changed") + ".")
    if failed:
        messages.error(
            request,
            f"The chat server refused the change for {failed} people; the job runner tries "
            "again at its next read of the directory.",
        )
