"""The API with personal access tokens, on the real Synapse: a token is made on its page
and shown once; rooms are listed (filtered, paged by cursor) and changed as the pages
change them, audited as made through the API with the token's name; a what-if changes
nothing; bad tokens, read-only tokens, bad input and refusals are problem details."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken
from accounts.tokens import digest
from portal.models import AuditEntry, Outcome
from rooms.backend.records import Privacy, Role
from tests.factories import AdministratorFactory

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


def make_token(client, user, *, scope: str = "write", name: str = "script") -> str:
    client.force_login(user)
    page = client.post(reverse("tokens"), {"name": name, "scope": scope, "days": 30})
    assert page.status_code == 201
    return page.context["secret"]


def call(client, method: str, path: str, token: str = "", body=None, **query):
    headers = {k: query.pop(k) for k in list(query) if k.startswith("HTTP_")}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    url = f"/api/v1{path}"
    if query:
        url += "?" + urlencode(query)
    if method == "GET":
        return client.get(url, **headers)
    return client.generic(
        method, url, json.dumps(body or {}), content_type="application/json", **headers
    )


def test_a_token_is_shown_once_kept_hashed_and_revoked(client, member):
    secret = make_token(client, member, scope="read")
    token = ApiToken.objects.get(user=member)
    assert token.digest == digest(secret)
    assert secret not in token.shown  # only its first characters are kept to show
    assert secret not in client.get(reverse("tokens")).content.decode()
    assert call(client, "GET", "/rooms", secret).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None

    client.post(reverse("token_revoke", args=[token.pk]))
    refused = call(client, "GET", "/rooms", secret)
    assert refused.status_code == 401
    assert refused["Content-Type"] == PROBLEM
    assert "revoked or expired" in refused.json()["detail"]
    assert AuditEntry.objects.filter(action="token.revoke", outcome=Outcome.SUCCEEDED).exists()


def test_an_expired_or_missing_token_is_refused(client, member):
    secret = make_token(client, member)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert call(client, "GET", "/rooms", secret).status_code == 401
    missing = call(client, "GET", "/rooms")
    assert (missing.status_code, missing["WWW-Authenticate"]) == (401, "Bearer")


def test_rooms_are_listed_filtered_and_paged(client, member, make_room):
    rooms = sorted(
        (make_room(privacy=p) for p in (Privacy.OPEN, Privacy.CLOSED, Privacy.SECRET)),
        key=lambda r: r.name.casefold(),
    )
    stem = rooms[0].name[:5]
    secret = make_token(client, member, scope="read")
    listed = call(client, "GET", "/rooms", secret, q=stem, limit=200).json()
    names = [room["name"] for room in listed["items"]]
    assert rooms[2].name not in names or rooms[2].settings.privacy is not Privacy.SECRET
    secret_room = next(r for r in rooms if r.settings.privacy is Privacy.SECRET)
    assert secret_room.name not in names  # not theirs, not in the directory
    opened = call(client, "GET", "/rooms", secret, privacy="open", limit=200).json()["items"]
    assert {room["privacy"] for room in opened} == {"open"}

    seen, cursor = [], ""
    while True:
        answer = call(
            client, "GET", "/rooms", secret, limit=1, **({"cursor": cursor} if cursor else {})
        )
        page = answer.json()
        seen += [room["id"] for room in page["items"]]
        assert int(answer["X-Total-Count"]) == page["count"]
        cursor = page["next_cursor"]
        if not cursor:
            assert "Link" not in answer
            break
        # The next page's address, as scripts that follow Link headers ask for it.
        assert answer["Link"] == (
            f'<http://testserver/api/v1/rooms?limit=1&cursor={quote(cursor)}>; rel="next"'
        )
    assert len(seen) == len(set(seen)) == page["count"] >= 2
    bad = call(client, "GET", "/rooms", secret, cursor="not-a-cursor")
    assert (bad.status_code, bad["Content-Type"]) == (400, PROBLEM)


def test_a_filter_given_a_name_where_it_takes_an_id_says_so(client, member, category_world):
    """A category's name, or a bare username, is refused with the way to the ID, rather
    than answered with an empty list as if nothing matched."""
    secret = make_token(client, member, scope="read")
    category = category_world["category"]
    by_name = call(client, "GET", "/rooms", secret, category=category.name)
    assert by_name.status_code == 422
    assert "not its name" in by_name.content.decode()
    assert call(client, "GET", "/rooms", secret, person="carol").status_code == 422
    by_id = call(client, "GET", "/rooms", secret, category=category.id)
    assert by_id.status_code == 200


def test_a_change_through_the_api_is_made_and_audited_as_such(client, chat, creator, make_room):
    room = make_room()
    secret = make_token(client, creator, name="nightly")

    what_if = call(
        client,
        "PATCH",
        f"/rooms/{room.id}",
        secret,
        {"description": "Changed", "privacy": "open"},
        dry_run="true",
    )
    assert what_if.status_code == 200
    assert what_if.json()["applied"] is False
    assert what_if.json()["after"]["privacy"] == "open"
    assert chat.get_room(room.id).settings.description == room.settings.description
    assert not AuditEntry.objects.filter(action__in=["room.update", "room.privacy"]).exists()

    done = call(
        client, "PATCH", f"/rooms/{room.id}", secret, {"description": "Changed", "privacy": "open"}
    )
    assert done.status_code == 200
    assert done.json()["after"]["privacy"] == "open"
    on_server = chat.get_room(room.id)
    assert (on_server.settings.description, on_server.settings.privacy) == ("Changed", Privacy.OPEN)
    entries = AuditEntry.objects.filter(action__in=["room.update", "room.privacy"])
    assert {(e.outcome, e.via) for e in entries} == {(Outcome.SUCCEEDED, "api: nightly")}
    client.force_login(AdministratorFactory())  # the entry says so to its readers
    shown = client.get(reverse("audit:entry", args=[entries[0].pk])).content.decode()
    assert "api: nightly" in shown


def test_refusals_and_bad_input_are_problem_details(client, chat, member, creator, make_room):
    room = make_room()
    reader = make_token(client, creator, scope="read", name="reader")
    read_only = call(client, "PATCH", f"/rooms/{room.id}", reader, {"description": "No"})
    assert (read_only.status_code, read_only["Content-Type"]) == (403, PROBLEM)
    assert "read-only" in read_only.json()["detail"]
    assert AuditEntry.objects.filter(outcome=Outcome.DENIED, via="api: reader").exists()

    not_manager = call(
        client, "PATCH", f"/rooms/{room.id}", make_token(client, member), {"description": "No"}
    )
    assert not_manager.status_code == 403
    assert "Managers" in not_manager.json()["detail"]

    writer = make_token(client, creator, name="writer")
    unknown = call(client, "PATCH", f"/rooms/{room.id}", writer, {"colour": "red"})
    assert (unknown.status_code, unknown["Content-Type"]) == (422, PROBLEM)
    assert unknown.json()["errors"][0]["field"] == "colour"
    wrong = call(client, "PATCH", f"/rooms/{room.id}", writer, {"auditorium": "perhaps"})
    assert wrong.status_code == 422
    too_long = call(client, "PATCH", f"/rooms/{room.id}", writer, {"name": "x" * 300})
    assert too_long.status_code == 422
    nowhere = call(client, "GET", "/rooms/!nowhere:portal.test", writer)
    assert (nowhere.status_code, nowhere["Content-Type"]) == (404, PROBLEM)
    assert chat.get_room(room.id).settings == room.settings  # nothing changed


def test_the_schema_and_its_docs_are_served(client):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/rooms" in schema.json()["paths"]

    def no_key_twice(pairs):  # Swagger UI refuses a schema with a key twice
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        return dict(pairs)

    json.loads(schema.content, object_pairs_hook=no_key_twice)
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    # Swagger UI comes from the portal's own static files, never from a CDN.
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.content.decode())
    assert assets
    for asset in assets:
        assert asset.startswith(settings.STATIC_URL), asset
        assert finders.find(asset.removeprefix(settings.STATIC_URL)), asset


def test_create_with_an_idempotency_key_makes_one_room(client, chat, creator, category_world):
    from tests.conftest import unique

    secret = make_token(client, creator)
    body = {"name": unique("Made by a script "), "category": category_world["category"].id}
    checked = call(client, "POST", "/rooms", secret, body, dry_run="true")
    assert (checked.status_code, checked.json()["id"]) == (200, "")
    headers = {"HTTP_IDEMPOTENCY_KEY": "nightly-2026-11-28"}
    url = "/api/v1/rooms"
    first = client.post(
        url,
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        **headers,
    )
    again = client.post(
        url,
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        **headers,
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["id"] == again.json()["id"]  # a lost answer asked again: one room
    assert (first.get("Idempotent-Replayed"), again["Idempotent-Replayed"]) == (None, "true")
    assert creator.chat_id in chat.get_room(first.json()["id"]).managers
    # The key is bound to its body: key order and spacing aside, another body is refused.
    reordered = json.dumps(dict(reversed(body.items())), indent=2)
    same = client.post(
        url,
        reordered,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        **headers,
    )
    assert (same.status_code, same.json()["id"]) == (201, first.json()["id"])
    other = client.post(
        url,
        json.dumps(body | {"name": unique("Another ")}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        **headers,
    )
    assert (other.status_code, other["Content-Type"]) == (422, PROBLEM)
    assert "used with another body" in other.json()["detail"]
    taken = call(client, "POST", "/rooms", secret, body)  # a new key, the same name
    assert (taken.status_code, taken["Content-Type"]) == (422, PROBLEM)
    assert "not available" in taken.json()["detail"]


def test_move_with_a_what_if_then_delete_as_an_administrator(client, chat, creator, make_room):
    room = make_room()
    other = chat.create_category(name=unique_name("Elsewhere "), description="", creators=[])
    chat.set_category_creators(other.id, [])
    chat.add_to_category_scope(other.id, [creator.chat_id])
    chat.set_category_creators(other.id, [creator.chat_id])
    secret = make_token(client, creator)
    what_if = call(
        client, "POST", f"/rooms/{room.id}/move", secret, {"category": other.id}, dry_run="true"
    )
    assert (what_if.status_code, what_if.json()["applied"]) == (200, False)
    assert chat.get_room(room.id).settings.category_id == room.settings.category_id
    moved = call(client, "POST", f"/rooms/{room.id}/move", secret, {"category": other.id})
    assert moved.json()["room"]["category_id"] == other.id
    assert chat.get_room(room.id).settings.category_id == other.id

    assert call(client, "DELETE", f"/rooms/{room.id}", secret).status_code == 403
    admin = make_token(client, AdministratorFactory(), name="admin")
    assert call(client, "DELETE", f"/rooms/{room.id}", admin, dry_run="true").status_code == 200
    assert call(client, "DELETE", f"/rooms/{room.id}", admin).status_code == 204
    assert not chat.room_exists(room.id, settle=2.0)
    assert AuditEntry.objects.get(action="room.delete").via == "api: admin"


def unique_name(stem: str) -> str:
    from tests.conftest import unique

    return unique(stem)


def test_the_audit_log_is_queried_with_the_pages_filters(client, member):
    from portal.audit import audit_record
    from tests.factories import AuditorFactory

    for n in range(3):
        audit_record(action="room.update", target_kind="room", target_id=f"!r{n}:portal.test")
    audit_record(action="room.delete", outcome=Outcome.FAILED, target_kind="room")
    secret = make_token(client, AuditorFactory(), scope="read")
    found = call(client, "GET", "/audit", secret, action="room.", limit=2).json()
    assert [e["action"] for e in found["items"]] == ["room.delete", "room.update"]
    rest = call(client, "GET", "/audit", secret, action="room.", cursor=found["next_cursor"])
    assert [e["action"] for e in rest.json()["items"]] == ["room.update", "room.update"]
    failed = call(client, "GET", "/audit", secret, outcome="failed").json()["items"]
    assert [e["action"] for e in failed] == ["room.delete"]
    bad = call(client, "GET", "/audit", secret, outcome="sideways")
    assert (bad.status_code, bad["Content-Type"]) == (422, PROBLEM)
    assert "Choose an outcome" in bad.json()["detail"]
    refused = call(client, "GET", "/audit", make_token(client, member, name="nosy"))
    assert refused.status_code == 403

    exported = call(client, "GET", "/audit/export", secret, action="room.", format="jsonl")
    assert exported["Content-Type"].startswith("application/x-ndjson")
    lines = b"".join(exported.streaming_content).decode().splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["room.update"] * 3 + ["room.delete"]
    assert AuditEntry.objects.filter(action="audit.export").exclude(via="").exists()


def test_one_change_for_many_rooms_with_a_result_each(
    client, chat, creator, make_room, category_world
):
    from rooms.backend.records import RoomSettings

    mine = [make_room(), make_room()]
    theirs = chat.create_room(
        RoomSettings(unique_name("Not theirs "), "", category_world["category"].id, Privacy.CLOSED)
    )
    rooms = [*(r.id for r in mine), theirs.id, "!gone:portal.test"]
    secret = make_token(client, creator)
    body = {"rooms": rooms, "change": {"disabled": True}}
    what_if = call(client, "POST", "/rooms/bulk", secret, body, dry_run="true").json()
    assert [r["result"] for r in what_if["results"]] == [
        "would change",
        "would change",
        "refused",
        "not found",
    ]
    assert not any(chat.get_room(r.id).disabled for r in mine)
    done = call(client, "POST", "/rooms/bulk", secret, body).json()
    assert [r["result"] for r in done["results"]] == ["changed", "changed", "refused", "not found"]
    assert all(chat.get_room(r.id).disabled for r in mine)
    again = call(client, "POST", "/rooms/bulk", secret, body).json()  # safe to send again
    assert [r["result"] for r in again["results"]][:2] == ["unchanged", "unchanged"]
    # More rooms than are answered at once become an operation: never cut off mid-way.
    many = {"rooms": [f"!r{n}:portal.test" for n in range(21)], "change": {"disabled": True}}
    assert call(client, "POST", "/rooms/bulk", secret, many).status_code == 202
    assert call(client, "POST", "/rooms/bulk", secret, many, dry_run="true").status_code == 200


def test_a_token_acts_as_its_owner_is_now(client, chat, make_room, creator):
    """A Manager's token stops changing the room once they are no longer its Manager."""
    room = make_room()
    secret = make_token(client, creator, name="kept")
    assert (
        call(client, "PATCH", f"/rooms/{room.id}", secret, {"description": "Mine"}).status_code
        == 200
    )
    chat.remove_from_role(room.id, Role.MANAGER, [creator.chat_id])
    chat.reindex(room.id)
    refused = call(client, "PATCH", f"/rooms/{room.id}", secret, {"description": "Still mine?"})
    assert refused.status_code == 403
    assert chat.get_room(room.id).settings.description == "Mine"


