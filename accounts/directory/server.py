"""The demo's and the tests' directory: OpenLDAP's `slapd` (Debian's package, which
`make run` and `make test` install when missing), run for as long as a block runs, from a
folder of its own, on 127.0.0.1. A new folder is filled with the people, organisational
units and groups it is given (`slapadd`, before the server starts); an existing one is
served as it is, so what the demo's directory holds survives a restart.

Groups are `groupOfNames` (`member`: the DNs of people and of other groups); the
`memberof` overlay keeps each person's `memberOf`, as Active Directory does.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from portal.secrets import write_private
from rooms.backend.embedded import child_process, free_port

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMAS = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")
SUFFIX = "dc=portal,dc=test"
START_TIMEOUT_SECONDS = 30.0
SECRET_FILE = "admin-password"


class DirectoryServerError(RuntimeError):
    """The directory server could not be started."""


@dataclass(frozen=True)
class Person:
    """Someone in the directory: a username (their chat localpart), a name, the OU they are
    in (outermost first; none: the people's OU itself) and a password."""

    username: str
    name: str
    ou: tuple[str, ...] = ()
    password: str = ""


@dataclass(frozen=True)
class Group:
    """A group: its people (usernames) and the groups nested in it (names)."""

    name: str
    people: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Seed:
    people: Sequence[Person] = ()
    groups: Sequence[Group] = ()
    ous: Sequence[tuple[str, ...]] = field(default=())  # OUs with nobody in them yet


@dataclass(frozen=True)
class DirectoryConnection:
    """How the portal reaches the directory (settings DIRECTORY_*)."""

    url: str
    bind_dn: str
    password: str
    base: str = SUFFIX

    @property
    def people_base(self) -> str:
        return f"ou=People,{self.base}"

    @property
    def groups_base(self) -> str:
        return f"ou=Groups,{self.base}"


def ou_dn(path: Sequence[str], suffix: str = SUFFIX) -> str:
    """The DN of an OU under the people's OU (outermost first)."""
    return ",".join([*(f"ou={name}" for name in reversed(path)), f"ou=People,{suffix}"])


def person_dn(person: Person, suffix: str = SUFFIX) -> str:
    return f"uid={person.username},{ou_dn(person.ou, suffix)}"


def group_dn(name: str, suffix: str = SUFFIX) -> str:
    return f"cn={name},ou=Groups,{suffix}"


def ldif(seed: Seed, suffix: str = SUFFIX) -> str:
    """The directory's first entries, in LDIF: the base, the people's and the groups'
    OUs, every OU named, the people, then the groups."""
    entries = [
        [f"dn: {suffix}", "objectClass: dcObject", "objectClass: organization", "o: Portal"],
        [f"dn: ou=People,{suffix}", "objectClass: organizationalUnit", "ou: People"],
        [f"dn: ou=Groups,{suffix}", "objectClass: organizationalUnit", "ou: Groups"],
    ]
    paths = {p.ou[:n] for p in seed.people for n in range(1, len(p.ou) + 1)}
    paths |= {path[:n] for path in seed.ous for n in range(1, len(path) + 1)}
    for path in sorted(paths, key=len):
        entries.append(
            [f"dn: {ou_dn(path, suffix)}", "objectClass: organizationalUnit", f"ou: {path[-1]}"]
        )
    by_name = {p.username: p for p in seed.people}
    for person in seed.people:
        surname = person.name.split()[-1] if person.name.split() else person.username
        entry = [
            f"dn: {person_dn(person, suffix)}",
            "objectClass: inetOrgPerson",
            f"uid: {person.username}",
            f"cn: {person.name or person.username}",
            f"sn: {surname}",
            f"displayName: {person.name or person.username}",
        ]
        if person.password:
            entry.append(f"userPassword: {person.password}")
        entries.append(entry)
    for group in seed.groups:
        members = [person_dn(by_name[u], suffix) for u in group.people]
        members += [group_dn(g, suffix) for g in group.groups]
        # groupOfNames must have a member: an empty group names its own DN, as is usual.
        entries.append(
            [
                f"dn: {group_dn(group.name, suffix)}",
                "objectClass: groupOfNames",
                f"cn: {group.name}",
                *(f"member: {m}" for m in members or [group_dn(group.name, suffix)]),
            ]
        )
    return "\n\n".join("\n".join(e) for e in entries) + "\n"


def _config(folder: Path, password: str, schemas: Sequence[Path]) -> str:
    standard = ("core", "cosine", "inetorgperson", "nis")
    return "\n".join(
        [
            *(f"include {SCHEMAS / name}.schema" for name in standard),
            *(f"include {schema}" for schema in schemas),
            f"modulepath {MODULES}",
            "moduleload back_mdb",
            "moduleload memberof",
            f"pidfile {folder / 'slapd.pid'}",
            f"argsfile {folder / 'slapd.args'}",
            "database mdb",
            f'suffix "{SUFFIX}"',
            f'rootdn "cn=admin,{SUFFIX}"',
            f"rootpw {password}",
            f"directory {folder / 'data'}",
            "maxsize 1073741824",
            "index objectClass eq",
            "index uid eq",
            "index member eq",
            "overlay memberof",
            # People prove their password by binding as themselves; nobody but the
            # directory's administrator (its rootdn) reads or changes anything.
            "access to attrs=userPassword by anonymous auth by * none",
            "access to * by * none",
            "",
        ]
    )


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def embedded_directory(
    folder: Path, seed: Seed | str, *, port: int | None = None, schemas: Sequence[Path] = ()
) -> Iterator[DirectoryConnection]:
    """slapd, serving the directory kept in `folder` (filled with `seed`, or these entries
    in LDIF, when new), with these schema files besides OpenLDAP's own."""
    if not SLAPD.is_file() or not SLAPADD.is_file():
        raise DirectoryServerError(
            "The directory needs OpenLDAP's slapd: `make run` installs it "
            "(apt-get install slapd ldap-utils)."
        )
    folder.mkdir(parents=True, exist_ok=True)
    secret = folder / SECRET_FILE
    if not secret.is_file():
        write_private(secret, secrets.token_urlsafe(24))
    password = secret.read_text().strip()
    config = folder / "slapd.conf"
    write_private(config, _config(folder, password, schemas))
    data = folder / "data"
    if not (data / "data.mdb").is_file():
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(mode=0o700)
        seeded = folder / "seed.ldif"
        write_private(seeded, seed if isinstance(seed, str) else ldif(seed))
        made = subprocess.run(
            [str(SLAPADD), "-q", "-f", str(config), "-l", str(seeded)],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            shutil.rmtree(data, ignore_errors=True)
            raise DirectoryServerError(f"slapadd refused the directory: {made.stderr.strip()}")
    port = port or free_port()
    url = f"ldap://127.0.0.1:{port}"
    # -d: in the foreground, stopped with the block; "none": it logs nothing.
    command = [str(SLAPD), "-h", f"{url}/", "-f", str(config), "-d", "none"]
    with child_process(command, cwd=folder) as process:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _listening(port):
            if process.poll() is not None:
                raise DirectoryServerError(f"slapd stopped at start (exit {process.returncode}).")
            if time.monotonic() > deadline:
                raise DirectoryServerError(f"slapd did not listen on {url} in time.")
            time.sleep(0.1)
        yield DirectoryConnection(url, f"cn=admin,{SUFFIX}", password)
