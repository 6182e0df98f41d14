"""Names that cannot deceive: what a room name (or description) may hold, and when two
names are the same one.

A name is refused when it holds a character that changes how the text around it is
drawn (the bidirectional controls: "PA ‮gnp.exe" shows as "PA exe.png"), an invisible
or control character (a zero-width space makes a second "PA Lookalike"), or more
combining marks on one letter than any script needs (they draw through the lines
around them). Two names are the same when their keys are: letter case, Unicode
normalisation, invisible joiners and look-alike letters (the UTS #39 confusables:
Cyrillic "\u0430" is Latin "a", "rn" is "m", capital "I" is small "l") aside.

Plain Python only: the homeserver's module imports this with nothing of the portal.
"""

from __future__ import annotations

import hashlib
import unicodedata
from functools import cache
from pathlib import Path

# More combining marks on one letter than this are refused (Vietnamese stacks two,
# Hebrew and Thai up to four).
MARKS_PER_LETTER = 4
# Joiners that scripts need (Persian's zero-width non-joiner, emoji sequences): allowed,
# and left out of the key.
JOINERS = frozenset("\u200c\u200d")
# Characters that reorder the text around them.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Invisible, control, private-use, unassigned and surrogate code points; separators of
# lines and paragraphs.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})
_CONFUSABLES = Path(__file__).with_name("confusables.txt")


def _described(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed character')}"


def text_problem(text: str, *, what: str, one_line: bool) -> str:
    """What makes the text deceive, or "": a direction control, a hidden character
    (line breaks too where it is `one_line`), too many marks on one letter."""
    marks = 0
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if char in BIDI_CONTROLS:
            return (
                f"The {what} holds a character that reverses how text is shown "
                f"({_described(char)}): remove it."
            )
        if char in "\n\r\t" and not one_line:
            marks = 0
            continue
        if category in HIDDEN_CATEGORIES and char not in JOINERS:
            return (
                f"The {what} holds an invisible or control character ({_described(char)}): "
                "remove it."
            )
        marks = marks + 1 if category in ("Mn", "Me") else 0
        if marks > MARKS_PER_LETTER:
            return (
                f"The {what} stacks more than {MARKS_PER_LETTER} accents or marks on one "
                "letter: remove some."
            )
    return ""


def name_problem(name: str) -> str:
    """What is wrong with a room name's characters, or "" (its length and whether it
    is taken are checked apart)."""
    return text_problem(name, what="name", one_line=True)


def description_problem(description: str) -> str:
    return text_problem(description, what="description", one_line=False)


def clean(text: str) -> str:
    """The text as it is kept: Unicode NFC, without surrounding spaces."""
    return unicodedata.normalize("NFC", text).strip()


@cache
def _prototypes() -> dict[str, str]:
    table = {}
    for line in _CONFUSABLES.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            source, target = (part.strip() for part in line.split(";"))
            table[chr(int(source, 16))] = "".join(chr(int(c, 16)) for c in target.split())
    return table


def _ignorable(char: str) -> bool:
    code = ord(char)
    return (
        unicodedata.category(char) == "Cf"
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0xE0100 <= code <= 0xE01EF
        or char in "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u3164\uffa0"
    )


def skeleton(text: str) -> str:
    """The UTS #39 skeleton: NFD, default-ignorable characters left out, each character
    replaced by its prototype, NFD again. Equal skeletons look alike."""
    table = _prototypes()
    mapped = "".join(
        table.get(c, c) for c in unicodedata.normalize("NFD", text) if not _ignorable(c)
    )
    return unicodedata.normalize("NFD", mapped)


def unique_key(name: str) -> str:
    """What makes two room names the same: surrounding spaces, letter case, Unicode
    normalisation, invisible joiners and look-alike letters aside. A skeleton can be
    longer than its name: past 512 characters it is kept as its digest."""
    key = skeleton(skeleton(unicodedata.normalize("NFKC", name.strip())).casefold())
    return key if len(key) <= 512 else "#" + hashlib.sha256(key.encode()).hexdigest()
