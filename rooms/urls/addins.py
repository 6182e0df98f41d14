from django.urls import path

from rooms.views import addins

app_name = "addins"
urlpatterns = [
    path("", addins.addin_list, name="list"),
    path("<int:pk>/remove/", addins.addin_remove, name="remove"),
    path("attach/<str:room_id>/", addins.addin_attach, name="attach"),
    path("detach/<str:room_id>/", addins.addin_detach, name="detach"),
]
