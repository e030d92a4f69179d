"""The reader pages over 200 clusters of 10 stories: query counts, pagination, filters."""

import datetime
import json
import re

import pytest
from django.db import connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from articles.filters import TopicClusterFilter
from articles.models import Cluster, ClusterTopic, Topic
from tests.test_pages import NOW, build_world, h1_count, headlines, page, plain_pages  # noqa: F401


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """200 clusters of 10 stories, shared by the module and rolled back after it."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


# -- Query counts and pagination over a large topic -----------------------------------------


QUERY_BUDGET = 12


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/?sort=top",
        "/?page=3&provider=event-outlet3.example&quality=90&since=2000-01-01",
        "/topics/",
        "/topics/science/",
        "/topics/space/?page=4&sort=top",
        "/stories/event-7/",
        "/providers/event-outlet0.example/",
        "/providers/event-outlet6.example/?page=2&sort=top",
    ],
)
def test_pages_run_a_fixed_number_of_queries(world, client, django_assert_max_num_queries, url):
    with django_assert_max_num_queries(QUERY_BUDGET):
        html = page(client, url)
    assert h1_count(html) == 1


@pytest.mark.django_db
def test_topic_page_lists_twenty_clusters_with_more_lines(world, client):
    html = page(client, "/topics/space/")
    titles = headlines(html)
    assert titles == [f"Event {c} as told by outlet 0" for c in range(20)]
    # Nine other stories per cluster: five outlets named, the other four counted.
    assert html.count('<span class="more-label">More:</span>') == 20
    assert 'and <a href="/stories/event-0/">4 more</a>' in html
    assert '<link rel="next" href="?page=2">' in html
    assert 'rel="prev"' not in html


@pytest.mark.django_db
def test_parent_topic_includes_child_topic_clusters_once(world, client):
    assert headlines(page(client, "/topics/science/?page=10")) == [
        f"Event {c} as told by outlet 0" for c in range(180, 200)
    ]
    last = page(client, "/topics/science/?page=10")
    assert 'rel="next"' not in last and '<link rel="prev" href="?page=9">' in last
    page(client, "/topics/science/?page=11", status=404)


@pytest.mark.django_db
def test_pagination_keeps_filters_and_a_new_filter_starts_at_page_one(world, client):
    html = page(client, "/topics/space/?sort=top&quality=95&page=2")
    assert 'href="?sort=top&amp;quality=95&amp;page=3"' in html
    assert 'href="?sort=top&amp;quality=95"' in html  # back to page 1: no page=1
    # The filter form carries no page, so applying a filter starts again at page 1;
    # so does switching the sort order.
    assert 'name="page"' not in html
    assert '<a href="?quality=95">latest</a>' in html


@pytest.mark.django_db
def test_pages_link_their_neighbours_in_the_head_and_under_the_list(world, client):
    def links(url):
        html = page(client, url)
        head, body = html.split("</head>", 1)
        nav = re.findall(r'<nav class="pagination" aria-label="Pages">(.*?)</nav>', body, re.S)
        return (
            re.findall(r'<link rel="(prev|next)" href="([^"]*)">', head),
            [re.findall(r'<a rel="(prev|next)" href="([^"]*)">', n) for n in nav],
            re.findall(r'aria-current="page">Page (\d+)</span>', body),
        )

    # 200 clusters: ten pages of twenty.
    assert links("/topics/space/?x=%3Ca%3E") == (
        [("next", "?x=%3Ca%3E&amp;page=2")],
        [[("next", "?x=%3Ca%3E&amp;page=2")]],
        ["1"],
    )
    middle = [("prev", "?page=4"), ("next", "?page=6")]
    assert links("/topics/space/?page=5") == (middle, [middle], ["5"])
    assert links("/topics/space/?page=10") == (
        [("prev", "?page=9")],
        [[("prev", "?page=9")]],
        ["10"],
    )
    last = links("/topics/space/?page=2")
    assert last[0] == [("prev", "?"), ("next", "?page=3")]  # page 1 carries no page=1
    # A list of one page shows no pagination.
    assert links("/?quality=106&since=2099-01-01") == ([], [], [])


@pytest.mark.django_db
def test_cluster_page_shows_lead_coverage_timeline_related_and_topics(world, client):
    html = page(client, "/stories/event-3/")
    assert "<h1>Event 3 as told by outlet 0</h1>" in html
    for j in range(1, 10):
        assert f"Event 3 as told by outlet {j}</a>" in html
    assert html.count('<ol class="timeline">') == 1
    assert re.findall(r"<ol class=\"timeline\">.*?</ol>", html, re.S)[0].count("<li>") == 10
    assert "Related reading" in html and "Event 4 as told by outlet 0</a>" in html
    assert 'href="/topics/space/"' in html and 'href="/topics/science/"' in html
    data = json.loads(re.search(r'application/ld\+json">(.*?)</script>', html, re.S).group(1))
    assert data["@type"] == "NewsArticle"
    assert data["headline"] == "Event 3 as told by outlet 0"
    assert data["image"] == ["https://img.example/event-3-0.jpg"]


@pytest.mark.django_db
def test_provider_page_lists_that_outlets_stories_newest_first(world, client):
    html = page(client, "/providers/event-outlet2.example/")
    assert "<h1>Event Outlet 2</h1>" in html
    assert headlines(html)[:3] == [f"Event {c} as told by outlet 2" for c in range(3)]
    top = headlines(page(client, "/providers/event-outlet2.example/?sort=top"))
    assert top[0] == "Event 6 as told by outlet 2"  # quality peaks where c % 7 == 6


# -- Filters -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_filters_narrow_the_list(world, client):
    since = timezone.localtime(NOW - datetime.timedelta(hours=2)).date().isoformat()
    assert all(
        int(title.split()[1]) < 30
        for title in headlines(page(client, f"/topics/space/?since={since}"))
    )
    by_quality = headlines(page(client, "/?quality=106"))
    assert by_quality and all(int(t.split()[1]) % 7 == 6 for t in by_quality)
    until = (NOW - datetime.timedelta(days=3)).date().isoformat()
    older = headlines(page(client, f"/?until={until}"))
    assert older and all(int(t.split()[1]) > 48 for t in older)


@pytest.mark.django_db
def test_topic_pages_never_count_their_rows(world, client):
    for url in [
        "/topics/space/",
        "/topics/science/?page=7&sort=top",
        "/providers/event-outlet0.example/?page=2",
    ]:
        with CaptureQueriesContext(connection) as queries:
            page(client, url)
        assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries), url


@pytest.mark.django_db
def test_topic_page_ids_are_an_index_range_scan_on_postgresql(world):
    if connection.vendor != "postgresql":
        pytest.skip("the query plan is checked on PostgreSQL")
    space = Topic.objects.get(slug="space")
    rows = ClusterTopic.objects.public().filter(topic=space)
    ids = TopicClusterFilter(None, queryset=rows).results().values_list("cluster_id", flat=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE articles_clustertopic")
        cursor.execute("ANALYZE articles_cluster")
    plan = ids[:21].explain()
    assert "clustertopic_latest" in plan, plan
    assert "Seq Scan on articles_clustertopic" not in plan, plan


@pytest.mark.django_db
def test_list_ids_walk_an_index_and_stop_after_a_page_on_sqlite(world):
    """No list page reads every public cluster: not a scan of the clusters table (a bare
    ``is_public`` column uses no index on SQLite), nor a list of them for ``IN``."""
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite query plan")
    space = Topic.objects.get(slug="space")
    topic_ids = ClusterTopic.objects.public().filter(topic=space).order_by("-published_at", "-pk")
    plans = {
        "topic": topic_ids.values_list("cluster_id", flat=True)[40:61].explain(),
        "home": Cluster.objects.public().latest().values_list("pk", flat=True)[:21].explain(),
        "top": Cluster.objects.public().top().values_list("pk", flat=True)[:5].explain(),
    }
    assert "USING INDEX clustertopic_latest" in plans["topic"], plans
    assert "USING INDEX cluster_public_latest" in plans["home"], plans
    assert "USING INDEX cluster_public_top" in plans["top"], plans
    for plan in plans.values():
        assert "SCAN articles_cluster" not in plan, plans
        assert "LIST SUBQUERY" not in plan, plans


@pytest.mark.django_db
def test_public_topic_rows_are_the_rows_of_public_clusters(world):
    hidden_cluster = ClusterTopic.objects.first().cluster_id
    Cluster.objects.filter(pk=hidden_cluster).update(is_public=False)
    joined = set(ClusterTopic.objects.public().values_list("pk", flat=True))
    listed = ClusterTopic.objects.filter(cluster__in=Cluster.objects.public())
    hidden = ClusterTopic.objects.exclude(cluster__in=Cluster.objects.public())
    assert joined == set(listed.values_list("pk", flat=True))
    assert hidden_cluster in set(hidden.values_list("cluster_id", flat=True))


@pytest.mark.django_db
def test_compiled_ids_page_like_their_queryset(world):
    from articles.pagination import compiled_ids

    space = Topic.objects.get(slug="space")

    def ids():
        rows = ClusterTopic.objects.public().filter(topic=space)
        return rows.order_by("-published_at", "-pk").values_list("cluster_id", flat=True)

    compiled = compiled_ids(("test-space", space.pk), ids)
    assert compiled is compiled_ids(("test-space", space.pk), ids)
    for start, stop in [(0, 21), (20, 41), (180, 201), (400, 421)]:
        assert compiled[start:stop] == list(ids()[start:stop]), (start, stop)
    assert compiled[0:21]


@pytest.mark.django_db
def test_the_content_version_read_is_the_row(world):
    from articles import versioning
    from articles.models import ContentVersion

    versioning.bump()
    row = versioning.current()
    stored = ContentVersion.objects.get(pk=versioning.ROW_ID)
    assert (row.pk, row.version, row.changed_at) == (stored.pk, stored.version, stored.changed_at)
    assert timezone.is_aware(row.changed_at)
    # A request reads only the number; changed_at still loads, correctly, if asked for.
    request = RequestFactory().get("/")
    served = versioning.for_request(request)
    assert versioning.for_request(request) is served
    assert (served.pk, served.version) == (stored.pk, stored.version)
    assert served.changed_at == stored.changed_at


@pytest.mark.django_db
def test_a_cluster_page_reads_no_whole_table_of_stories_on_sqlite(world, client):
    """Its coverage and related reading join the listed stories' rows: an ``__in``
    a queryset of visible stories made SQLite list every story first (250 ms at
    227,000 stories)."""
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite query plan")
    cluster = Cluster.objects.public().latest().first()
    with CaptureQueriesContext(connection) as queries:
        page(client, f"/stories/{cluster.slug}/")
    plans = []
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            if query["sql"].lstrip().upper().startswith("SELECT"):
                cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
                plans.append("\n".join(row[-1] for row in cursor.fetchall()))
    assert any("articles_relatedlisting" in q["sql"] for q in queries.captured_queries)
    for plan in plans:
        assert "LIST SUBQUERY" not in plan, plans
        assert not re.search(r"SCAN (articles_article|U0|T\d)\b", plan), plans
