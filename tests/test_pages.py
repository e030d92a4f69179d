"""The reader pages: content, visibility, filters, pagination, escaping and query counts."""

import datetime
import json
import re
from urllib.parse import quote, urlencode

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.template.loader import render_to_string
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from articles import versioning
from articles.clustering import refresh_clusters
from articles.filters import MAX_OUTLET_CHOICES
from articles.models import (
    Article,
    ArticleImage,
    ArticleTopic,
    Cluster,
    ClusterAlias,
    ClusterTopic,
    Provider,
    ProviderImage,
    RelatedListing,
    Topic,
)
from articles.templatetags.reader import timestamp

NOW = timezone.now().replace(microsecond=0)
HOSTILE = '</script><script>alert("x")</script> ]]> \'single\' & "double" <b>bold</b>'


@pytest.fixture(autouse=True)
def plain_pages(settings):
    """Pages straight from the views: no response or entry cache, no static manifest needed."""
    settings.PAGE_CACHE_SECONDS = 0
    settings.ENTRY_CACHE_SECONDS = 0
    # Tests build rows directly, without the content-version bump a load makes.
    cache.clear()
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


# Enough related reading per cluster page that a query per item would break the budget.
RELATED_PER_LEAD = 6


def build_world(clusters=200, stories=10, prefix="event"):
    """``clusters`` public clusters of ``stories`` stories each, built with bulk_create.

    In every cluster the first half are published file-backed stories and the
    rest related-only coverage, one outlet each; leads carry an image and the
    child topic ``space`` (so its parent ``science`` lists them too), and each
    lead lists the next clusters' leads (related reading).
    """
    science, _ = Topic.objects.get_or_create(name="Science", slug="science")
    space, _ = Topic.objects.get_or_create(name="Space", slug="space", parent=science)
    providers = Provider.objects.bulk_create(
        Provider(domain=f"{prefix}-outlet{j}.example", name=f"{prefix.title()} Outlet {j}")
        for j in range(stories)
    )
    ProviderImage.objects.bulk_create(
        ProviderImage(provider=p, url=f"https://{p.domain}/logo.png", width=32, height=32)
        for p in providers
    )
    cluster_rows = Cluster.objects.bulk_create(
        Cluster(slug=f"{prefix}-{c}") for c in range(clusters)
    )
    articles = Article.objects.bulk_create(
        Article(
            canonical_url=f"https://{providers[j].domain}/{prefix}/{c}",
            web_url=f"https://{providers[j].domain}/{prefix}/{c}",
            slug=f"{prefix}-{c}-{j}",
            title=f"{prefix.title()} {c} as told by outlet {j}",
            excerpt=f"What happened in {prefix} {c}.",
            published_at=NOW - datetime.timedelta(hours=c, minutes=j),
            quality=100 - j + (c % 7),
            heat=100 - j,
            is_file_backed=j < stories // 2,
            published=True if j < stories // 2 else None,
            provider=providers[j],
            cluster=cluster,
        )
        for c, cluster in enumerate(cluster_rows)
        for j in range(stories)
    )
    leads = articles[::stories]
    ArticleImage.objects.bulk_create(
        ArticleImage(
            article=lead, url=f"https://img.example/{lead.slug}.jpg", width=640, height=360
        )
        for lead in leads
    )
    ArticleTopic.objects.bulk_create(ArticleTopic(article=lead, topic=space) for lead in leads)
    RelatedListing.objects.bulk_create(
        RelatedListing(source=a, target=b, position=n, title=b.title, web_url=b.web_url)
        for i, a in enumerate(leads)
        for n, b in enumerate(leads[i + 1 : i + 1 + RELATED_PER_LEAD])
    )
    refresh_clusters([cluster.pk for cluster in cluster_rows])
    return {"clusters": cluster_rows, "articles": articles, "providers": providers}


def h1_count(html):
    return len(re.findall(r"<h1[\s>]", html))


