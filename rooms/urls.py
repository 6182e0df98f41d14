from django.urls import path

from rooms import views

app_name = "rooms"
urlpatterns = [
    path("categories/", views.category_list, name="categories"),
]
