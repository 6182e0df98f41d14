"""Clearing a room's history (portal administrators): counted first, confirmed by typing
the room's name, recorded, audited; a chat user's client no longer receives what went."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from portal.models import AuditEntry, Outcome
from rooms.models import Operation
from tests.api.test_api import call, make_token
from tests.api.test_roomctl import shell
from tests.factories import AdministratorFactory, LocalUserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.chat]


def said(person, room_id: str) -> list[str]:
    """What the person's chat client reads of the room's messages, newest first."""
    answer = person.read(room_id)
    answer.raise_for_status()
    return [
        e["content"]["body"]
        for e in answer.json()["chunk"]
        if e["type"] == "m.room.message" and "body" in e["content"]  # removed: no body
    ]


def test_an_administrator_counts_confirms_and_clears(client, talked):
    room, person, moment = talked
    admin = AdministratorFactory()
    client.force_login(admin)
    url = reverse("moderation:clear", args=[room.id])
    assert "Clear the history" in client.get(reverse("rooms:detail", args=[room.id])).text
    before = moment.strftime("%Y-%m-%dT%H:%M:%S")

    counted = client.post(url, {"before": before})
    assert counted.status_code == 200
    assert "2 messages</strong> sent before then will be deleted" in counted.text
    assert {"Old news", "Older secret"} <= set(said(person, room.id))  # nothing gone yet

    wrong = client.post(url, {"before": before, "counted": before, "confirm": "yes"})
    assert wrong.status_code == 400
    assert "Type the room&#x27;s name exactly" in wrong.text
    assert "2 messages</strong>" in wrong.text  # counted again, with the name to type
    changed_moment = client.post(
        url, {"before": "2020-01-01T00:00", "counted": before, "confirm": "yes"}
    )
    assert "No message was sent before then" in changed_moment.text  # counted, not cleared

    done = client.post(
        url, {"before": before, "counted": before, "confirm": "yes", "confirm_name": room.name}
    )
    assert done.status_code == 302
    assert said(person, room.id) == ["Fresh news"]
    entries = AuditEntry.objects.filter(action="moderation.clear", target_id=room.id)
    # The mistyped name and the other moment attempted nothing: one entry.
    assert [(e.outcome, e.actor_id) for e in entries] == [(Outcome.SUCCEEDED, admin.pk)]
    assert Operation.objects.get(kind="moderation.clear").status == Operation.Status.SUCCEEDED


def test_only_administrators_clear_a_history(client, creator, talked):
    room, person, _ = talked
    client.force_login(creator)  # the room's Manager
    url = reverse("moderation:clear", args=[room.id])
    assert client.get(url).status_code == 403
    refused = client.post(url, {"before": "2030-01-01T00:00", "confirm": "yes"})
    assert refused.status_code == 403
    assert "Clear the history" not in client.get(reverse("rooms:detail", args=[room.id])).text
    refusals = AuditEntry.objects.filter(action="access.denied", target_id=url)
    assert [e.outcome for e in refusals] == [Outcome.DENIED, Outcome.DENIED]
    assert len(said(person, room.id)) == 3


def test_a_moment_to_come_is_refused(client, talked):
    room, _, _ = talked
    client.force_login(AdministratorFactory())
    later = client.post(reverse("moderation:clear", args=[room.id]), {"before": "2999-01-01"})
    assert later.status_code == 400
    assert "Choose a moment in the past" in later.text


def test_through_the_api_a_what_if_then_the_clearing(client, creator, talked):
    room, person, moment = talked
    token = make_token(client, AdministratorFactory())
    path = f"/moderation/rooms/{room.id}/clear"
    body = {"before": moment.isoformat(), "confirm_name": ""}
    counted = call(client, "POST", path, token, body, dry_run="true")
    assert counted.json() == {"applied": False, "messages": 2, "more": False, "operation": None}
    unconfirmed = call(client, "POST", path, token, body)
    assert unconfirmed.status_code == 422
    assert unconfirmed.json()["field"] == "confirm_name"
    done = call(client, "POST", path, token, body | {"confirm_name": room.name})
    assert done.status_code == 200, done.json()
    assert (done.json()["applied"], done.json()["messages"]) == (True, 2)
    assert said(person, room.id) == ["Fresh news"]
    manager = make_token(client, creator, name="manager")
    assert call(client, "POST", path, manager, body, dry_run="true").status_code == 403


@pytest.mark.parametrize("fault", ["500", "timeout-after"])
def test_a_clearing_the_chat_server_fails_is_left_unfinished_and_retry_finishes_it(
    client, talked, injected, fault
):
    room, person, moment = talked
    admin = AdministratorFactory()
    client.force_login(admin)
    before = moment.strftime("%Y-%m-%dT%H:%M:%S")
    data = {"before": before, "counted": before, "confirm": "yes", "confirm_name": room.name}
    injected.arm(1, fault, sticky=True)  # the purge request, however often it is tried
    failed = client.post(reverse("moderation:clear", args=[room.id]), data)
    assert failed.status_code == 503
    assert "may be partly cleared" in failed.text
    op = Operation.objects.get(kind="moderation.clear")
    assert op.status == Operation.Status.UNFINISHED
    entry = AuditEntry.objects.get(action="moderation.clear", target_id=room.id)
    assert entry.outcome == Outcome.FAILED
    injected.arm(0, "")
    retried = client.post(reverse("operations:retry", args=[op.pk]), follow=True)
    assert retried.status_code == 200
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert said(person, room.id) == ["Fresh news"]
    assert AuditEntry.objects.get(action="operation.retry", target_id=room.id).outcome == (
        Outcome.SUCCEEDED
    )


@pytest.mark.django_db(transaction=True)
def test_roomctl_counts_then_clears(live_server, creator, talked):
    room, person, moment = talked
    before = moment.strftime("%Y-%m-%dT%H:%M:%S")
    admin = shell(live_server, AdministratorFactory(), TZ="UTC")
    command = f"roomctl room clear-history {room.id} --before {before}"
    assert admin(command).returncode == 2  # cannot be undone: asks for --yes
    assert shell(live_server, creator)(f"{command} --yes").returncode == 1  # administrators
    counted = admin(f"{command} --what-if")
    assert counted.returncode == 0, counted.stderr
    assert "would clear" in counted.stdout
    assert "2 message(s)" in counted.stdout
    assert len(said(person, room.id)) == 3
    cleared = admin(f"{command} --yes")
    assert cleared.returncode == 0, cleared.stderr
    assert said(person, room.id) == ["Fresh news"]


def test_an_administrator_reads_the_history_filtered_and_each_read_is_audited(
    client, creator, talked
):
    room, person, _ = talked
    admin = AdministratorFactory()
    client.force_login(admin)
    url = reverse("moderation:history", args=[room.id])
    page = client.get(url)
    assert page.status_code == 200
    shown = page.text
    assert shown.index("Fresh news") < shown.index("Older secret") < shown.index("Old news")
    assert "Member (" in shown  # the sender by name
    found = client.get(url, {"text": "SECRET", "sender": person.user_id}).text
    assert "Older secret" in found
    assert "Old news" not in found
    nobody = client.get(url, {"sender": "@nobody:portal.test"}).text
    assert "No message matches" in nobody
    assert client.get(url, {"since": "2030-01-02", "until": "2030-01-01"}).status_code == 400
    reads = list(
        AuditEntry.objects.filter(action="moderation.read", target_id=room.id).order_by("id")
    )
    assert [e.outcome for e in reads] == [Outcome.SUCCEEDED] * 3
    assert (reads[0].after["messages"], reads[0].after["text"]) == (3, "")
    assert (reads[1].after["text"], reads[1].after["sender"]) == ("SECRET", person.user_id)

    client.force_login(creator)  # the room's Manager
    assert client.get(url).status_code == 403
    assert AuditEntry.objects.filter(action="access.denied", target_id=url).exists()


def test_the_history_is_read_a_page_at_a_time_each_page_going_on_from_the_last(talked):
    from rooms.index import chat_backend

    room, _, _ = talked
    server = chat_backend().server
    bodies, start = [], ""
    for _ in range(4):
        page = server.read_messages(room.id, start=start, limit=1)
        bodies += [m.body for m in page.messages]
        if not page.next:
            break
        start = page.next
    assert bodies == ["Fresh news", "Older secret", "Old news"]
    news = server.read_messages(room.id, text="news", limit=1)
    assert [m.body for m in news.messages] == ["Fresh news"]
    rest = server.read_messages(room.id, text="news", start=news.next, limit=5)
    assert [m.body for m in rest.messages] == ["Old news"]


def test_the_history_through_the_api_a_page_at_a_time(client, talked):
    room, person, moment = talked
    token = make_token(client, AdministratorFactory())
    path = f"/moderation/rooms/{room.id}/messages"
    page = call(client, "GET", path, token, sender=person.user_id.split(":")[0][1:]).json()
    assert [m["body"] for m in page["items"]] == ["Fresh news", "Older secret", "Old news"]
    assert page["next_cursor"] is None
    older = call(client, "GET", path, token, until=moment.isoformat()).json()
    assert [m["body"] for m in older["items"]] == ["Older secret", "Old news"]
    assert call(client, "GET", path, token, sender="not a person").status_code == 422
    remove = f"/moderation/rooms/{room.id}/remove"
    empty = call(client, "POST", remove, token, {"messages": [], "reason": "x"})
    assert empty.status_code == 422
    [fresh] = [m for m in page["items"] if m["body"] == "Fresh news"]
    body = {"messages": [fresh["id"]], "reason": "Off topic"}
    assert call(client, "POST", remove, token, body).json() == {"removed": 1}
    assert "Fresh news" not in said(person, room.id)


@pytest.mark.django_db(transaction=True)
def test_roomctl_reads_the_history(live_server, talked):
    room, _, _ = talked
    admin = shell(live_server, AdministratorFactory())
    read = admin(f"roomctl room history {room.id} --text news --json")
    assert read.returncode == 0, read.stderr
    assert [m["body"] for m in json.loads(read.stdout)] == ["Fresh news", "Old news"]


def test_chosen_messages_are_removed_with_the_reason_and_a_notice(client, creator, talked):
    room, person, _ = talked
    admin = AdministratorFactory()
    client.force_login(admin)
    history = reverse("moderation:history", args=[room.id])
    page = client.get(history, {"text": "secret"})
    [secret] = [m for m, _, _ in page.context["read"]]
    url = reverse("moderation:remove", args=[room.id])
    back = f"{history}?text=secret"
    unexplained = client.post(url, {"event_ids": [secret.event_id], "back": back}, follow=True)
    assert "Say why" in unexplained.text
    assert "Older secret" in said(person, room.id)
    done = client.post(
        url,
        {
            "event_ids": [secret.event_id],
            "reason": "Shared a password",
            "notice": "on",
            "back": back,
        },
    )
    assert done.status_code == 302
    assert done.url == back
    assert "Older secret" not in said(person, room.id)
    assert "1 message removed by a moderator: Shared a password" in said(person, room.id)
    again = client.get(history, {"text": "secret"})
    assert "(removed)" not in again.text  # a removed message has no text left to match
    assert "(removed)" in client.get(history).text
    entry = AuditEntry.objects.get(action="moderation.remove", target_id=room.id)
    assert entry.outcome == Outcome.SUCCEEDED
    assert entry.after == {
        "messages": [secret.event_id],
        "reason": "Shared a password",
        "notice": True,
    }
    # Sent again (an answer lost): nothing is removed twice, no second notice.
    client.post(
        url, {"event_ids": [secret.event_id], "reason": "Shared a password", "notice": "on"}
    )
    assert said(person, room.id).count("1 message removed by a moderator: Shared a password") == 1

    client.force_login(creator)
    assert client.post(url, {"event_ids": [secret.event_id], "reason": "x"}).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_roomctl_reads_then_removes_a_message(live_server, talked):
    room, person, _ = talked
    admin = shell(live_server, AdministratorFactory())
    read = admin(f"roomctl room history {room.id} --text secret --json")
    [secret] = json.loads(read.stdout)
    removed = admin(f"roomctl room remove-messages '{room.id}' '{secret['id']}' --reason Leaked")
    assert removed.returncode == 0, removed.stderr
    assert "1 message(s) removed." in removed.stdout
    assert "Older secret" not in said(person, room.id)


def report(person, room_id: str, event_id: str, reason: str) -> None:
    answer = person.http.post(
        f"/_matrix/client/v3/rooms/{room_id}/report/{event_id}", json={"reason": reason}
    )
    assert answer.status_code == 200, answer.text


def test_reported_messages_are_listed_to_managers_and_decided(client, creator, outsider, talked):
    from rooms.index import chat_backend

    room, person, _ = talked
    messages = {m.body: m for m in chat_backend().server.read_messages(room.id).messages}
    report(person, room.id, messages["Older secret"].event_id, "Leaks a secret")
    report(person, room.id, messages["Old news"].event_id, "Stale")
    client.force_login(outsider)  # manages nothing
    assert "Nothing is reported" in client.get(reverse("moderation:reports")).text

    client.force_login(creator)  # the room's Manager
    listed = client.get(reverse("moderation:reports"))
    assert listed.status_code == 200
    shown = [(r.reason, r.body) for r, _, _ in listed.context["reports"]]
    assert sorted(shown) == [("Leaks a secret", "Older secret"), ("Stale", "Old news")]
    by_reason = {r.reason: r for r, _, _ in listed.context["reports"]}
    decide = "moderation:decide"
    removed = client.post(
        reverse(decide, args=[by_reason["Leaks a secret"].id]), {"decision": "remove"}
    )
    assert removed.status_code == 302
    dismissed = client.post(reverse(decide, args=[by_reason["Stale"].id]), {"decision": "dismiss"})
    assert dismissed.status_code == 302
    assert said(person, room.id) == ["Fresh news", "Old news"]  # the reported one removed
    assert "Nothing is reported" in client.get(reverse("moderation:reports")).text  # closed
    decisions = AuditEntry.objects.filter(action="moderation.report").order_by("id")
    assert [(e.after["decision"], e.before["reason"]) for e in decisions] == [
        ("message removed", "Leaks a secret"),
        ("dismissed", "Stale"),
    ]

    report(person, room.id, messages["Fresh news"].event_id, "Spam")
    [(fresh, _, _)] = client.get(reverse("moderation:reports")).context["reports"]
    client.force_login(outsider)
    refused = client.post(reverse(decide, args=[fresh.id]), {"decision": "remove"})
    assert refused.status_code == 403
    assert "Fresh news" in said(person, room.id)


def whole(lines: list[str]) -> dict:
    """The export's last line, checked against the lines before it."""
    import hashlib

    end = json.loads(lines[-1])
    digest = hashlib.sha256("".join(line + "\n" for line in lines[:-1]).encode()).hexdigest()
    assert (end["kind"], end["lines"], end["sha256"]) == ("end", len(lines) - 1, digest)
    return end


