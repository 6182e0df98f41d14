"""A compliance export as RSMF 2.0 (Relativity Short Message Format), which review tools
import: an RFC 5322 message whose one attachment, rsmf.zip, holds the manifest and the
files sent; read back here as a review tool would, against a real Synapse."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import json
import zipfile

import pytest
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from tests.api.test_api import call, make_token
from tests.api.test_roomctl import shell
from tests.factories import AdministratorFactory, LocalUserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.chat]


def send_file(person, room_id: str, name: str, content: bytes) -> str:
    """Upload a file and send it to the room as the person; the message's event ID."""
    uploaded = person.http.post(
        "/_matrix/media/v3/upload",
        params={"filename": name},
        content=content,
        headers={"Content-Type": "text/plain"},
    )
    assert uploaded.status_code == 200, uploaded.text
    sent = person.http.put(
        f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{name}",
        json={"msgtype": "m.file", "body": name, "url": uploaded.json()["content_uri"]},
    )
    assert sent.status_code == 200, sent.text
    return sent.json()["event_id"]


def opened(data: bytes) -> tuple[email.message.Message, dict, zipfile.ZipFile]:
    """The RSMF message checked as a review tool reads it: its headers, its manifest and
    its archive (whose SHA-256 the header gives)."""
    assert b"\n" not in data.replace(b"\r\n", b""), "lines end in CRLF"
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message["X-RSMF-Version"] == "2.0.0"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "rsmf.zip"
    assert attachment["Content-Transfer-Encoding"] == "base64"
    archive_bytes = attachment.get_content()
    assert hashlib.sha256(archive_bytes).hexdigest() == attachment["X-Roomportal-Zip-SHA256"]
    archive = zipfile.ZipFile(io.BytesIO(archive_bytes))
    manifest = json.loads(archive.read("rsmf_manifest.json"))
    assert manifest["version"] == "2.0.0"
    assert int(message["X-RSMF-EventCount"]) == len(manifest["events"])
    people = {p["id"] for p in manifest["participants"]}
    rooms = {c["id"] for c in manifest["conversations"]}
    for event in manifest["events"]:  # every reference resolves
        assert event["participant"] in people
        assert event["conversation"] in rooms
        for attached in event.get("attachments", []):
            assert attached["id"] in archive.namelist()
    return message, manifest, archive


def test_a_rooms_history_as_rsmf_with_its_files_and_joins(client, talked):
    room, person, _ = talked
    send_file(person, room.id, "plan.txt", b"the plan, in full")
    admin = AdministratorFactory()
    client.force_login(admin)
    history = client.get(reverse("moderation:history", args=[room.id]))
    assert "as RSMF for a review tool" in history.text
    answer = client.get(reverse("moderation:export", args=[room.id]), {"format": "rsmf"})
    assert answer.status_code == 200
    assert answer["Content-Type"] == "message/rfc822"
    assert answer["Content-Disposition"].endswith('.rsmf"')
    message, manifest, archive = opened(b"".join(answer.streaming_content))

    [conversation] = manifest["conversations"]
    assert (conversation["id"], conversation["display"]) == (room.id, room.name)
    said = [e for e in manifest["events"] if e["type"] == "message"]
    assert [e["body"] for e in said] == ["Old news", "Older secret", "Fresh news", "plan.txt"]
    assert {e["participant"] for e in said} == {person.user_id}
    [attached] = said[-1]["attachments"]
    assert archive.read(attached["id"]) == b"the plan, in full"
    assert attached["size"] == len(b"the plan, in full")
    assert message["X-RSMF-AttachmentCount"] == "1"
    joins = [e for e in manifest["events"] if e["type"] == "join"]
    assert person.user_id in {e["participant"] for e in joins}
    entry = AuditEntry.objects.get(action="moderation.export")
    assert (entry.outcome, entry.after["format"]) == (Outcome.SUCCEEDED, "rsmf")


def test_a_removed_files_message_is_marked_deleted_and_its_file_named_not_exported(client, talked):
    room, person, _ = talked
    event_id = send_file(person, room.id, "leak.txt", b"confidential")
    token = make_token(client, AdministratorFactory())
    body = {"messages": [event_id], "reason": "Confidential"}
    assert call(client, "POST", f"/moderation/rooms/{room.id}/remove", token, body).status_code
    answer = call(client, "GET", f"/moderation/rooms/{room.id}/export", token, format="rsmf")
    _, manifest, archive = opened(b"".join(answer.streaming_content))
    [removed] = [e for e in manifest["events"] if e["id"] == event_id]
    assert removed["deleted"] is True
    assert archive.namelist() == ["rsmf_manifest.json"]  # the file went with its message


def test_a_category_as_rsmf_through_the_api_each_room_a_conversation(
    client, talked, make_room, category_world
):
    room, _, _ = talked
    other = make_room()
    officer = make_token(client, LocalUserFactory(is_compliance_officer=True))
    category = category_world["category"].id
    answer = call(client, "GET", "/moderation/export", officer, category=category, format="rsmf")
    assert answer.status_code == 200
    _, manifest, _ = opened(b"".join(answer.streaming_content))
    assert {c["id"] for c in manifest["conversations"]} >= {room.id, other.id}
    assert call(client, "GET", "/moderation/export", officer, format="xml").status_code == 422


def test_the_compliance_export_page_offers_both_formats(client, talked, category_world):
    client.force_login(AdministratorFactory())
    url = reverse("moderation:export_many")
    assert "RSMF 2.0, for review tools" in client.get(url).text
    category = category_world["category"].id
    answer = client.get(url, {"category": category, "format": "rsmf"})
    assert answer["Content-Disposition"].endswith('.rsmf"')
    opened(b"".join(answer.streaming_content))


@pytest.mark.django_db(transaction=True)
def test_roomctl_exports_a_room_as_rsmf(live_server, talked, tmp_path):
    room, _, _ = talked
    admin = shell(live_server, AdministratorFactory())
    out = tmp_path / "room.rsmf"
    done = admin(f"roomctl room export '{room.id}' --format rsmf -o {out}")
    assert done.returncode == 0, done.stderr
    _, manifest, _ = opened(out.read_bytes())
    assert [c["id"] for c in manifest["conversations"]] == [room.id]
