from __future__ import annotations

from collections.abc import Iterable

from django import template

register = template.Library()


@register.filter
def sorted_people(people: Iterable[str]) -> list[str]:
    """Chat IDs in a stable, readable order."""
    return sorted(people, key=str.casefold)