def test_a_compliance_export_holds_messages_and_joins_and_proves_it_is_whole(
    client, creator, talked
):
    room, person, _ = talked
    admin = AdministratorFactory()
    client.force_login(admin)
    url = reverse("moderation:export", args=[room.id])
    answer = client.get(url)
    assert answer.status_code == 200
    assert "attachment" in answer["Content-Disposition"]
    lines = b"".join(answer.streaming_content).decode().splitlines()
    whole(lines)
    records = [json.loads(line) for line in lines[:-1]]
    assert records[0]["kind"] == "export"
    assert records[0]["room_id"] == room.id
    said_there = [r["body"] for r in records if r["kind"] == "message"]
    assert said_there == ["Old news", "Older secret", "Fresh news"]  # oldest first
    joined = [r for r in records if r["kind"] == "membership" and r["person"] == person.user_id]
    assert "join" in [r["membership"] for r in joined]
    entry = AuditEntry.objects.get(action="moderation.export", target_id=room.id)
    assert (entry.outcome, entry.actor_id) == (Outcome.SUCCEEDED, admin.pk)

    tampered = [line.replace("Old news", "Nothing") for line in lines]
    assert tampered != lines
    with pytest.raises(AssertionError):
        whole(tampered)

    client.force_login(creator)
    assert client.get(url).status_code == 403


