"""The state folder is its owner's alone: the embedded homeserver's secrets, the
portal's keys, and the check that reports anything looser."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from portal.checks import state_files_check
from portal.secrets import local_secret, loose_modes, tighten
from tests.conftest import ROOT


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_embedded_homeserver_keeps_its_secrets_to_its_owner(synapse, synapse_server):
    folder = synapse_server.directory
    assert mode(folder) == 0o700
    for name in ("homeserver.yaml", "homeserver.db", "secrets.json", "connection.json"):
        assert mode(folder / name) == 0o600, name
    assert loose_modes(folder) == []


def test_a_local_secret_is_made_once_and_private(tmp_path):
    path = tmp_path / "state" / "secret_key"
    first = local_secret(path)
    assert local_secret(path) == first
    assert len(first) >= 50
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_the_check_reports_a_readable_state_folder_and_tighten_mends_it(tmp_path, settings):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "homeserver.yaml").write_text("registration_shared_secret: x")
    (state / "homeserver.yaml").chmod(0o644)
    settings.STATE_DIR = state
    [problem] = state_files_check()
    assert problem.id == "portal.E006"
    assert "homeserver.yaml" in problem.msg
    tighten(state)
    assert state_files_check() == []
    assert mode(state / "homeserver.yaml") == 0o600


def test_a_fresh_portal_creates_its_database_and_keys_owner_only(tmp_path):
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "DATABASE_"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env | {"PORTAL_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert mode(state) == 0o700
    for name in ("portal.sqlite3", "secret_key", "audit_chain_key"):
        assert mode(state / name) == 0o600, name
