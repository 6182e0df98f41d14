from __future__ import annotations

import pytest

from rooms.backend.records import is_chat_id


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("@alice:example.org", True),
        ("@a.b_c=d-e/f+g:chat.example.org:8448", True),
        ("@Alice:example.org", False),  # localparts are lower case
        ("alice", False),
        ("@alice", False),
        ("@not an id:example.org", False),
        ("@" + "a" * 250 + ":example.org", False),  # over 255 characters
    ],
)
def test_chat_ids(value, valid):
    assert is_chat_id(value) is valid