def test_an_encrypted_room_is_refused_as_not_exportable(client, talked):
    from rooms.index import chat_backend

    room, _, _ = talked
    encrypted = {"algorithm": "m.megolm.v1.aes-sha2"}
    chat_backend().server._put_state(room.id, "m.room.encryption", encrypted)
    token = make_token(client, AdministratorFactory())
    refused = call(client, "GET", f"/moderation/rooms/{room.id}/export", token)
    assert refused.status_code == 422
    assert "encrypted" in refused.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_roomctl_exports_a_room(live_server, talked, tmp_path):
    room, _, moment = talked
    admin = shell(live_server, AdministratorFactory())
    out = tmp_path / "room.jsonl"
    done = admin(f"roomctl room export '{room.id}' --until {moment.isoformat()} -o {out}")
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    whole(lines)
    bodies = [json.loads(x).get("body") for x in lines if '"kind": "message"' in x]
    assert bodies == ["Old news", "Older secret"]


def test_an_administrator_removes_a_reported_message_and_its_sender(client, creator, chat, talked):
    from rooms.index import chat_backend

    room, person, _ = talked
    [fresh] = chat_backend().server.read_messages(room.id, text="fresh").messages
    report(person, room.id, fresh.event_id, "Spam")
    [(reported, _, _)] = _reports_seen(client, creator)
    only_admins = client.post(
        reverse("moderation:decide", args=[reported.id]), {"decision": "remove_sender"}
    )
    assert only_admins.status_code == 403  # a Manager removes messages, not people
    client.force_login(AdministratorFactory())
    done = client.post(
        reverse("moderation:decide", args=[reported.id]), {"decision": "remove_sender"}
    )
    assert done.status_code == 302
    assert person.user_id not in chat.get_room(room.id).members
    decision = AuditEntry.objects.get(action="moderation.report", outcome=Outcome.SUCCEEDED)
    assert decision.after == {"decision": "message removed and its sender"}
    assert AuditEntry.objects.filter(action="role.remove.member", target_id=room.id).exists()


