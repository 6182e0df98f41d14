"""The index: the portal's own copy of its categories and rooms.

Pages read the index, never the chat server; the chat server stays the source of truth.
Two things keep the index true:

- every change the portal makes: `chat_backend()` is the chat client with the index in
  front of it, and writes the server's confirmed state into the index as soon as a change
  is made (the person sees their change at once);
- the sync worker (rooms.sync), which follows the homeserver's event stream and applies
  what changed elsewhere (a chat client, another admin tool) through `refresh`.

Its parts: `records` (reading rows into records, at once or to be shown), `writes` (what
the server confirmed, put into the index; names claimed during a creation), `changes`
(a room or space read from the server as the portal's record, and told as a before
and after) and `backend`
(the chat client with the index in front). What callers use is named here.
"""

from rooms.index.backend import IndexedChatBackend, chat_backend
from rooms.index.changes import Change, apply, describe, held, refresh
from rooms.index.records import (
    NamesWhenAsked,
    PeopleWhenAsked,
    add_in_room_counts,
    categories,
    category,
    category_ids_in_scope,
    category_ids_with_create_rights,
    category_names,
    category_to_show,
    name_taken,
    room,
    room_to_show,
    rooms,
    rooms_with_add_in,
    rooms_with_other_options,
)
from rooms.index.writes import (
    CLAIM_STALE,
    claim_name,
    drop,
    give_back_stale_claims,
    put_category,
    put_room,
    release_claim,
    remember_names,
)

__all__ = [
    "CLAIM_STALE",
    "Change",
    "IndexedChatBackend",
    "NamesWhenAsked",
    "PeopleWhenAsked",
    "add_in_room_counts",
    "apply",
    "categories",
    "category",
    "category_ids_in_scope",
    "category_ids_with_create_rights",
    "category_names",
    "category_to_show",
    "chat_backend",
    "claim_name",
    "describe",
    "drop",
    "give_back_stale_claims",
    "held",
    "name_taken",
    "put_category",
    "put_room",
    "refresh",
    "release_claim",
    "remember_names",
    "room",
    "room_to_show",
    "rooms",
    "rooms_with_add_in",
    "rooms_with_other_options",
]
