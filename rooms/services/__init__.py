"""Changes, one module per area: each service checks permission, writes one audit entry
whatever the outcome, and carries the change out on the chat server. None knows HTTP."""