def _reports_seen(client, user) -> list:
    client.force_login(user)
    return client.get(reverse("moderation:reports")).context["reports"]


def test_every_message_a_filter_shows_is_removed_at_once(client, talked):
    room, person, _ = talked
    client.force_login(AdministratorFactory())
    history = reverse("moderation:history", args=[room.id])
    page = client.get(history, {"text": "news"})
    assert "Remove all 2 shown" in page.text
    shown = [m.event_id for m, _, _ in page.context["read"]]
    done = client.post(
        reverse("moderation:remove", args=[room.id]),
        {"shown": shown, "every": "yes", "reason": "Old topic"},
        follow=True,
    )
    assert "2 messages removed." in done.text
    assert said(person, room.id) == ["Older secret"]
    assert "No message matches" in client.get(history, {"text": "news"}).text


def test_a_compliance_officer_reads_and_exports_but_changes_nothing(client, talked):
    from tests.factories import LocalUserFactory

    room, person, moment = talked
    officer = LocalUserFactory(is_compliance_officer=True)
    client.force_login(officer)
    detail = client.get(reverse("rooms:detail", args=[room.id])).text
    assert "Read the history" in detail
    assert "Clear the history" not in detail
    page = client.get(reverse("moderation:history", args=[room.id]))
    assert "Fresh news" in page.text
    assert "Remove the chosen messages" not in page.text
    exported = client.get(reverse("moderation:export", args=[room.id]))
    whole(b"".join(exported.streaming_content).decode().splitlines())
    [message] = [m for m, _, _ in page.context["read"] if m.body == "Fresh news"]
    refused = client.post(
        reverse("moderation:remove", args=[room.id]),
        {"event_ids": [message.event_id], "reason": "No"},
    )
    assert refused.status_code == 403
    before = moment.strftime("%Y-%m-%dT%H:%M:%S")
    assert (
        client.post(reverse("moderation:clear", args=[room.id]), {"before": before}).status_code
        == 403
    )
    assert len(said(person, room.id)) == 3
    read = AuditEntry.objects.get(action="moderation.read", target_id=room.id)
    assert read.actor_id == officer.pk


