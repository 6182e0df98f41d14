from django.urls import path

from rooms.views import categories, manage, roles, rooms

app_name = "rooms"
urlpatterns = [
    path("", rooms.room_list, name="list"),
    path("new/", rooms.room_create, name="create"),
    path("find/", rooms.room_find, name="find"),
    path("check-name/", rooms.room_check_name, name="check_name"),
    path("categories/", categories.category_list, name="categories"),
    path("<str:room_id>/", rooms.room_detail, name="detail"),
    path("<str:room_id>/join/", rooms.room_join, name="join"),
    path("<str:room_id>/edit/", manage.room_edit, name="edit"),
    path("<str:room_id>/privacy/", manage.room_privacy, name="privacy"),
    path("<str:room_id>/disable/", manage.room_disable, name="disable"),
    path("<str:room_id>/move/", manage.room_move, name="move"),
    path("<str:room_id>/delete/", manage.room_delete, name="delete"),
    path("<str:room_id>/roles/", roles.roles_panel, name="roles"),
    path("<str:room_id>/roles/people/", roles.people_picker, name="people"),
    path("<str:room_id>/roles/add/", roles.role_add, name="role_add"),
    path("<str:room_id>/roles/remove/", roles.role_remove, name="role_remove"),
    path("<str:room_id>/roles/bulk/", roles.role_bulk, name="bulk"),
    path("<str:room_id>/roles/bulk/<int:run_id>/", roles.bulk_run, name="bulk_run"),
    path("<str:room_id>/explain/", roles.room_explain, name="explain"),
]
