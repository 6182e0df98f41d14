"""The roles of one room, under /rooms/<room>/roles/."""

from django.urls import path

from rooms.views import roles

app_name = "roles"
urlpatterns = [
    path("", roles.roles_panel, name="panel"),
    path("people/", roles.people_picker, name="people"),
    path("add/", roles.role_add, name="add"),
    path("remove/", roles.role_remove, name="remove"),
    path("decide/", roles.join_decide, name="decide"),
    path("bulk/", roles.role_bulk, name="bulk"),
    path("bulk/<uuid:run_id>/", roles.bulk_run, name="bulk_run"),
    path("explain/", roles.room_explain, name="explain"),
    path("directory/", roles.directory_find, name="directory"),
    path("directory/add/", roles.directory_add, name="directory_add"),
    path("directory/remove/", roles.directory_remove, name="directory_remove"),
]
