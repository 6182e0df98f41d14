from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

urlpatterns = [
    path("login/", views.PortalLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sso/return/", views.sso_return, name="sso_return"),
    path("sso/failed/", views.sso_failed, name="sso_failed"),
    path("sso/<str:provider_id>/", views.sso_start, name="sso_start"),
    path("tokens/", views.token_list, name="tokens"),
    path("tokens/all/", views.token_all, name="token_all"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
]
