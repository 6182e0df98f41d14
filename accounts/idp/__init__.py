"""The demo's and the tests' identity provider: `provider.mjs` (OpenID Connect, the
`oidc-provider` package from the npm registry), run with Node.js for as long as a block
runs. `make run SSO=1` starts it with the demo people; the SSO tests start their own.

Its packages are installed by `make idp` (`npm ci` here, into node_modules).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from portal.secrets import write_private
from rooms.backend.embedded import SingleSignOn, child_process, free_port

HERE = Path(__file__).resolve().parent
START_TIMEOUT_SECONDS = 30.0
PEOPLE_FILE = "people.json"  # in the provider's folder: write_people() changes it


class IdentityProviderError(RuntimeError):
    """The identity provider could not be started."""


@dataclass(frozen=True)
class Person:
    """Someone the provider signs in: a username (their chat localpart), a password and
    the groups its `groups` claim carries."""

    username: str
    name: str
    password: str
    groups: tuple[str, ...] = ()


def write_people(listing: Path, people: Sequence[Person]) -> None:
    """The people the provider signs in; it reads them at every sign-in."""
    entries = [
        {"id": p.username, "name": p.name, "password": p.password, "groups": list(p.groups)}
        for p in people
    ]
    write_private(listing, json.dumps({"people": entries}))


@contextlib.contextmanager
def identity_provider(
    directory: Path,
    people: Sequence[Person],
    *,
    homeserver_url: str,
    portal_url: str,
    port: int | None = None,
) -> Iterator[SingleSignOn]:
    """The provider, running, with these people; what the homeserver's configuration
    needs of it (pass it to EmbeddedSynapse(sso=…))."""
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "oidc-provider").is_dir():
        raise IdentityProviderError(
            "The identity provider needs Node.js and its packages: run `make idp`."
        )
    directory.mkdir(parents=True, exist_ok=True)
    listing = directory / PEOPLE_FILE
    write_people(listing, people)
    port = port or free_port()
    secret = secrets.token_urlsafe(32)
    env = os.environ | {
        "IDP_PORT": str(port),
        "IDP_PEOPLE": str(listing),
        "IDP_CLIENT_SECRET": secret,
        "IDP_REDIRECT": f"{homeserver_url}/_synapse/client/oidc/callback",
    }
    issuer = f"http://127.0.0.1:{port}"
    discovery = f"{issuer}/.well-known/openid-configuration"
    with child_process([node, str(HERE / "provider.mjs")], cwd=HERE, env=env) as process:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                raise IdentityProviderError(f"The identity provider exited ({process.returncode}).")
            try:
                httpx.get(discovery, timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise IdentityProviderError("The identity provider did not start.") from None
                time.sleep(0.2)
        yield SingleSignOn(issuer=issuer, client_secret=secret, portal_url=portal_url)