def page(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.content.decode()


def headlines(html):
    return re.findall(
        r'class="headline"><a href="[^"]*" rel="noopener noreferrer">([^<]*)</a>', html
    )


# -- Filters -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_provider_filter_keeps_clusters_that_outlet_covered(client):
    build_world(clusters=3, stories=4, prefix="alpha")
    build_world(clusters=2, stories=4, prefix="beta")
    titles = headlines(page(client, "/?provider=beta-outlet3.example"))
    assert titles == ["Beta 0 as told by outlet 0", "Beta 1 as told by outlet 0"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, message",
    [
        ("since=2020-13-45", "Enter a valid date."),
        ("quality=lots", "Enter a whole number."),
        ("quality=-4", "greater than or equal to 0"),
        ("sort=sideways", "Select a valid choice."),
        ("provider=nowhere.example", "Select a valid choice."),
        ("since=2021-02-01&until=2021-01-01", "“Since” must be on or before “Until”."),
        ("since=0001-01-01", "greater than or equal to"),
    ],
)
def test_invalid_filters_show_an_error_and_the_unfiltered_list(client, query, message):
    build_world(clusters=3, stories=2, prefix="gamma")
    html = page(client, f"/?{query}")
    assert message in html
    assert "Some filters could not be used" in html
    assert len(headlines(html)) == 3


def outlet_options(html):
    select = re.search(r'<select name="provider"[^>]*>(.*?)</select>', html, re.S).group(1)
    return re.findall(r'<option value="([^"]*)"', select)


@pytest.mark.django_db
def test_a_topic_offers_its_own_outlets(client):
    build_world(clusters=2, stories=3, prefix="alpha")
    beta = build_world(clusters=2, stories=3, prefix="beta")
    sports = Topic.objects.create(name="Sports", slug="sports")
    rows = ClusterTopic.objects.filter(cluster__in=beta["clusters"])
    rows.filter(topic__slug="science").delete()
    rows.update(topic=sports)
    assert outlet_options(page(client, "/topics/space/")) == [""] + [
        f"alpha-outlet{j}.example" for j in range(3)
    ]
    assert outlet_options(page(client, "/topics/sports/")) == [""] + [
        f"beta-outlet{j}.example" for j in range(3)
    ]
    # The home page samples every list.
    assert len(outlet_options(page(client, "/"))) == 7


@pytest.mark.django_db
def test_the_outlet_menu_is_capped_yet_any_covering_outlet_filters(client):
    outlets = MAX_OUTLET_CHOICES + 5
    build_world(clusters=2, stories=outlets, prefix="many")
    # The first half of each cluster's stories are published, the rest related-only:
    # all count, and ties go by domain.
    html = page(client, "/topics/space/")
    assert len(outlet_options(html)) == MAX_OUTLET_CHOICES + 1
    left_out = next(
        f"many-outlet{j}.example"
        for j in range(outlets)
        if f"many-outlet{j}.example" not in outlet_options(html)
    )
    html = page(client, f"/topics/space/?provider={left_out}")
    assert "Some filters could not be used" not in html
    assert f'<option value="{left_out}" selected>' in html
    assert len(headlines(html)) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["since", "quality", "provider", "sort"])
def test_filter_values_are_escaped_when_shown_back(client, field):
    build_world(clusters=1, stories=2, prefix="nu")
    html = page(client, "/topics/space/?" + urlencode({field: HOSTILE}))
    assert "Some filters could not be used" in html
    assert "<script>alert" not in html and "<b>bold</b>" not in html


# -- Missing pages --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/topics/no-such-topic/",
        "/stories/no-such-story/",
        "/providers/nowhere.example/",
        "/providers/nul%00.example/",
        "/?page=2",
        "/?page=0",
        "/?page=abc",
        "/?page=99999999999999999999999",
        "/no/such/page/",
    ],
)
def test_missing_pages_are_a_helpful_styled_404(client, url):
    html = page(client, url, status=404)
    assert "We couldn’t find that page" in html
    assert "css/site.css" in html and h1_count(html) == 1


def test_the_server_error_page_renders_without_a_request_or_database():
    html = render_to_string("500.html")
    assert "Something went wrong" in html and h1_count(html) == 1


@pytest.mark.django_db
def test_an_old_cluster_slug_redirects_permanently(client):
    cluster = build_world(clusters=1, stories=2, prefix="delta")["clusters"][0]
    ClusterAlias.objects.create(slug="delta-before-merge", cluster=cluster)
    response = client.get("/stories/delta-before-merge/")
    assert response.status_code == 301 and response["Location"] == "/stories/delta-0/"


# -- Safety nets ----------------------------------------------------------------------------


