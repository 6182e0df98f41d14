from django.urls import path

from rooms.views import operations

app_name = "operations"
urlpatterns = [
    path("", operations.operation_list, name="list"),
    path("breaches/", operations.breach_list, name="breaches"),
    path("<uuid:pk>/retry/", operations.operation_retry, name="retry"),
    path("<uuid:pk>/undo/", operations.operation_undo, name="undo"),
]