def test_a_long_change_to_many_rooms_runs_in_the_background_and_is_polled(
    client, chat, creator, make_room
):
    from rooms.services.rooms import bulk_change_step

    rooms = [make_room() for _ in range(3)]
    secret = make_token(client, creator)
    body = {"rooms": [r.id for r in rooms] + ["!gone:portal.test"], "change": {"disabled": True}}
    started = call(client, "POST", "/rooms/bulk", secret, body, background="true")
    assert started.status_code == 202
    operation = started.json()["operation"]
    assert call(client, "GET", f"/operations/{operation}", secret).json()["done"] == 0
    while bulk_change_step(chunk=2):  # the sync worker's rounds
        pass
    polled = call(client, "GET", f"/operations/{operation}", secret).json()
    assert (polled["done"], polled["total"], polled["status"]) == (4, 4, "unfinished")
    assert [r["result"] for r in polled["results"]] == ["changed"] * 3 + ["not found"]
    assert all(chat.get_room(r.id).disabled for r in rooms)
    other = make_token(client, AdministratorFactory(), name="admin")
    assert call(client, "GET", f"/operations/{operation}", other).status_code == 200


def test_tokens_listed_and_revoked_through_the_api(client, member):
    mine = make_token(client, member, name="mine")
    admin = make_token(client, AdministratorFactory(), name="root")
    listed = call(client, "GET", "/tokens", mine).json()
    assert [t["name"] for t in listed] == ["mine"]
    assert call(client, "GET", "/tokens", mine, everyone="true").status_code == 403
    everyone = call(client, "GET", "/tokens", admin, everyone="true").json()
    assert {t["name"] for t in everyone} == {"mine", "root"}
    revoked = call(client, "DELETE", f"/tokens/{listed[0]['id']}", admin)
    assert revoked.json()["revoked_at"] is not None
    assert call(client, "GET", "/tokens", mine).status_code == 401


