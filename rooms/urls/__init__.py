"""URLs, one module per area, included by `portal.urls` under the area's prefix."""
