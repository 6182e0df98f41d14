"""Names that cannot deceive (rooms.chatserver.text): look-alikes are one name; direction
controls, hidden characters and stacked marks are refused, saying which."""

from __future__ import annotations

import pytest

from rooms.chatserver.text import description_problem, name_problem, unique_key

BASE = "PA Lookalike"


@pytest.mark.parametrize(
    "look_alike",
    [
        "pa lookalike",  # letter case
        " PA Lookalike ",  # surrounding spaces
        "PA Look\u200dalike",  # a zero-width joiner inside
        "PA Look\u200calike",  # a zero-width non-joiner inside
        "\u0420\u0410 Lookalike",  # Cyrillic Er and A
        "PA LookaIike",  # capital i for small L
        "\uff30\uff21 Lookalike",  # fullwidth letters
        "PA Lookalike\ufe0f",  # a variation selector
    ],
)
def test_look_alikes_share_one_key(look_alike):
    assert unique_key(look_alike) == unique_key(BASE)


@pytest.mark.parametrize("different", ["PA Lookalikes", "PB Lookalike", "PA Lookálike"])
def test_different_names_keep_different_keys(different):
    assert unique_key(different) != unique_key(BASE)


def test_decomposed_and_composed_accents_are_one_name():
    assert unique_key("Cafe\u0301") == unique_key("Caf\u00e9")


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("PA \u202egnp.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("PA \u2067x\u2069", "U+2067 RIGHT-TO-LEFT ISOLATE"),
        ("Left\u200emark", "U+200E LEFT-TO-RIGHT MARK"),
        ("PA Look\u200balike", "U+200B ZERO WIDTH SPACE"),
        ("Soft\u00adhyphen", "U+00AD SOFT HYPHEN"),
        ("Word\u2060joiner", "U+2060 WORD JOINER"),
        ("Private\ue000use", "U+E000"),
        ("Line\u2028separator", "U+2028 LINE SEPARATOR"),
        ("e" + "\u0301" * 256, "more than 4 accents or marks"),
    ],
)
def test_deceiving_names_are_refused_saying_which_character(name, said):
    assert said in name_problem(name)


@pytest.mark.parametrize(
    "name",
    [
        "Tiếng Việt",  # two marks on a letter
        "گفت\u200cوگو",  # Persian's zero-width non-joiner
        "שלום עולם",  # right to left, without controls
        "Family 👨\u200d👩\u200d👧",  # an emoji sequence
        "日本語のルーム",
    ],
)
def test_names_of_real_scripts_pass(name):
    assert name_problem(name) == ""


def test_a_description_may_have_lines_but_not_stacked_marks_or_direction_controls():
    assert description_problem("First line\nSecond line") == ""
    assert "accents or marks" in description_problem("e" + "\u0301" * 256)
    assert "U+202E" in description_problem("Read \u202eme")


def test_a_very_long_skeleton_is_kept_as_its_digest():
    key = unique_key("\u33af" * 256)  # each expands to several letters
    assert len(key) <= 512
    assert key == unique_key("\u33af" * 256)
