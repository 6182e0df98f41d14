from django.urls import path

from rooms.views import moderation

app_name = "moderation"
urlpatterns = [
    path("reports/", moderation.reports, name="reports"),
    path("export/", moderation.export_many, name="export_many"),
    path("remove/", moderation.sweep, name="sweep"),
    path("removals/<uuid:pk>/", moderation.sweep_progress, name="sweep_progress"),
    path("reports/<int:report_id>/", moderation.report_decide, name="decide"),
    path("rooms/<str:room_id>/history/", moderation.history, name="history"),
    path("rooms/<str:room_id>/clear/", moderation.clear_history, name="clear"),
    path("rooms/<str:room_id>/export/", moderation.export, name="export"),
    path("rooms/<str:room_id>/remove/", moderation.remove_messages, name="remove"),
]
