from django.urls import path

from rooms.views import rooms

app_name = "rooms"
urlpatterns = [
    path("", rooms.room_list, name="list"),
    path("new/", rooms.room_create, name="create"),
    path("find/", rooms.room_find, name="find"),
    path("check-name/", rooms.room_check_name, name="check_name"),
    path("<str:room_id>/", rooms.room_detail, name="detail"),
    path("<str:room_id>/join/", rooms.room_join, name="join"),
    path("<str:room_id>/ask/", rooms.room_ask, name="ask"),
    path("<str:room_id>/edit/", rooms.room_edit, name="edit"),
    path("<str:room_id>/privacy/", rooms.room_privacy, name="privacy"),
    path("<str:room_id>/disable/", rooms.room_disable, name="disable"),
    path("<str:room_id>/move/", rooms.room_move, name="move"),
    path("<str:room_id>/delete/", rooms.room_delete, name="delete"),
]