def argument_free_urls(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from argument_free_urls(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name and not entry.pattern.regex.groups:
            yield reverse(f"{namespace}{entry.name}")


@pytest.mark.django_db
def test_every_argument_free_named_url_answers_200_with_one_h1(client):
    build_world(clusters=2, stories=3, prefix="epsilon")
    urls = sorted(set(argument_free_urls()))
    assert {"/", "/topics/"} <= set(urls)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        if response["Content-Type"].startswith("text/html"):
            assert h1_count(response.content.decode()) == 1, url


@pytest.mark.django_db
def test_hostile_text_from_files_is_escaped_and_unsafe_links_are_dropped(client):
    world = build_world(clusters=1, stories=4, prefix="zeta")
    lead, coverage = world["articles"][0], world["articles"][3]
    Article.objects.filter(pk=lead.pk).update(
        title=HOSTILE, excerpt=HOSTILE, featured_content='<iframe src="https://evil.example">'
    )
    Article.objects.filter(pk=coverage.pk).update(title=HOSTILE, web_url="javascript:alert(1)")
    Provider.objects.filter(pk=lead.provider_id).update(name=HOSTILE)
    # A provider key that cannot form a URL is shown without a link, not as an error.
    Provider.objects.filter(pk=coverage.provider_id).update(domain="https://odd.example/a/b")
    for url in ["/", "/topics/space/", "/stories/zeta-0/", f"/providers/{lead.provider.domain}/"]:
        html = page(client, url)
        assert "<script>alert" not in html and "<b>bold</b>" not in html, url
        assert "&lt;script&gt;alert(&quot;x&quot;)" in html, url
        assert "javascript:" not in html and "<iframe" not in html, url
    html = page(client, "/stories/zeta-0/")
    block = re.search(r'application/ld\+json">(.*?)</script>', html, re.S).group(1)
    assert "</" not in block and json.loads(block)["headline"] == HOSTILE


@pytest.mark.django_db
def test_an_unpublished_twin_never_leaks_then_shows_once_published(client):
    world = build_world(clusters=1, stories=2, prefix="eta")
    published = world["articles"][0]
    twin_provider = Provider.objects.create(domain="twin.example", name="Twin Outlet")
    cluster = Cluster.objects.create(slug="secret-twin")
    twin = Article.objects.create(
        canonical_url="https://twin.example/secret",
        web_url="https://twin.example/secret",
        slug="secret-twin",
        title="Secret twin headline",
        excerpt="Secret twin excerpt",
        published_at=published.published_at,
        quality=150,
        is_file_backed=True,
        published=False,
        provider=twin_provider,
        cluster=cluster,
    )
    # A second copy inside the published cluster, and a hidden related-only story.
    Article.objects.create(
        canonical_url="https://twin.example/secret-copy",
        web_url="https://twin.example/secret-copy",
        slug="secret-copy",
        title="Secret twin headline (copy)",
        is_file_backed=True,
        published=False,
        provider=twin_provider,
        cluster=published.cluster,
    )
    Article.objects.create(
        canonical_url="https://twin.example/hidden",
        web_url="https://twin.example/hidden",
        slug="secret-hidden",
        title="Secret twin hidden coverage",
        is_file_backed=False,
        published=False,
        provider=twin_provider,
        cluster=published.cluster,
    )
    RelatedListing.objects.create(
        source=published, target=twin, position=5, title=twin.title, web_url=twin.web_url
    )
    space = Topic.objects.get(slug="space")
    ArticleTopic.objects.create(article=twin, topic=space)
    refresh_clusters([cluster.pk, published.cluster_id])

    surfaces = [
        "/",
        "/?sort=top",
        "/topics/",
        "/topics/space/",
        "/topics/science/",
        "/stories/eta-0/",
        f"/providers/{published.provider.domain}/",
        "/providers/twin.example/",
    ]
    for url in surfaces:
        html = page(client, url)
        assert "Secret twin" not in html, url
        assert "twin.example/secret" not in html, url
    assert "Twin Outlet" not in page(client, "/")  # not even in the outlet filter
    page(client, "/stories/secret-twin/", status=404)

    Article.objects.filter(pk=twin.pk).update(published=True)
    refresh_clusters([cluster.pk])
    assert "Secret twin headline" in page(client, "/topics/space/")
    assert "Secret twin headline" in page(client, "/stories/secret-twin/")
    assert "Secret twin headline" in page(client, "/providers/twin.example/")


# -- Empty site and fuzzed query strings ------------------------------------------------


@pytest.mark.django_db
def test_an_empty_site_and_empty_topic_say_so_kindly(client):
    Topic.objects.create(name="Quiet", slug="quiet")
    home = page(client, "/")
    assert "Nothing has been published yet." in home and h1_count(home) == 1
    topic = page(client, "/topics/quiet/")
    assert "Nothing about Quiet has been published yet." in topic


query_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["latest", "top", "2020-06-09", "9999-12-31", "0", "1", "2", "-1", "1e309"]),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
)
FUZZED_PATHS = [
    "/",
    "/topics/",
    "/topics/space/",
    "/stories/theta-0/",
    "/providers/theta-outlet0.example/",
]
query_keys = st.sampled_from(["since", "until", "quality", "sort", "provider", "page", "x"])


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(FUZZED_PATHS),
    params=st.lists(st.tuples(query_keys, query_values), max_size=6),
)
def test_fuzzed_query_strings_never_give_a_server_error(client, path, params):
    if not Cluster.objects.exists():
        build_world(clusters=3, stories=2, prefix="theta")
    response = client.get(f"{path}?{urlencode(params)}")
    assert response.status_code in (200, 404)


