from __future__ import annotations

import pytest

from accounts.models import User
from rooms.demo import CATEGORIES, ROOMS, seed_demo

pytestmark = pytest.mark.django_db


def test_seed_is_idempotent_and_makes_the_demo_world(chat):
    seed_demo(chat)
    first = {c.name: c for c in chat.list_categories()}
    logins = seed_demo(chat)
    second = {c.name: c for c in chat.list_categories()}
    assert {name for name, *_ in CATEGORIES} <= set(second)
    assert {n: c.room_ids for n, c in first.items()} == {n: c.room_ids for n, c in second.items()}
    assert sum(len(second[name].room_ids) for name, *_ in CATEGORIES) == len(ROOMS)
    carol = chat.user_id_for("carol")
    assert {c.name for c in chat.find_categories_with_create_rights(carol)} == {
        "Engineering",
        "Sales",
    }
    assert chat.find_categories_with_create_rights(chat.user_id_for("paul")) == []
    # The demo shows the chat options and an add-in.
    assert second["Sales"].options.file_uploads is False
    platform = next(
        r for r in chat.get_rooms(second["Engineering"].room_ids) if r.name == "Platform team"
    )
    assert [a.name for a in platform.add_ins] == ["Release calendar"]
    assert User.objects.get(username="admin").is_administrator
    assert User.objects.get(username="auditor").is_auditor
    assert {login.username for login in logins} >= {"carol", "paul", "admin", "auditor"}
    for login in logins[:4]:  # the chat users' printed passwords work on the chat server
        assert chat.login(login.username, login.password).id == chat.user_id_for(login.username)


def test_seeding_again_overwrites_nothing(chat):
    seed_demo(chat)
    admin = User.objects.get(username="admin")
    admin.set_password("changed-by-the-admin-1")
    admin.is_auditor = True
    admin.save()
    User.objects.filter(username="auditor").update(is_auditor=False)
    carol = chat.user_id_for("carol")
    chat.http.request(
        "PUT",
        f"/_synapse/admin/v2/users/{carol}",
        json={"password": "carols-own-password", "logout_devices": False},
    )
    logins = {login.username: login for login in seed_demo(chat)}
    admin.refresh_from_db()
    assert admin.check_password("changed-by-the-admin-1")
    assert admin.is_auditor  # roles are left as they were, too
    assert not User.objects.get(username="auditor").is_auditor
    assert chat.login("carol", "carols-own-password").id == carol
    assert not logins["admin"].created
    assert "carol-demo-pass (unless changed)" in logins["carol"].line()
