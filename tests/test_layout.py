"""The layout holds: one word per area from URL to test, reads and changes that know
nothing of HTTP, no import cycles between the portal's modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent
AREAS = {  # area: a URL of it, and its home in each layer
    "rooms": ("rooms:list", {}),
    "roles": ("roles:panel", {"room_id": "!r:portal.test"}),
    "requests": ("requests:list", {}),
    "categories": ("categories:list", {}),
    "people": ("people:find", {}),
    "addins": ("addins:list", {}),
    "moderation": ("moderation:clear", {"room_id": "!r:portal.test"}),
}
LAYERS = ("views", "services", "selectors", "forms", "urls")


@pytest.mark.parametrize("area", AREAS)
def test_one_word_names_an_area_in_every_layer(area):
    name, kwargs = AREAS[area]
    url = reverse(name, kwargs=kwargs)
    assert f"/{area}/" in url
    for layer in LAYERS:
        assert (ROOT / "rooms" / layer / f"{area}.py").is_file(), (layer, area)
    assert (ROOT / "templates" / area).is_dir()
    assert (ROOT / "tests" / area).is_dir()


def test_the_audit_area_is_one_folder():
    assert reverse("audit:list") == "/audit/"
    for part in ("views.py", "urls.py", "filters.py", "chain.py"):
        assert (ROOT / "portal" / "audit" / part).is_file()
    assert (ROOT / "templates" / "audit").is_dir()
    assert (ROOT / "tests" / "audit").is_dir()


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("layer", ["services", "selectors"])
def test_reads_and_changes_know_nothing_of_http(layer):
    for path in (ROOT / "rooms" / layer).glob("*.py"):
        assert not any(
            name.startswith(("django.http", "django.shortcuts", "django_htmx"))
            for name in imports(path)
        ), path


def test_no_import_cycles():
    paths = [
        p
        for package in ("portal", "rooms", "accounts")
        for p in (ROOT / package).rglob("*.py")
        if "migrations" not in p.parts
    ]
    modules = {module_name(p): p for p in paths}
    graph = {
        name: {imported for imported in imports(path) if imported in modules and imported != name}
        for name, path in modules.items()
    }
    # A package's __init__ is imported with each of its modules; that is not a cycle.
    for name in graph:
        graph[name] -= {pkg for pkg in graph if name.startswith(pkg + ".")}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for nxt in graph[name]:
            assert state.get(nxt) != 1, " → ".join([*trail, name, nxt])
            if nxt not in state:
                visit(nxt, [*trail, name])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_the_fast_layer_refuses_to_start_a_process():
    """The guard that keeps `make unit` fast: a test that starts a process must say so."""
    import subprocess

    with pytest.raises(AssertionError, match="mark it `processes`"):
        subprocess.run(["true"], check=True)
