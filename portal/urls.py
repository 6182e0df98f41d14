from django.urls import include, path

from portal import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("health", views.health, name="health"),
    path("accounts/", include("accounts.urls")),
    path("rooms/", include("rooms.urls")),
    path("requests/", include("rooms.request_urls")),
]
