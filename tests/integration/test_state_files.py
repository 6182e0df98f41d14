"""The state folder is its owner's alone: the embedded homeserver's secrets, the
portal's keys, and the check that reports anything looser."""

from __future__ import annotations

import stat
from pathlib import Path

from portal.checks import state_files_check
from portal.secrets import local_secret, loose_modes, tighten


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
