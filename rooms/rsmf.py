"""A compliance export as Relativity Short Message Format 2.0 (RSMF), the format review
and e-discovery tools (Relativity, and the many that import it) load chat from: an
RFC 5322 message whose one attachment, `rsmf.zip`, holds `rsmf_manifest.json` (who took
part, each room as a conversation, each message, join and leave as an event) and the
files sent, each under its own name.

Written in constant memory: the events go to a spool file and each file straight into
the archive as they are read; the archive is then sent base64-encoded a piece at a time.
Its SHA-256 is in the header `X-Roomportal-Zip-SHA256`, so a reviewer can tell the
archive is whole (decode the attachment, hash it)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime
from typing import IO, Any, BinaryIO

VERSION = "2.0.0"
GENERATOR = "Room portal"
FILE_AT_MOST = 100 * 1024 * 1024  # bytes of one uploaded file put in the archive
PIECE = 57 * 1024  # raw bytes per base64 piece: whole 76-character lines
MEMBERSHIPS = {"join": "join", "leave": "leave", "ban": "leave"}

# Copies an uploaded file (its mxc:// address) into a file object; its size. Raises for a
# file that is not there any more (removed with its message) or too large.
Fetch = Callable[[str, BinaryIO], int]


class FileUnavailable(Exception):
    """An uploaded file that cannot be put in the archive, and why."""


def write(
    *,
    conversations: dict[str, str],
    names: dict[str, str],
    records: Iterable[dict[str, Any]],
    fetch: Fetch,
    exported_by: str,
) -> Iterator[bytes]:
    """The RSMF message of these exported records (`rooms.services.moderation`'s export
    lines but the header and the end): `conversations` are the rooms (ID → name),
    `names` people's display names by chat ID."""
    with tempfile.TemporaryFile() as events, tempfile.TemporaryFile() as archive_file:
        with zipfile.ZipFile(archive_file, "w", zipfile.ZIP_DEFLATED) as archive:
            summary = _events(records, events, archive, fetch)
            events.seek(0)
            people = sorted(summary.people)
            with archive.open("rsmf_manifest.json", "w") as manifest:
                _manifest(manifest, events, conversations, people, names, summary.by_room)
        archive_file.seek(0)
        digest = hashlib.sha256()
        for piece in iter(lambda: archive_file.read(1024 * 1024), b""):
            digest.update(piece)
        size = archive_file.tell()
        archive_file.seek(0)
        boundary = f"rsmf-{uuid.uuid4().hex}"
        yield _head(summary, people, names, conversations, exported_by, boundary)
        yield (
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"Chat exported for review as RSMF {VERSION}: {summary.count} events in "
            f"{len(conversations)} room(s), {summary.files} file(s); the archive is "
            f"{size} bytes, SHA-256 {digest.hexdigest()}.\r\n"
            f"--{boundary}\r\nContent-Type: application/zip\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            'Content-Disposition: attachment; filename="rsmf.zip"\r\n'
            f"X-Roomportal-Zip-SHA256: {digest.hexdigest()}\r\n\r\n"
        ).encode()
        for piece in iter(lambda: archive_file.read(PIECE), b""):
            encoded = base64.encodebytes(piece)  # 76-character lines, each with "\n"
            yield encoded.replace(b"\n", b"\r\n")
        yield f"--{boundary}--\r\n".encode()


class _Summary:
    def __init__(self) -> None:
        self.count = self.files = 0
        self.first = self.last = ""
        self.people: set[str] = set()
        self.by_room: dict[str, set[str]] = {}