def test_idempotency_keys_on_creating_a_category_and_asking_for_a_room(
    client, member, category_world
):
    from rooms.models import IndexedCategory, RoomRequest

    admin = make_token(client, AdministratorFactory(), name="ops")
    body, key = {"name": unique_name("Once ")}, {"HTTP_IDEMPOTENCY_KEY": "cat-1"}
    answers = [
        client.post(
            "/api/v1/categories",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {admin}",
            **key,
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert IndexedCategory.objects.filter(name=body["name"]).count() == 1
    other = client.post(
        "/api/v1/requests",
        json.dumps({}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {admin}",
        **key,
    )
    assert other.status_code == 422  # the key was for another address (and the body is empty)

    asker = make_token(client, member, name="asker")
    request_body = {
        "name": unique_name("Asked once "),
        "category": category_world["category"].id,
        "justification": "Because",
    }
    for _ in range(2):
        client.post(
            "/api/v1/requests",
            json.dumps(request_body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {asker}",
            HTTP_IDEMPOTENCY_KEY="req-1",
        )
    assert RoomRequest.objects.filter(requester=member).count() == 1


def test_a_many_room_change_the_chat_server_stops_part_way_is_completed_by_sending_it_again(
    client, chat, synapse, creator, make_room, monkeypatch
):
    from rooms import operations
    from rooms.backend.matrix.client import MatrixChatBackend
    from tests.failing import FailingTransport

    rooms = [make_room() for _ in range(3)]
    failing = MatrixChatBackend(
        base_url=synapse.url,
        server_name=synapse.server_name,
        token=synapse.token,
        transport=FailingTransport(rooms[1].id[1:12], "PUT", times=1000),  # every change to it
    )
    monkeypatch.setattr("rooms.index.backend.server_client", lambda: failing)
    monkeypatch.setattr(operations, "RETRY_DELAYS", (0, 0))
    secret = make_token(client, creator)
    body = {"rooms": [r.id for r in rooms], "change": {"disabled": True}}
    stopped = call(client, "POST", "/rooms/bulk", secret, body).json()["results"]
    assert [r["result"] for r in stopped] == ["changed", "failed", "changed"]
    assert [chat.get_room(r.id).disabled for r in rooms] == [True, False, True]  # as it says

    monkeypatch.undo()
    again = call(client, "POST", "/rooms/bulk", secret, body).json()["results"]
    assert [r["result"] for r in again] == ["unchanged", "changed", "unchanged"]
    assert all(chat.get_room(r.id).disabled for r in rooms)


def test_a_change_sent_with_if_match_is_refused_once_the_room_changed(
    client, chat, creator, make_room
):
    from rooms.services import rooms as room_services

    room = make_room()
    secret = make_token(client, creator, name="sync")
    read = call(client, "GET", f"/rooms/{room.id}", secret)
    tag = read["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{16}"', tag)

    changed = call(
        client, "PATCH", f"/rooms/{room.id}", secret, {"description": "First"}, HTTP_IF_MATCH=tag
    )
    assert changed.status_code == 200
    assert changed["ETag"] != tag
    assert call(client, "GET", f"/rooms/{room.id}", secret)["ETag"] == changed["ETag"]

    for late in ({"description": "Second"}, {"privacy": "open"}, {"disabled": True}):
        refused = call(client, "PATCH", f"/rooms/{room.id}", secret, late, HTTP_IF_MATCH=tag)
        assert (refused.status_code, refused["Content-Type"]) == (412, PROBLEM)
        assert refused.json()["current"]["description"] == "First"
        assert refused["ETag"] == changed["ETag"]
    now = chat.get_room(room.id)
    assert (now.settings.description, now.settings.privacy, now.disabled) == (
        "First",
        room.settings.privacy,
        False,
    )
    # Checked again under the room's lock, for a change that met another on its way there.
    with pytest.raises(room_services.StaleEdit):
        room_services.room_set_privacy(
            actor=creator, room_id=room.id, privacy=Privacy.OPEN, version="not-its-version"
        )
    assert chat.get_room(room.id).settings.privacy == room.settings.privacy


def test_a_repeat_while_the_first_request_is_still_making_the_room_gets_that_room(
    client, creator, make_room, monkeypatch
):
    """A script's connection dropped and it asked again at once: the first request is
    still at work. The repeat waits for the room and answers with it, not with a 409."""
    import uuid

    from portal.api import rooms as room_api
    from rooms.models import RoomSubmission
    from rooms.services import rooms as room_services

    secret = make_token(client, creator)
    key = "dropped-connection"
    submission = uuid.uuid5(uuid.NAMESPACE_URL, f"roomportal:{creator.pk}:{key}")
    first = RoomSubmission.objects.create(token=submission, actor=creator, owner=creator)
    room = make_room()  # what the first request is making
    body = {"name": room.name, "category": room.settings.category_id}

    monkeypatch.setattr(room_api, "FIRST_REQUEST_WAIT_SECONDS", 0)
    early = call(client, "POST", "/rooms", secret, body, HTTP_IDEMPOTENCY_KEY=key)
    assert (early.status_code, early["Retry-After"]) == (409, "5")  # not made in time

    def first_request_finishes(seconds):
        first.room_id = room.id
        first.save(update_fields=["room_id"])

    monkeypatch.setattr(room_api, "FIRST_REQUEST_WAIT_SECONDS", 20)
    monkeypatch.setattr(room_services.time, "sleep", first_request_finishes)
    again = call(client, "POST", "/rooms", secret, body, HTTP_IDEMPOTENCY_KEY=key)
    assert (again.status_code, again.json()["id"]) == (201, room.id)
    assert again["Idempotent-Replayed"] == "true"
