"""Discovery for crawlers: the sitemap sections behind ``/sitemap.xml`` and ``/robots.txt``.

Only public content is listed: topics with a public cluster, public clusters, and
outlets with a story that has a public home.
"""

from django.contrib.sitemaps import Sitemap
from django.db.models import Max
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from .feeds import providers_with_stories
from .models import Cluster, Topic


class ClusterSitemap(Sitemap):
    changefreq = "hourly"
    limit = 10_000

    def items(self):
        return Cluster.objects.public().only("slug", "updated_at").order_by("pk")

    def lastmod(self, cluster):
        return cluster.updated_at


class NewestChangeSitemap(Sitemap):
    """Items annotated with ``newest``: the newest change among their public content."""

    changefreq = "hourly"

    def lastmod(self, item):
        return max(filter(None, [item.updated_at, item.newest]))


class TopicSitemap(NewestChangeSitemap):
    def items(self):
        return (
            Topic.objects.annotate(newest=Max("clustertopic__cluster__updated_at"))
            .filter(newest__isnull=False)
            .order_by("slug")
        )


class ProviderSitemap(NewestChangeSitemap):
    changefreq = "daily"

    def items(self):
        return (
            providers_with_stories().annotate(newest=Max("articles__updated_at")).order_by("domain")
        )


SITEMAPS = {"topics": TopicSitemap, "clusters": ClusterSitemap, "providers": ProviderSitemap}


@require_safe
@cache_control(public=True, max_age=3600)
def robots(request):
    sitemap = request.build_absolute_uri(reverse("articles:sitemap"))
    return render(
        request, "feeds/robots.txt", {"sitemap": sitemap}, content_type="text/plain; charset=utf-8"
    )
