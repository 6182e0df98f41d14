from django.urls import path

from rooms.views import category_admin

app_name = "category_admin"
urlpatterns = [
    path("", category_admin.category_list, name="list"),
    path("new/", category_admin.category_new, name="new"),
    path("<str:category_id>/", category_admin.category_detail, name="detail"),
    path("<str:category_id>/people/", category_admin.category_people, name="people"),
    path("<str:category_id>/scope/", category_admin.category_scope, name="scope"),
    path("<str:category_id>/creators/", category_admin.category_creators, name="creators"),
    path("<str:category_id>/delete/", category_admin.category_delete, name="delete"),
]
