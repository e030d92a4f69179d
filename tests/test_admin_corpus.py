"""The editorial admin over the real news-ai corpus: its long lists, odd text and long URLs."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.test import Client
from django.urls import reverse

from articles.models import Article, Cluster

from .editorial_factories import editor

pytestmark = [pytest.mark.django_db, pytest.mark.corpus]


@pytest.fixture
def desk(corpus):
    call_command(
        "load_seeds",
        str(corpus / "news-ai"),
        str(corpus / "topics"),
        str(corpus / "organizations"),
        stdout=StringIO(),
        stderr=StringIO(),
    )
    client = Client()
    client.force_login(editor())
    return client


def test_queue_and_search_over_the_corpus(desk, django_assert_max_num_queries):
    changelist = reverse("admin:articles_article_changelist")
    with django_assert_max_num_queries(16):
        queue = desk.get(changelist)
    assert queue.context["cl"].result_count == Article.objects.awaiting_review().count()
    for query in ["?status=all", "?status=related&q=tesla", "?status=all&q=techcrunch.com"]:
        response = desk.get(changelist + query)
        assert response.status_code == 200, query
        assert response.context["cl"].result_count > 0, query


def test_busiest_story_and_cluster_pages_render_without_secrets(desk):
    stories = Article.objects.annotate(n=Count("listings")).order_by("-n", "pk")[:15]
    for article in stories:
        response = desk.get(reverse("admin:articles_article_change", args=[article.pk]))
        assert response.status_code == 200, article.source_key
        if article.secured:
            assert article.secured not in response.content.decode(), article.source_key
    for cluster in Cluster.objects.order_by("-story_count")[:5]:
        response = desk.get(reverse("admin:articles_cluster_change", args=[cluster.pk]))
        assert response.status_code == 200, cluster.slug
