from django.urls import path

from rooms.views import categories

app_name = "categories"
urlpatterns = [
    path("", categories.category_list, name="list"),
    path("manage/", categories.category_manage, name="manage"),
    path("new/", categories.category_new, name="new"),
    path("adopt/", categories.category_adopt, name="adopt"),
    path("<str:category_id>/", categories.category_detail, name="detail"),
    path("<str:category_id>/people/", categories.category_people, name="people"),
    path("<str:category_id>/scope/", categories.category_scope, name="scope"),
    path("<str:category_id>/creators/", categories.category_creators, name="creators"),
    path("<str:category_id>/directory/", categories.category_directory, name="directory"),
    path(
        "<str:category_id>/directory/add/",
        categories.category_directory_add,
        name="directory_add",
    ),
    path(
        "<str:category_id>/directory/remove/",
        categories.category_directory_remove,
        name="directory_remove",
    ),
    path("<str:category_id>/options/", categories.category_options, name="options"),
    path(
        "<str:category_id>/options/<uuid:pk>/",
        categories.category_options_progress,
        name="options_progress",
    ),
    path("<str:category_id>/delete/", categories.category_delete, name="delete"),
]