def test_a_removed_file_is_quarantined_as_well(client, talked):
    room, person, _ = talked
    uploaded = person.http.post(
        "/_matrix/media/v3/upload",
        params={"filename": "plan.txt"},
        content=b"the secret plan",
        headers={"Content-Type": "text/plain"},
    )
    assert uploaded.status_code == 200, uploaded.text
    url = uploaded.json()["content_uri"]
    sent = person.http.put(
        f"/_matrix/client/v3/rooms/{room.id}/send/m.room.message/file-1",
        json={"msgtype": "m.file", "body": "plan.txt", "url": url},
    )
    assert sent.status_code == 200, sent.text
    download = f"/_matrix/client/v1/media/download/{url.removeprefix('mxc://')}"
    assert person.http.get(download).status_code == 200
    token = make_token(client, AdministratorFactory())
    body = {"messages": [sent.json()["event_id"]], "reason": "Confidential"}
    removed = call(client, "POST", f"/moderation/rooms/{room.id}/remove", token, body)
    assert removed.json() == {"removed": 1}
    assert person.http.get(download).status_code == 404


@pytest.mark.parametrize("fault", ["500", "timeout-after"])
@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_removing_a_message_the_chat_server_fails_at_any_step_is_finished_by_sending_it_again(
    client, talked, injected, fault, step
):
    """Reading the message, quarantining its file, redacting it, posting the notice: a
    failure (or an answer lost past every retry) at any of them is told and audited as
    failed, never a 5xx; sending it again removes it once, with one notice."""
    room, person, _ = talked
    uploaded = person.http.post(
        "/_matrix/media/v3/upload", content=b"x", headers={"Content-Type": "text/plain"}
    )
    url = uploaded.json()["content_uri"]
    sent = person.http.put(
        f"/_matrix/client/v3/rooms/{room.id}/send/m.room.message/f-{fault}-{step}",
        json={"msgtype": "m.file", "body": "f.txt", "url": url},
    )
    event_id = sent.json()["event_id"]
    client.force_login(AdministratorFactory())
    data = {"event_ids": [event_id], "reason": "Leak", "notice": "on"}
    remove = reverse("moderation:remove", args=[room.id])
    injected.arm(step, fault, sticky=True)
    failed = client.post(remove, data, follow=True)
    assert failed.status_code == 200
    assert "may not be removed" in failed.text
    entry = AuditEntry.objects.get(action="moderation.remove")
    assert entry.outcome == Outcome.FAILED
    [left] = Operation.objects.filter(kind="moderation.remove")
    assert left.status == Operation.Status.UNFINISHED  # listed for Retry
    injected.arm(0, "")
    again = client.post(remove, data, follow=True)
    assert "1 message removed." in again.text
    # Sending the same removal again finished the one left unfinished too.
    assert set(Operation.objects.values_list("status", flat=True)) == {"succeeded"}
    bodies = said(person, room.id)
    assert "f.txt" not in bodies
    assert bodies.count("1 message removed by a moderator: Leak") == 1
    download = f"/_matrix/client/v1/media/download/{url.removeprefix('mxc://')}"
    assert person.http.get(download).status_code == 404


