"""The organisation's directory (LDAP: OpenLDAP, or Active Directory's schema), read for
the groups and organisational units that a category's scope names.

One read takes the whole directory under DIRECTORY_BASE in three paged searches (people,
groups, OUs) and gives a `Snapshot`, from which a group (its people, and those of the
groups nested in it) or an OU (everyone under it) is expanded in memory, each person with
the reason they are in ("member of Support engineers via Tier 2"). Nothing here changes
the directory or the chat server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from django.conf import settings
from ldap3 import SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

Kind = Literal["group", "ou"]
PAGE = 500  # entries a search answers at a time (Active Directory's limit is 1,000)
TIMEOUT_SECONDS = 10


class DirectoryUnavailable(RuntimeError):
    """The directory could not be read: nothing is changed because of it."""


def configured() -> bool:
    return bool(settings.DIRECTORY_URL)


def people_filter(*, enabled: bool = False) -> str:
    """The LDAP filter the directory's people match (DIRECTORY_PERSON_CLASS, narrowed by
    DIRECTORY_PERSON_FILTER); `enabled`: leaving out those it has disabled
    (DIRECTORY_DISABLED_FILTER), as a homeserver signing people in needs."""
    parts = [f"(objectClass={settings.DIRECTORY_PERSON_CLASS})", settings.DIRECTORY_PERSON_FILTER]
    if enabled and settings.DIRECTORY_DISABLED_FILTER:
        parts.append(f"(!{settings.DIRECTORY_DISABLED_FILTER})")
    wanted = [part for part in parts if part]
    return wanted[0] if len(wanted) == 1 else f"(&{''.join(wanted)})"


def normal_dn(dn: str) -> str:
    """A DN as compared here: its parts in lower case, without spaces around them."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPException:
        return dn.strip().lower()
    return ",".join(f"{kind.lower()}={value.lower()}" for kind, value, _ in parts)


@dataclass(frozen=True)
class Principal:
    """A group or an OU of the directory, as a scope names it."""

    kind: Kind
    dn: str
    name: str

    @property
    def label(self) -> str:
        return principal_label(self.kind, self.name)

    def label_as(self, *, subtree: bool) -> str:
        return principal_label(self.kind, self.name, subtree=subtree)


def principal_label(kind: str, name: str, *, subtree: bool = True) -> str:
    """How pages name a group or an OU: "Group: Support engineers", "OU: Support"; an OU
    named without the OUs under it says so."""
    label = f"{'Group' if kind == 'group' else 'OU'}: {name}"
    return label + ("" if subtree or kind != "ou" else " (without the OUs under it)")


@dataclass(frozen=True)
class Snapshot:
    """What one read of the directory found."""

    people: dict[str, tuple[str, str]]  # person DN: (username, name); the disabled left out
    groups: dict[str, tuple[str, tuple[str, ...]]]  # group DN: (name, member DNs)
    ous: dict[str, str]  # OU DN: name
    disabled: frozenset[str] = frozenset()  # usernames of people the directory disabled
    principals: dict[str, Principal] = field(init=False)

    def __post_init__(self) -> None:
        found = {dn: Principal("group", dn, name) for dn, (name, _) in self.groups.items()}
        found |= {dn: Principal("ou", dn, name) for dn, name in self.ous.items()}
        object.__setattr__(self, "principals", found)

    def gone(self, username: str) -> str:
        """Why someone a group or an OU held is in none now, when it is not their group's
        doing: disabled, or no longer in the directory at all ("" otherwise)."""
        if username in self.disabled:
            return "disabled in the directory"
        if username not in self._usernames:
            return "no longer in the directory"
        return ""

    @cached_property
    def _usernames(self) -> frozenset[str]:
        return frozenset(username for username, _ in self.people.values())

    def expand(self, dn: str, *, subtree: bool = True) -> dict[str, str]:
        """The people a group or an OU stands for: username to the reason they are in.
        A nested group's people say through which group; a loop of groups ends; an OU
        holds the people of the OUs under it too unless not `subtree`."""
        principal = self.principals.get(normal_dn(dn))
        if principal is None:
            return {}
        if principal.kind == "ou":
            suffix = "," + principal.dn
            return {
                username: f"in {principal.label}"
                for person, (username, _) in self.people.items()
                if person.endswith(suffix) and (subtree or person.partition(",")[2] == principal.dn)
            }
        found: dict[str, str] = {}
        for person, trail in self._walk(principal.dn, ()):
            reason = f"member of {principal.name}"
            if trail:
                reason += " via " + " via ".join(trail)
            found.setdefault(self.people[person][0], reason)
        return found

    def _walk(self, group: str, trail: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, ...]]]:
        """Each person in a group, depth first, with the nested groups passed through."""
        seen = {group}
        queue = [(group, trail)]
        while queue:
            current, path = queue.pop(0)
            for member in self.groups[current][1]:
                if member in self.people:
                    yield member, path
                elif member in self.groups and member not in seen:
                    seen.add(member)
                    queue.append((member, (*path, self.groups[member][0])))


