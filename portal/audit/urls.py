from django.urls import path, re_path

from portal.audit import views

app_name = "audit"
urlpatterns = [
    path("", views.audit_list, name="list"),
    path("<int:pk>/", views.audit_detail, name="entry"),
    re_path(r"^export\.(?P<fmt>csv|jsonl)$", views.audit_export, name="export"),
    path("verify/", views.audit_verify, name="verify"),
]
