"""Secrets the portal keeps on its own machine, and the file modes that protect them.

Everything under the state folder is for the portal's owner only: the folder is 0700 and
each secret-bearing file 0600. `manage.py check` reports anything looser.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create the folder (and its parents) if missing; make it readable by its owner only."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(PRIVATE_DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file that no one but its owner can read, from its very first byte."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(PRIVATE_FILE_MODE)  # an existing file keeps its mode through O_CREAT


def private_file(path: Path) -> Path:
    """Make sure a file exists that only its owner can read (a SQLite database, before the
    database library creates it with the process's default mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    return path


def local_secret(path: Path) -> str:
    """A random secret kept in a private file: made on first use, the same ever after."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = secrets.token_urlsafe(50)
        write_private(path, value)
        return value


def tighten(folder: Path) -> None:
    """Take every right of group and others off the folder and everything in it."""
    if not folder.exists():
        return
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o077)


def owner_only_umask() -> None:
    """For a child process that writes secrets (the embedded homeserver): its new files
    and folders are its owner's alone. Safe to call between fork and exec."""
    os.umask(0o077)


def parse_keys(text: str) -> dict[str, str]:
    """Keys named by ID, from "id:key,id:key"; the first is the current one."""
    keys = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key_id, _, key = item.partition(":")
        if not key_id or len(key) < 32:
            raise ValueError("Each chain key is ID:KEY with a key of 32 characters or more.")
        keys[key_id] = key
    return keys


def loose_modes(folder: Path) -> list[str]:
    """Paths under the folder (and the folder) that someone other than the owner can read."""
    if not folder.exists():
        return []
    found = []
    if folder.stat().st_mode & 0o077:
        found.append(f"{folder} (mode {stat.S_IMODE(folder.stat().st_mode):o})")
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(root) / name
            if path.is_symlink():
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                found.append(f"{path} (mode {mode:o})")
    return found
