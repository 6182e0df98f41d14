"""What the portal runs inside the homeserver: its rules (`policy`, plain Python) and the
Synapse module that enforces them (`module`). Nothing here imports Django or the rest of
the portal, so the homeserver loads it with only Synapse beside it."""