@pytest.mark.parametrize("fault", ["500", "timeout-after"])
@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_a_report_decision_the_chat_server_fails_is_finished_by_deciding_again(
    client, creator, talked, injected, fault, step
):
    """Reading the report, reading the message, redacting it, closing the report: a
    failure at any of them is told and audited, never a 5xx; deciding again (while the
    report is still listed) leaves the message removed and the report closed."""
    from rooms.index import chat_backend

    room, person, _ = talked
    [secret] = chat_backend().server.read_messages(room.id, text="secret").messages
    report(person, room.id, secret.event_id, "Leak")
    [(reported, _, _)] = _reports_seen(client, creator)
    decide = reverse("moderation:decide", args=[reported.id])
    injected.arm(step, fault, sticky=True)
    assert client.post(decide, {"decision": "remove"}).status_code == 302  # told, not a 5xx
    injected.arm(0, "")
    if _reports_seen(client, creator):  # still open: decide again
        again = client.post(decide, {"decision": "remove"}, follow=True)
        assert "The message was removed." in again.text
    assert "Older secret" not in said(person, room.id)
    assert _reports_seen(client, creator) == []
    outcomes = list(
        AuditEntry.objects.filter(action="moderation.report").values_list("outcome", flat=True)
    )
    assert Outcome.SUCCEEDED in outcomes or step == 4  # a lost close: the first one did it all


