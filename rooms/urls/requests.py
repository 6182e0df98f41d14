from django.urls import path

from rooms.views import requests

app_name = "requests"
urlpatterns = [
    path("", requests.request_list, name="list"),
    path("new/", requests.request_new, name="new"),
    path("queue/", requests.approval_queue, name="queue"),
    path("<int:pk>/", requests.request_detail, name="detail"),
    path("<int:pk>/edit/", requests.request_edit, name="edit"),
    path("<int:pk>/cancel/", requests.request_cancel, name="cancel"),
    path("<int:pk>/approve/", requests.request_approve, name="approve"),
    path("<int:pk>/decline/", requests.request_decline, name="decline"),
    path("<int:pk>/retry/", requests.request_retry, name="retry"),
]
