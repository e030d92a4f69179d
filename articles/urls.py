from django.contrib.sitemaps import views as sitemap_views
from django.urls import path, re_path

from . import api, editor_views, feeds, sitemaps, views

app_name = "articles"

urlpatterns = [
    path("", views.home, name="home"),
    path("topics/", views.topic_list, name="topics"),
    path("topics/<slug:slug>/", views.topic_detail, name="topic"),
    path("stories/<slug:slug>/", views.cluster_detail, name="cluster"),
    path("providers/<str:domain>/", views.provider_detail, name="provider"),
    path("moderation/", editor_views.moderation_log, name="moderation"),
    path("preview/<int:pk>/", editor_views.preview, name="preview"),
    # Feeds, discovery and the JSON API.
    path("feeds/", feeds.feed_index, name="feeds"),
    *feeds.feed_urlpatterns(),
    path("feeds.opml", feeds.opml, name="opml"),
    path(
        "sitemap.xml",
        sitemap_views.index,
        {"sitemaps": sitemaps.SITEMAPS, "sitemap_url_name": "articles:sitemap_section"},
        name="sitemap",
    ),
    path(
        "sitemap-<section>.xml",
        sitemap_views.sitemap,
        {"sitemaps": sitemaps.SITEMAPS},
        name="sitemap_section",
    ),
    path("robots.txt", sitemaps.robots, name="robots"),
    path("api/news/page<int:page>/index.json", api.all_news, name="api_news_all"),
    path("api/news/<slug:slug>/page<int:page>/index.json", api.topic_news, name="api_news"),
    re_path(r"^api/(?P<path>.*)$", api.not_found, name="api_not_found"),
]