# -- The seeds ------------------------------------------------------------------------------

LEAD = "IBM ends all facial recognition work as CEO calls out bias and inequality"
UNPUBLISHED_SEED_TITLES = [
    "IBM quits facial recognition, joins call for police reforms",
    "IBM Exits Facial Recognition Business, Calls for Police Reform",
    "IBM turns away from facial recognition business amid public furore",
]


def section(html, heading_id):
    """The HTML of the ``<section>`` labelled by ``heading_id``."""
    match = re.search(rf'<section aria-labelledby="{heading_id}">(.*?)</section>', html, re.S)
    return match.group(1) if match else ""


def seed_pages(client):
    cluster_url = Cluster.objects.public().get().get_absolute_url()
    urls = ["/", "/topics/", "/topics/ai/", "/topics/computer-vision/", "/topics/ibm-ai/"]
    urls += [cluster_url, "/providers/techcrunch.com/", "/providers/nytimes.com/"]
    return {url: page(client, url) for url in urls}


@pytest.mark.django_db
def test_the_seeds_as_loaded_show_one_story_led_by_techcrunch(client, seeds_dir):
    call_command("load_seeds", str(seeds_dir), verbosity=0)
    pages = seed_pages(client)
    assert headlines(pages["/"]) == [LEAD]
    assert headlines(pages["/topics/ai/"]) == [LEAD]
    assert "Nothing about IBM AI has been published yet." in pages["/topics/ibm-ai/"]
    cluster = next(html for url, html in pages.items() if url.startswith("/stories/"))
    assert f"<h1>{LEAD}</h1>" in cluster
    assert "House police reform bill" in section(cluster, "related-title")
    assert "House police reform bill" not in section(cluster, "coverage-title")
    assert "vlogging camera" not in section(cluster, "coverage-title")
    for url, html in pages.items():
        for title in UNPUBLISHED_SEED_TITLES:
            assert title not in html, (url, title)
        assert h1_count(html) == 1, url


@pytest.mark.django_db
def test_with_all_five_seeds_published_they_are_one_cluster(client, seeds_dir, tmp_path):
    for seed in seeds_dir.iterdir():
        text = seed.read_text().replace("published: false", "published: true")
        (tmp_path / seed.name).write_text(text)
    call_command("load_seeds", str(tmp_path), verbosity=0)
    pages = seed_pages(client)
    assert headlines(pages["/"]) == [LEAD]
    cluster = next(html for url, html in pages.items() if url.startswith("/stories/"))
    coverage = section(cluster, "coverage-title")
    for title in UNPUBLISHED_SEED_TITLES:
        assert title in coverage
    for outlet in ["Charlotte Observer", "Seattle Times", "South China Morning Post"]:
        assert outlet in cluster
    assert "vlogging camera" not in coverage
    assert "House police reform bill" not in coverage


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=st.sampled_from(["/providers/", "/topics/", "/stories/"]),
    segment=st.text(min_size=1, max_size=40),
)
def test_fuzzed_page_addresses_never_give_a_server_error(client, prefix, segment):
    response = client.get(f"{prefix}{quote(segment, safe='')}/")
    assert response.status_code in (200, 301, 404)