def _entries(connection: Connection, base: str, query: str, attributes: list[str]) -> Any:
    return connection.extend.standard.paged_search(
        base, query, search_scope=SUBTREE, attributes=attributes, paged_size=PAGE, generator=True
    )


def _first(attributes: dict[str, Any], name: str) -> str:
    value = attributes.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "")


@contextmanager
def _connected() -> Iterator[Connection]:
    """A read-only connection to the configured directory, bound as its account."""
    try:
        server = Server(settings.DIRECTORY_URL, connect_timeout=TIMEOUT_SECONDS)
        with Connection(
            server,
            settings.DIRECTORY_BIND_DN or None,
            settings.DIRECTORY_BIND_PASSWORD or None,
            auto_bind=True,
            receive_timeout=TIMEOUT_SECONDS,
            read_only=True,
        ) as connection:
            yield connection
    except LDAPException as exc:
        raise DirectoryUnavailable(f"The directory could not be read: {exc}") from exc


def find(text: str, *, limit: int = 20) -> list[Principal]:
    """Groups and OUs whose name contains `text` (any letter case), by name: one search
    of the directory, not a read of all of it (the people pickers ask as people type)."""
    wanted = escape_filter_chars(text.strip())
    if not wanted:
        return []
    query = (
        f"(|(&(objectClass={settings.DIRECTORY_GROUP_CLASS})(cn=*{wanted}*))"
        f"(&(objectClass=organizationalUnit)(ou=*{wanted}*)))"
    )
    found: list[Principal] = []
    with _connected() as connection:
        connection.search(
            settings.DIRECTORY_BASE,
            query,
            search_scope=SUBTREE,
            attributes=["cn", "ou", "objectClass"],
            size_limit=limit * 5,
        )
        for entry in connection.response or []:
            if entry.get("type") != "searchResEntry":
                continue
            found_in = entry["attributes"]
            classes = {str(c).lower() for c in found_in.get("objectClass") or []}
            if "organizationalunit" in classes:
                found.append(Principal("ou", normal_dn(entry["dn"]), _first(found_in, "ou")))
            else:
                found.append(Principal("group", normal_dn(entry["dn"]), _first(found_in, "cn")))
    return sorted(found, key=lambda p: (p.name.lower(), p.kind))[:limit]


def read() -> Snapshot:
    """The whole directory under DIRECTORY_BASE, as configured (DIRECTORY_*)."""
    user, name = settings.DIRECTORY_USER_ATTRIBUTE, settings.DIRECTORY_NAME_ATTRIBUTE
    people: dict[str, tuple[str, str]] = {}
    groups: dict[str, tuple[str, tuple[str, ...]]] = {}
    ous: dict[str, str] = {}
    disabled: set[str] = set()
    with _connected() as connection:
        base = settings.DIRECTORY_BASE
        everyone = people_filter()
        if settings.DIRECTORY_DISABLED_FILTER:
            off = f"(&{everyone}{settings.DIRECTORY_DISABLED_FILTER})"
            for entry in _entries(connection, base, off, [user]):
                if entry.get("type") == "searchResEntry":
                    disabled.add(_first(entry["attributes"], user).lower())
        for entry in _entries(connection, base, everyone, [user, name, "cn"]):
            if entry.get("type") != "searchResEntry":
                continue
            found = entry["attributes"]
            username = _first(found, user).lower()
            if username and username not in disabled:
                shown = _first(found, name) or _first(found, "cn") or username
                people[normal_dn(entry["dn"])] = (username, shown)
        group_class = f"(objectClass={settings.DIRECTORY_GROUP_CLASS})"
        for entry in _entries(connection, base, group_class, ["cn", "member"]):
            if entry.get("type") != "searchResEntry":
                continue
            found = entry["attributes"]
            members = tuple(normal_dn(m) for m in found.get("member") or [])
            groups[normal_dn(entry["dn"])] = (_first(found, "cn"), members)
        for entry in _entries(connection, base, "(objectClass=organizationalUnit)", ["ou"]):
            if entry.get("type") == "searchResEntry":
                ous[normal_dn(entry["dn"])] = _first(entry["attributes"], "ou")
    return Snapshot(people, groups, ous, frozenset(disabled))
