from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django import template

register = template.Library()


@register.filter
def sorted_people(people: Iterable[str]) -> list[str]:
    """Chat IDs in a stable, readable order."""
    return sorted(people, key=str.casefold)


@register.filter
def lookup(mapping: Mapping[str, Any], key: str) -> Any:
    """A mapping's value for a key the template holds in a variable (None when absent)."""
    return mapping.get(key)