@pytest.mark.parametrize(
    "age, label",
    [
        (datetime.timedelta(hours=3), "3 hours ago"),
        (datetime.timedelta(days=2, hours=1), "2 days ago"),
        (datetime.timedelta(days=800), "2 years ago"),
    ],
)
def test_times_carry_their_moment_and_a_relative_label(age, label):
    when = timezone.now() - age
    html = timestamp(when).replace("\xa0", " ")
    assert html.startswith(f'<time datetime="{when.isoformat()}"')
    assert html.endswith(f">{label}</time>")


@pytest.mark.django_db
@pytest.mark.parametrize("page_seconds", [0, 600])
def test_list_entries_are_shared_from_the_cache_until_content_changes(
    client, settings, django_assert_max_num_queries, page_seconds
):
    # Whether or not whole pages are cached, entries are.
    settings.PAGE_CACHE_SECONDS = page_seconds
    settings.ENTRY_CACHE_SECONDS = 600
    world = build_world(clusters=3, stories=3, prefix="kappa")
    page(client, "/topics/space/")
    Article.objects.filter(pk=world["articles"][0].pk).update(title="Kappa renamed")
    # The parent topic lists the same clusters: its entries come from the cache, so the
    # page loads no cluster, story, image or logo (only ids, topic, menus and versions).
    with django_assert_max_num_queries(7):
        assert "Kappa renamed" not in page(client, "/topics/science/")
    versioning.bump()
    assert "Kappa renamed" in page(client, "/topics/science/")
    # Editors (any session) never get cached entries.
    Article.objects.filter(pk=world["articles"][0].pk).update(title="Kappa edited again")
    client.cookies[settings.SESSION_COOKIE_NAME] = "editor-session"
    assert "Kappa edited again" in page(client, "/topics/space/")


@pytest.mark.django_db
def test_a_warm_topic_page_reads_only_the_version_and_its_ids(
    client, settings, django_assert_max_num_queries
):
    settings.ENTRY_CACHE_SECONDS = 600
    build_world(clusters=3, stories=3, prefix="xi")
    page(client, "/topics/space/")
    # Topic, child topics, menu, outlets and entries all come from the cache.
    with django_assert_max_num_queries(2):
        page(client, "/topics/space/")


@pytest.mark.django_db
def test_topics_and_the_menu_follow_the_content_version(client, settings):
    settings.ENTRY_CACHE_SECONDS = 600
    build_world(clusters=2, stories=2, prefix="omicron")
    page(client, "/topics/space/")
    Topic.objects.create(name="Oceans", slug="oceans")
    Topic.objects.filter(slug="space").update(name="Outer Space")
    versioning.bump()
    html = page(client, "/topics/space/")
    assert '<a href="/topics/oceans/">Oceans</a>' in html
    assert "<h1>Outer Space</h1>" in html


def test_remembered_addresses_follow_the_script_prefix():
    from django.urls import set_script_prefix

    from articles.links import named_url, named_urls, object_url

    assert object_url("articles:topic", "slug", "space") == "/topics/space/"
    set_script_prefix("/news/")
    try:
        assert object_url("articles:topic", "slug", "space") == "/news/topics/space/"
        assert named_url("articles:feeds") == "/news/feeds/"
        names = ["articles:feed_topic_rss", "articles:feed_topic_atom", "articles:nothing"]
        assert named_urls(names, slug="space") == (
            "/news/feeds/topics/space.rss",
            "/news/feeds/topics/space.atom",
            "",
        )
        # Arguments that cannot form an address give nothing, as {% url ... as %} does.
        assert named_urls(names[:1], slug="not a slug") == ("",)
    finally:
        set_script_prefix("/")
    assert object_url("articles:topic", "slug", "space") == "/topics/space/"


@pytest.mark.django_db
def test_no_entry_cache_renders_every_entry_fresh(client, settings):
    settings.PAGE_CACHE_SECONDS = 600
    settings.ENTRY_CACHE_SECONDS = 0
    world = build_world(clusters=3, stories=3, prefix="mu")
    page(client, "/topics/space/")
    Article.objects.filter(pk=world["articles"][0].pk).update(title="Mu renamed")
    # A different page (the whole-response cache keys on the address) renders anew.
    assert "Mu renamed" in page(client, "/topics/science/")