def _events(
    records: Iterable[dict[str, Any]], out: IO[bytes], archive: zipfile.ZipFile, fetch: Fetch
) -> _Summary:
    """Each record as an RSMF event, one JSON object a line into `out`; the files sent
    into the archive. What the header and the manifest need to know of them."""
    summary = _Summary()
    for record in records:
        person = record["sender"] if record["kind"] == "message" else record["person"]
        event: dict[str, Any] = {
            "id": record["id"],
            "conversation": record["room_id"],
            "participant": person,
            "timestamp": record["sent_at"],
        }
        if record["kind"] == "message":
            event |= {"type": "message", "body": record["body"], "deleted": record["removed"]}
            if record["file"]:
                event |= _attachment(record, archive, fetch, number=summary.files + 1)
                summary.files += "attachments" in event
        else:
            kind = MEMBERSHIPS.get(record["membership"], "unknown")
            event["type"] = kind
            if kind == "unknown":
                event["body"] = f"{record['membership']} (by {record['by']})"
        out.write(json.dumps(event, ensure_ascii=False).encode() + b"\n")
        summary.count += 1
        summary.first = summary.first or record["sent_at"]
        summary.last = record["sent_at"]
        summary.people.add(person)
        summary.by_room.setdefault(record["room_id"], set()).add(person)
    return summary


def _attachment(
    record: dict[str, Any], archive: zipfile.ZipFile, fetch: Fetch, *, number: int
) -> dict[str, Any]:
    """The message's file in the archive, as its event's attachment; or why not."""
    display = record["body"] or "file"
    name = f"{number:06d}-{_safe(display)}"
    try:
        with tempfile.TemporaryFile() as copy:
            size = fetch(record["file"], copy)
            copy.seek(0)
            with archive.open(name, "w") as entry:
                shutil.copyfileobj(copy, entry)
    except FileUnavailable as exc:
        return {"custom": [{"name": "File not exported", "value": f"{record['file']}: {exc}"}]}
    return {"attachments": [{"id": name, "display": display, "size": size}]}


def _safe(name: str) -> str:
    """A file name for the archive's root: no folders, nothing a file system refuses."""
    kept = "".join(c if c.isalnum() or c in "._- " else "_" for c in name).strip(" .")
    return kept[-100:] or "file"


def _manifest(
    manifest: IO[bytes],
    events: IO[bytes],
    conversations: dict[str, str],
    people: list[str],
    names: dict[str, str],
    by_room: dict[str, set[str]],
) -> None:
    participants = [{"id": p, "display": names.get(p) or p, "account_id": p} for p in people]
    rooms = [
        {
            "id": room_id,
            "display": name,
            "platform": "matrix",
            "type": "channel",
            "participants": sorted(by_room.get(room_id, set())),
        }
        for room_id, name in conversations.items()
    ]
    head = {"version": VERSION, "participants": participants, "conversations": rooms}
    manifest.write(json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "events": [')
    for number, line in enumerate(events):
        manifest.write((b"," if number else b"") + line.rstrip(b"\n"))
    manifest.write(b"]}")


def _head(
    summary: _Summary,
    people: list[str],
    names: dict[str, str],
    conversations: dict[str, str],
    exported_by: str,
    boundary: str,
) -> bytes:
    shown = ", ".join(names.get(p) or p for p in people)
    subject = "Chat export: " + ", ".join(conversations.values())
    headers = [
        ("MIME-Version", "1.0"),
        ("Date", format_datetime(datetime.now(tz=UTC))),
        ("From", '"Room portal" <export@roomportal.invalid>'),
        ("X-Roomportal-Exported-By", _encoded(exported_by)),
        ("Subject", _encoded(subject[:500])),
        ("Message-ID", f"<{uuid.uuid4().hex}@rsmf.roomportal>"),
        ("X-RSMF-Version", VERSION),
        ("X-RSMF-Generator", GENERATOR),
        ("X-RSMF-Application", "Matrix"),
        ("X-RSMF-EventCount", str(summary.count)),
        ("X-RSMF-AttachmentCount", str(summary.files)),
        *(
            [("X-RSMF-BeginDate", summary.first), ("X-RSMF-EndDate", summary.last)]
            if summary.count
            else []
        ),
        *([("X-RSMF-Participants", _encoded(shown[:2000]))] if shown else []),
        ("Content-Type", f'multipart/mixed; boundary="{boundary}"'),
    ]
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode() + b"\r\n"


def _encoded(value: str) -> str:
    """A header value in ASCII (RFC 2047 for anything else), folded to short lines."""
    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")
