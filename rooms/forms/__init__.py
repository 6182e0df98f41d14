"""Every input of the rooms, roles, requests and categories areas, one module per area."""
