"""One person's standing, and removing them from rooms and scopes, under /people/."""

from django.urls import path

from rooms.views import people

app_name = "people"
urlpatterns = [
    path("", people.person_find, name="find"),
    path("<str:user_id>/", people.person_detail, name="detail"),
    path("<str:user_id>/remove/", people.person_remove, name="remove"),
    path("<str:user_id>/sessions/end/", people.sessions_end, name="end_sessions"),
    path("<str:user_id>/removals/<uuid:pk>/", people.removal_detail, name="removal"),
]