def test_a_category_and_a_person_are_exported_with_encrypted_rooms_named(
    client, talked, make_room, category_world
):
    from rooms.index import chat_backend

    room, person, _ = talked
    sealed = make_room()
    encrypted = {"algorithm": "m.megolm.v1.aes-sha2"}
    chat_backend().server._put_state(sealed.id, "m.room.encryption", encrypted)
    client.force_login(AdministratorFactory())
    url = reverse("moderation:export_many")
    assert "Compliance export" in client.get(url).text
    assert client.get(url, {"since": "2020-01-01"}).status_code == 400  # nothing named
    category = category_world["category"].id
    answer = client.get(url, {"category": category})
    lines = b"".join(answer.streaming_content).decode().splitlines()
    whole(lines)
    header = json.loads(lines[0])
    assert room.id in header["rooms"]
    assert header["not_exportable"] == [{"room_id": sealed.id, "why": "encrypted"}]
    said_there = [json.loads(x) for x in lines[1:-1]]
    assert {r["room_id"] for r in said_there} <= set(header["rooms"])
    assert "Older secret" in [r.get("body") for r in said_there]

    token = make_token(client, AdministratorFactory())
    theirs = call(client, "GET", "/moderation/export", token, person=person.user_id)
    lines = b"".join(theirs.streaming_content).decode().splitlines()
    whole(lines)
    sent = [json.loads(x) for x in lines[1:-1] if '"kind": "message"' in x]
    assert {r["sender"] for r in sent} == {person.user_id}
    assert call(client, "GET", "/moderation/export", token).status_code == 422
    entries = AuditEntry.objects.filter(action="moderation.export").order_by("id")
    assert [e.target_id for e in entries] == [category, person.user_id]


@pytest.mark.django_db(transaction=True)
def test_roomctl_exports_a_category(live_server, talked, category_world, tmp_path):
    room, _, _ = talked
    officer = shell(live_server, LocalUserFactory(is_compliance_officer=True))
    out = tmp_path / "category.jsonl"
    category = category_world["category"].id  # an officer lists no categories: by its ID
    done = officer(f"roomctl room export --category '{category}' -o {out}")
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    whole(lines)
    assert room.id in json.loads(lines[0])["rooms"]
    assert officer("roomctl room export").returncode == 2  # nothing named


