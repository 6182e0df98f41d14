"""People sign in to the embedded homeserver, and so to the portal, with their password
of the directory (matrix-synapse-ldap3 against a real slapd), and what their groups give
them holds in a chat client."""

from __future__ import annotations

import httpx
import ldap3
import pytest

from accounts.directory.server import Group, Person, Seed, group_dn, person_dn
from accounts.models import User
from rooms.backend.embedded import DirectoryLogin, EmbeddedSynapse, free_port
from rooms.backend.records import Privacy, Role, RoomSettings
from rooms.index import chat_backend
from rooms.services import directory as directory_services
from rooms.services import directory_roles
from tests.factories import AdministratorFactory


def login(url: str, user: str, password: str) -> httpx.Response:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    }
    return httpx.post(f"{url}/_matrix/client/v3/login", json=body, timeout=30)


def test_a_person_of_the_directory_signs_in_with_its_password(make_directory, tmp_path):
    found = make_directory(Seed(people=[Person("zoe", "Zoe Zed", ("Support",), "zoe-pass")]))
    server = EmbeddedSynapse(
        tmp_path / "synapse",
        port=free_port(),
        server_name="directory.test",
        bcrypt_rounds=4,
        login=DirectoryLogin(found.url, found.bind_dn, found.password, found.people_base),
    )
    with server:
        server.bootstrap()
        signed_in = login(server.url, "zoe", "zoe-pass")
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["user_id"] == "@zoe:directory.test"
        assert login(server.url, "zoe", "not-her-pass").status_code == 403
        assert login(server.url, "nobody", "zoe-pass").status_code == 403


@pytest.mark.django_db
def test_a_groups_member_signs_in_with_the_directory_joins_its_room_and_leaves_with_the_group(
    make_directory, tmp_path, settings
):
    """End to end on one homeserver that signs people in through the directory: an OU in
    the category's scope, a group as a Closed room's Members; Zoe signs in with her
    directory password and talks in the room from a chat client, then leaves the group in
    the directory and, at the job runner's next read, can no longer post there."""
    people = [
        Person("zoe", "Zoe Zed", ("Support",), "zoe-pass"),
        Person("yan", "Yan Yu", ("Support",), "yan-pass"),
    ]
    found = make_directory(Seed(people=people, groups=[Group("Team", people=("zoe", "yan"))]))
    server = EmbeddedSynapse(
        tmp_path / "synapse",
        port=free_port(),
        server_name="directory.test",
        bcrypt_rounds=4,
        login=DirectoryLogin(found.url, found.bind_dn, found.password, found.people_base),
    )
    with server:
        chat = server.bootstrap()
        settings.CHAT_SERVER_URL, settings.CHAT_SERVER_NAME = chat.url, chat.server_name
        settings.CHAT_SERVICE_TOKEN = chat.token
        backend = chat_backend()
        category = backend.create_category(name="Support", description="", creators=[])
        directory_services.principal_add(
            actor=AdministratorFactory(),
            category_id=category.id,
            dn=f"ou=Support,{found.people_base}",
        )
        yan = User.objects.create(username="yan", chat_id="@yan:directory.test")
        room = backend.create_room(
            RoomSettings("Team room", "", category.id, Privacy.CLOSED), managers=[yan.chat_id]
        )
        change = directory_roles.principal_add(
            actor=yan, room_id=room.id, role=Role.MEMBER, dn=group_dn("Team", found.base)
        )
        assert ("member", "@zoe:directory.test") in change.added

        token = login(server.url, "zoe", "zoe-pass").json()["access_token"]
        zoe = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert zoe.post(f"/_matrix/client/v3/join/{room.id}", json={}).status_code == 200
        said = f"/_matrix/client/v3/rooms/{room.id}/send/m.room.message"
        assert zoe.put(f"{said}/1", json={"msgtype": "m.text", "body": "hi"}).status_code == 200

        with ldap3.Connection(
            ldap3.Server(found.url), found.bind_dn, found.password, auto_bind=True
        ) as ldap:
            zoe_dn = person_dn(people[0], found.base)
            gone = {"member": [(ldap3.MODIFY_DELETE, [zoe_dn])]}
            assert ldap.modify(group_dn("Team", found.base), gone), ldap.result
        assert directory_roles.keep_in_step(force=True) == 1
        refused = zoe.put(f"{said}/2", json={"msgtype": "m.text", "body": "still here?"})
        assert refused.status_code == 403
        zoe.close()
