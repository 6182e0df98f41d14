from django.urls import include, path, re_path

from portal import audit_views, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("health", views.health, name="health"),
    path("health/ready", views.health, name="ready"),
    path("health/live", views.live, name="live"),
    path("metrics", views.metrics, name="metrics"),
    path("audit/", audit_views.audit_list, name="audit"),
    path("audit/<int:pk>/", audit_views.audit_detail, name="audit_entry"),
    re_path(r"^audit/export\.(?P<fmt>csv|jsonl)$", audit_views.audit_export, name="audit_export"),
    path("audit/verify/", audit_views.audit_verify, name="audit_verify"),
    path("accounts/", include("accounts.urls")),
    path("rooms/", include("rooms.urls")),
    path("requests/", include("rooms.request_urls")),
    path("admin/categories/", include("rooms.category_admin_urls")),
]

handler400 = "portal.views.bad_request"
handler403 = "portal.views.permission_denied"
handler404 = "portal.views.page_not_found"
handler500 = "portal.views.server_error"
