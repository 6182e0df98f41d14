"""Reads for the person asking, one module per area, from the index (people from the chat
server, which holds them). They know nothing of HTTP: what the person may not see is
`NotFound` (`Hidden` when it is there), which the web layer answers with 404."""

from django.core.exceptions import ObjectDoesNotExist


class NotFound(ObjectDoesNotExist):
    """Nothing this person may see has that ID. A hidden thing is answered exactly like a
    missing one, so Secret rooms are not revealed."""


class Hidden(NotFound):
    """It exists, and this person may not see it: answered exactly like `NotFound`, and
    recorded as a refusal, reads too (someone asked for what is not theirs)."""
