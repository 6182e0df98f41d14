from django.urls import path

from rooms.views import categories, manage, rooms

app_name = "rooms"
urlpatterns = [
    path("", rooms.room_list, name="list"),
    path("new/", rooms.room_create, name="create"),
    path("check-name/", rooms.room_check_name, name="check_name"),
    path("categories/", categories.category_list, name="categories"),
    path("<str:room_id>/", rooms.room_detail, name="detail"),
    path("<str:room_id>/edit/", manage.room_edit, name="edit"),
    path("<str:room_id>/privacy/", manage.room_privacy, name="privacy"),
    path("<str:room_id>/disable/", manage.room_disable, name="disable"),
    path("<str:room_id>/move/", manage.room_move, name="move"),
    path("<str:room_id>/delete/", manage.room_delete, name="delete"),
]
