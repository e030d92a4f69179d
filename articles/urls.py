from django.urls import path

from . import views

app_name = "articles"

urlpatterns = [
    path("", views.home, name="home"),
    path("topics/", views.topic_list, name="topics"),
    path("topics/<slug:slug>/", views.topic_detail, name="topic"),
    path("stories/<slug:slug>/", views.cluster_detail, name="cluster"),
    path("providers/<str:domain>/", views.provider_detail, name="provider"),
]
