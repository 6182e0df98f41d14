"""People sign in to the embedded homeserver, and so to the portal, with their password
of the directory (matrix-synapse-ldap3 against a real slapd)."""

from __future__ import annotations

import httpx

from accounts.directory.server import Person, Seed
from rooms.backend.embedded import DirectoryLogin, EmbeddedSynapse, free_port


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
