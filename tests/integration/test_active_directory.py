"""The portal reads a directory with Active Directory's schema (its object classes and
attributes, by their OIDs: `tests/integration/active_directory.schema`) served by a real
slapd, configured as docs/deploy.md says for Active Directory: people are `user`s named
by `sAMAccountName` (computers, users too, left out), groups are `group`s whose `member`
holds people and nested groups, the disabled are found by bit 2 of `userAccountControl`
(the bitwise matching rule Active Directory's filters use), and the homeserver signs in
only the enabled people through it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from accounts import directory
from accounts.directory.server import SUFFIX, embedded_directory
from rooms.backend.embedded import DirectoryLogin, EmbeddedSynapse, free_port

SCHEMA = Path(__file__).with_name("active_directory.schema")
STAFF = f"ou=Staff,{SUFFIX}"
SUPPORT = f"ou=Support,{STAFF}"
GROUPS = f"ou=Groups,{SUFFIX}"
NORMAL, DISABLED, WORKSTATION = 512, 514, 4096  # userAccountControl's values


def user(cn: str, account: str, ou: str, control: int, kind: str = "user") -> list[str]:
    classes = ["top", "person", "organizationalPerson", "user"]
    return [
        f"dn: CN={cn},{ou}",
        *(f"objectClass: {c}" for c in (*classes, *(["computer"] if kind == "computer" else []))),
        f"cn: {cn}",
        f"sn: {cn.split()[-1]}",
        f"sAMAccountName: {account}",
        f"displayName: {cn}",
        f"userAccountControl: {control}",
        f"userPassword: {account.lower()}-pass",
    ]


def group(cn: str, *members: str) -> list[str]:
    return [
        f"dn: CN={cn},{GROUPS}",
        "objectClass: top",
        "objectClass: group",
        f"cn: {cn}",
        f"sAMAccountName: {cn.replace(' ', '')}",
        *(f"member: {m}" for m in members),
    ]


def entries() -> str:
    found = [
        [f"dn: {SUFFIX}", "objectClass: dcObject", "objectClass: organization", "o: Corp"],
        [f"dn: {STAFF}", "objectClass: organizationalUnit", "ou: Staff"],
        [f"dn: {SUPPORT}", "objectClass: organizationalUnit", "ou: Support"],
        [f"dn: {GROUPS}", "objectClass: organizationalUnit", "ou: Groups"],
        user("Dana Smith", "DSmith", SUPPORT, NORMAL),
        user("Sam Jones", "sjones", SUPPORT, DISABLED),
        user("Ola Berg", "oberg", STAFF, NORMAL + 0x10000),  # enabled, password never expires
        user("WS01", "WS01$", SUPPORT, WORKSTATION, kind="computer"),
        group(
            "Tier 2", f"CN=Dana Smith,{SUPPORT}", f"CN=Sam Jones,{SUPPORT}", f"CN=WS01,{SUPPORT}"
        ),
        group("Support engineers", f"CN=Tier 2,{GROUPS}", f"CN=Ola Berg,{STAFF}"),
        group("Nobody yet"),  # Active Directory's groups may be empty
    ]
    return "\n\n".join("\n".join(entry) for entry in found) + "\n"


@pytest.fixture
def active_directory(tmp_path, settings):
    with embedded_directory(tmp_path / "ad", entries(), schemas=[SCHEMA]) as found:
        settings.DIRECTORY_URL = found.url
        settings.DIRECTORY_BIND_DN = found.bind_dn
        settings.DIRECTORY_BIND_PASSWORD = found.password
        settings.DIRECTORY_BASE = SUFFIX
        # As docs/deploy.md says for Active Directory.
        settings.DIRECTORY_USER_ATTRIBUTE = "sAMAccountName"
        settings.DIRECTORY_PERSON_CLASS = "user"
        settings.DIRECTORY_PERSON_FILTER = "(!(objectClass=computer))"
        settings.DIRECTORY_GROUP_CLASS = "group"
        settings.DIRECTORY_DISABLED_FILTER = "(userAccountControl:1.2.840.113556.1.4.803:=2)"
        yield found


def test_people_groups_and_ous_are_read_with_active_directorys_schema(active_directory):
    snapshot = directory.read()
    assert sorted(snapshot.people.values()) == [("dsmith", "Dana Smith"), ("oberg", "Ola Berg")]
    assert snapshot.disabled == {"sjones"}  # bit 2 of 514, not of 512 + 65536
    assert snapshot.expand(f"CN=Support engineers,{GROUPS}") == {
        "dsmith": "member of Support engineers via Tier 2",
        "oberg": "member of Support engineers",
    }
    assert snapshot.expand(f"CN=Nobody yet,{GROUPS}") == {}
    assert snapshot.expand(STAFF) == {"dsmith": "in OU: Staff", "oberg": "in OU: Staff"}
    assert snapshot.expand(STAFF, subtree=False) == {"oberg": "in OU: Staff"}
    assert snapshot.gone("sjones") == "disabled in the directory"
    assert [(p.kind, p.name) for p in directory.find("support")] == [
        ("ou", "Support"),
        ("group", "Support engineers"),
    ]


def test_the_homeserver_signs_in_only_the_enabled_people_of_active_directory(
    active_directory, tmp_path
):
    server = EmbeddedSynapse(
        tmp_path / "synapse",
        port=free_port(),
        server_name="corp.test",
        bcrypt_rounds=4,
        login=DirectoryLogin(
            active_directory.url,
            active_directory.bind_dn,
            active_directory.password,
            SUFFIX,
            "sAMAccountName",
            directory.people_filter(enabled=True),
        ),
    )

    def login(account: str) -> httpx.Response:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": account},
            "password": f"{account.lower()}-pass",
        }
        return httpx.post(f"{server.url}/_matrix/client/v3/login", json=body, timeout=30)

    with server:
        server.bootstrap()
        signed_in = login("dsmith")
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["user_id"] == "@dsmith:corp.test"
        assert login("sjones").status_code == 403  # disabled
        assert login("WS01$").status_code == 403  # a computer, not a person
