"""The README and docs/ say what the code is: every repository path they name exists,
and every `manage.py` command and `make` target they name is there."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Paths in backticks that name the repository's own files and folders (not URL paths, the
# state folder made at run time, or a server's files).
NAMED_PATH = re.compile(
    r"`((?:portal|rooms|accounts|templates|static|tests|bench|docs)/[\w./-]*"
    r"|[\w-]+\.(?:py|toml|txt|cfg))`"
)
SKIPPED = {"node_modules", "__pycache__"}
COMMAND = re.compile(r"manage\.py ([a-z_]+)")
TARGET = re.compile(r"`make ([a-z]+)")


@functools.cache
def repository_paths() -> frozenset[str]:
    """Every file and folder of the repository (not the virtual environment, the state
    folder, installed packages or caches), relative to its root."""
    found: set[str] = set()
    for folder, folders, files in os.walk(ROOT):
        folders[:] = [f for f in folders if not f.startswith(".") and f not in SKIPPED]
        here = Path(folder).relative_to(ROOT)
        found.update((here / name).as_posix() for name in [*folders, *files])
    return frozenset(found)


def named(path: str) -> bool:
    """Whether the repository has it, at its root or, for a bare name, in any folder."""
    path = path.rstrip("/")
    return path in repository_paths() or any(p.endswith(f"/{path}") for p in repository_paths())


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_path_a_doc_names_exists(doc):
    missing = [path for path in NAMED_PATH.findall(doc.read_text()) if not named(path)]
    assert not missing, f"{doc.name} names what is not there: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_command_and_make_target_a_doc_names_exists(doc):
    text = doc.read_text()
    commands = set(get_commands())
    makefile = (ROOT / "Makefile").read_text()
    assert not {c for c in COMMAND.findall(text) if c not in commands}, doc.name
    assert not {
        t for t in TARGET.findall(text) if not re.search(rf"^{t}:", makefile, re.MULTILINE)
    }, doc.name


def test_the_architecture_sections_are_in_order():
    """§ references (README: "§1c") find their section where its number says."""
    numbers = re.findall(r"(?m)^## (\d+)([a-z]?)\. ", (ROOT / "docs/architecture.md").read_text())
    keys = [(int(number), letter) for number, letter in numbers]
    assert keys == sorted(keys), keys
