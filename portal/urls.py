"""One URL prefix per area: the same word names its views, services, selectors, templates
and tests (docs/architecture.md, "Where things live")."""

from django.urls import include, path

from portal import views
from portal.api import api

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("health", views.health, name="health"),
    path("health/ready", views.health, name="ready"),
    path("health/live", views.live, name="live"),
    path("metrics", views.metrics, name="metrics"),
    path("audit/", include("portal.audit.urls")),
    path("accounts/", include("accounts.urls")),
    path("rooms/", include("rooms.urls.rooms")),
    path("rooms/<str:room_id>/roles/", include("rooms.urls.roles")),
    path("requests/", include("rooms.urls.requests")),
    path("categories/", include("rooms.urls.categories")),
    path("addins/", include("rooms.urls.addins")),
    path("moderation/", include("rooms.urls.moderation")),
    path("operations/", include("rooms.urls.operations")),
    path("people/", include("rooms.urls.people")),
    path("api/v1/", api.urls),
]

handler400 = "portal.views.bad_request"
handler403 = "portal.views.permission_denied"
handler404 = "portal.views.page_not_found"
handler500 = "portal.views.server_error"