def test_a_removal_left_unfinished_is_finished_by_retry(client, talked, injected):
    room, person, _ = talked
    admin = AdministratorFactory()
    client.force_login(admin)
    [secret] = [
        m
        for m, _, _ in client.get(
            reverse("moderation:history", args=[room.id]), {"text": "secret"}
        ).context["read"]
    ]
    injected.arm(2, "500", sticky=True)  # the redaction
    data = {"event_ids": [secret.event_id], "reason": "Leak"}
    client.post(reverse("moderation:remove", args=[room.id]), data)
    [op] = Operation.objects.filter(kind="moderation.remove")
    assert op.status == Operation.Status.UNFINISHED
    assert "Older secret" in said(person, room.id)
    injected.arm(0, "")
    client.post(reverse("operations:retry", args=[op.pk]))
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert "Older secret" not in said(person, room.id)
    retry = AuditEntry.objects.get(action="operation.retry", target_id=room.id)
    assert (retry.outcome, retry.after["messages"]) == (Outcome.SUCCEEDED, [secret.event_id])


def test_a_report_decided_twice_at_once_is_told_closed_to_the_second(client, creator, talked):
    from rooms.index import chat_backend

    room, person, _ = talked
    [old] = chat_backend().server.read_messages(room.id, text="old news").messages
    report(person, room.id, old.event_id, "Stale")
    [(reported, _, _)] = _reports_seen(client, creator)
    decide = reverse("moderation:decide", args=[reported.id])
    client.post(decide, {"decision": "dismiss"})
    second = client.post(decide, {"decision": "remove"}, follow=True)  # another tab, later
    assert "closed already" in second.text
    assert "Old news" in said(person, room.id)  # the second decision changed nothing


class Killed(BaseException):
    """The portal process stopping between two requests (as SIGKILL would)."""


def test_a_report_decision_whose_process_died_is_audited_and_finished_by_retry(
    client, creator, talked, monkeypatch
):
    from rooms import operations, processes
    from rooms.backend.matrix.moderation import ModerationOperations
    from rooms.index import chat_backend

    room, person, _ = talked
    [secret] = chat_backend().server.read_messages(room.id, text="secret").messages
    report(person, room.id, secret.event_id, "Leak")
    [(reported, _, _)] = _reports_seen(client, creator)

    def die(self, report_id):
        raise Killed

    with monkeypatch.context() as patched:
        patched.setattr(ModerationOperations, "close_report", die)
        with pytest.raises(Killed):
            client.post(reverse("moderation:decide", args=[reported.id]), {"decision": "remove"})
    # What a killed process leaves: the operation recorded before the first request,
    # still running, its process gone; no audit entry of its own.
    [op] = Operation.objects.filter(kind="moderation.report")
    machine = processes.identity().rsplit("|", 2)[0]
    Operation.objects.filter(pk=op.pk).update(
        status=Operation.Status.RUNNING, owner=f"{machine}|999999999|0"
    )
    assert not AuditEntry.objects.filter(action="moderation.report").exists()
    assert "Older secret" not in said(person, room.id)  # removed; its report still open

    operations.resume_abandoned()
    op.refresh_from_db()
    assert op.status == Operation.Status.UNFINISHED
    left = AuditEntry.objects.get(action="moderation.report")
    assert (left.outcome, left.target_id) == (Outcome.PARTIAL, room.id)

    client.force_login(AdministratorFactory())
    client.post(reverse("operations:retry", args=[op.pk]))
    op.refresh_from_db()
    assert op.status == Operation.Status.SUCCEEDED
    assert _reports_seen(client, creator) == []  # closed
    retried = AuditEntry.objects.get(action="operation.retry", target_id=room.id)
    assert retried.outcome == Outcome.SUCCEEDED