@pytest.mark.django_db
def test_lists_that_no_filter_narrows_match_their_filterset(client, settings, monkeypatch):
    """Without a filter parameter, lists skip building the FilterSet; they must read the
    same as with it: rows, pages, form (open once there is a query string) and links."""
    from articles import filters

    settings.ENTRY_CACHE_SECONDS = 600
    build_world(clusters=45, stories=3, prefix="rho")
    urls = [
        "/",
        "/?page=2",
        "/?utm_source=mail",
        "/?page=3&utm_source=mail",
        "/topics/space/",
        "/topics/space/?page=2",
        "/topics/science/?ref=a%20b&page=3",
        "/topics/science/?page=4",
    ]

    def pages(kind):
        found = {}
        for url in urls:
            response = client.get(url)
            if response.status_code == 200:
                assert isinstance(response.context["filter"], kind), url
            found[url] = (response.status_code, response.content.decode())
        return found

    bypassed = pages(filters.Unfiltered)
    # Again, with the form's fields from the cache.
    assert pages(filters.Unfiltered) == bypassed
    monkeypatch.setattr(filters.Unfiltered, "applies", staticmethod(lambda *args: False))
    assert pages(filters.ClusterFilter) == bypassed
    assert bypassed["/topics/science/?page=4"][0] == 404
    assert '<details class="filters" open>' in bypassed["/?utm_source=mail"][1]
    assert '<details class="filters">' in bypassed["/topics/space/"][1]
    assert 'href="?page=2&amp;utm_source=mail"' in bypassed["/?page=3&utm_source=mail"][1]


def feed_links(html):
    head = html.split("</head>", 1)[0]
    return re.findall(r'<link rel="alternate" type="([^"]+)" title="([^"]+)" href="([^"]+)">', head)


@pytest.mark.django_db
def test_pages_advertise_the_site_feeds_then_their_own(client):
    world = build_world(clusters=1, stories=2, prefix="sigma")
    lead = world["articles"][0]
    Provider.objects.filter(pk=lead.provider_id).update(name=HOSTILE)
    Topic.objects.filter(slug="space").update(name="Space & <Time>")
    site = [
        ("application/rss+xml", "Story Clusters: all stories (RSS)", "/feeds/all.rss"),
        ("application/atom+xml", "Story Clusters: all stories (Atom)", "/feeds/all.atom"),
        ("application/feed+json", "Story Clusters: all stories (JSON Feed)", "/feeds/all.json"),
    ]

    def own(label, path):
        return [
            ("application/rss+xml", f"{label} (RSS)", f"/feeds/{path}.rss"),
            ("application/atom+xml", f"{label} (Atom)", f"/feeds/{path}.atom"),
            ("application/feed+json", f"{label} (JSON Feed)", f"/feeds/{path}.json"),
        ]

    hostile = HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    hostile = hostile.replace('"', "&quot;").replace("'", "&#x27;")
    domain = lead.provider.domain
    assert feed_links(page(client, "/")) == site
    assert feed_links(page(client, "/topics/")) == site
    assert feed_links(page(client, "/topics/space/")) == site + own(
        "Space &amp; &lt;Time&gt;", "topics/space"
    )
    assert feed_links(page(client, f"/providers/{domain}/")) == site + own(
        hostile, f"providers/{domain}"
    )
    cluster = world["clusters"][0]
    cluster.refresh_from_db()
    assert feed_links(page(client, f"/stories/{cluster.slug}/")) == site + own(
        f"Developing story: {lead.title}", f"stories/{cluster.slug}"
    )
    # An outlet without a name is labelled by its domain.
    Provider.objects.filter(pk=lead.provider_id).update(name="")
    assert feed_links(page(client, f"/providers/{domain}/"))[3][1] == f"{domain} (RSS)"


@pytest.mark.django_db
def test_subtopics_and_the_directory_follow_the_content_version(client, settings):
    settings.ENTRY_CACHE_SECONDS = 600
    build_world(clusters=2, stories=2, prefix="tau")
    science = page(client, "/topics/science/")
    assert '<ul class="chips"><li><a href="/topics/space/">Space</a></li></ul>' in science
    assert 'class="subtopics"' not in page(client, "/topics/space/")
    assert "Comets" not in page(client, "/") + page(client, "/topics/")
    Topic.objects.create(name="Comets", slug="comets", parent=Topic.objects.get(slug="science"))
    # Until content changes, the menus come from the cache.
    assert "Comets" not in page(client, "/topics/science/")
    versioning.bump()
    assert '<li><a href="/topics/comets/">Comets</a></li>' in page(client, "/topics/science/")
    for url in ["/", "/topics/"]:
        assert '<a href="/topics/comets/">Comets</a> <span class="count">0' in page(client, url)
