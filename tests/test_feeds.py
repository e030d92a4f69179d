"""Feeds for every scope and format: validity, visibility, stable guids, conditional GET."""

import gzip
import json
import xml.etree.ElementTree as ET

import feedparser
import pytest
from django.core.cache import cache
from django.urls import reverse

from articles import conditional, feeds, versioning
from articles.models import Article, ClusterAlias
from tests import feeds_data as data

FORMATS = ["rss", "atom", "json"]
SCOPES = ["all", "topic", "provider", "cluster"]
MEDIA = "{http://search.yahoo.com/mrss/}content"


@pytest.fixture
def news(db):
    return data.newsroom()


def feed_url(news, scope, fmt):
    kwargs = {
        "all": {},
        "topic": {"slug": news["ai"].slug},
        "provider": {"domain": news["verge"].domain},
        "cluster": {"slug": news["ibm"].slug},
    }[scope]
    return reverse(f"articles:feed_{scope}_{fmt}", kwargs=kwargs)


def parse(response, fmt):
    """The feed as ``(title, [{"id", "link", "title", ...}])``, failing on anything invalid."""
    assert response.status_code == 200, response.content[:500]
    if fmt == "json":
        assert response["Content-Type"].startswith("application/feed+json")
        feed = json.loads(response.content)
        assert feed["version"] == "https://jsonfeed.org/version/1.1"
        assert feed["title"] and feed["home_page_url"].startswith("http")
        for item in feed["items"]:
            assert item["id"] and item["url"].startswith("http")
            assert item["title"] and item["content_html"] and item["date_published"]
        return feed["title"], feed["items"]
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == {"rss": "rss20", "atom": "atom10"}[fmt]
    items = [
        {
            "id": entry.id,
            "url": entry.link,
            "title": entry.title,
            "authors": [{"name": entry.author}],
            "tags": [tag.term for tag in entry.get("tags", [])],
        }
        for entry in parsed.entries
    ]
    return parsed.feed.title, items


def ids(response, fmt):
    return [item["id"] for item in parse(response, fmt)[1]]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("scope", SCOPES)
def test_every_feed_is_valid_and_links_to_the_originals(client, news, scope, fmt):
    title, items = parse(client.get(feed_url(news, scope, fmt)), fmt)
    assert title
    assert items, f"{scope} {fmt} has no items"
    originals = set(Article.objects.values_list("web_url", flat=True))
    for item in items:
        assert item["url"] in originals
        assert item["id"].startswith("tag:")
        assert item["authors"][0]["name"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_site_and_topic_items_are_clusters_with_coverage_lines(client, news, fmt):
    response = client.get(feed_url(news, "all", fmt))
    _, items = parse(response, fmt)
    assert [item["title"] for item in items] == [news["lead"].title, news["waymo_lead"].title]
    assert items[0]["url"] == news["lead"].web_url
    assert "Computer Vision" in items[0]["tags"]
    assert "Artificial Intelligence" in items[0]["tags"]  # ancestor topics count too
    body = response.content.decode()
    # Coverage lines travel as escaped HTML in the description.
    for coverage in (news["more"], news["related"]):
        assert coverage.title in body and coverage.web_url.replace("&", "&amp;") in body
    assert news["ibm"].get_absolute_url() in body


def test_rss_items_carry_guid_media_dates_and_author(client, news):
    response = client.get(feed_url(news, "all", "rss"))
    channel = ET.fromstring(response.content).find("channel")
    assert channel.find("ttl").text == "5"
    item = channel.find("item")
    guid = item.find("guid")
    assert guid.get("isPermaLink") == "false"
    assert guid.text.endswith(f":cluster/{news['ibm'].slug}")
    assert item.find("pubDate").text
    assert item.find("{http://www.w3.org/2005/Atom}updated").text
    assert item.find("{http://purl.org/dc/elements/1.1/}creator").text == "TechCrunch"
    media = item.find(MEDIA)
    assert media.get("url") == news["lead"].images.get().url
    assert media.get("medium") == "image" and media.get("width") == "640"
    assert "&lt;li&gt;" in response.content.decode()  # the coverage list, escaped


def test_atom_entries_carry_published_updated_and_media(client, news):
    response = client.get(feed_url(news, "all", "atom"))
    parsed = feedparser.parse(response.content)
    entry = parsed.entries[0]
    assert entry.published_parsed and entry.updated_parsed
    assert entry.author == "TechCrunch"
    assert entry.media_content[0]["url"] == news["lead"].images.get().url
    assert entry.summary_detail.type == "text/html"
    assert news["more"].title in entry.summary


def test_json_feed_items(client, news):
    feed = json.loads(client.get(feed_url(news, "all", "json")).content)
    item = feed["items"][0]
    assert item["authors"] == [{"name": "TechCrunch"}]
    assert item["image"] == news["lead"].images.get().url
    assert item["summary"] == news["lead"].excerpt
    assert item["date_modified"] >= item["date_published"]
    assert feed["feed_url"].endswith(feed_url(news, "all", "json"))


def test_topic_feed_includes_child_topics_and_excludes_others(client, news):
    parent = ids(client.get(feed_url(news, "topic", "rss")), "rss")
    child_url = reverse("articles:feed_topic_rss", kwargs={"slug": news["vision"].slug})
    child = ids(client.get(child_url), "rss")
    assert len(parent) == 2  # IBM (tagged with the child topic) and Waymo
    assert len(child) == 1 and child[0].endswith(news["ibm"].slug)


def test_provider_feed_lists_its_stories_including_coverage_lines(client, news):
    _, items = parse(client.get(feed_url(news, "provider", "json")), "json")
    assert [item["url"] for item in items] == [news["more"].web_url, news["waymo_lead"].web_url]
    wired = reverse("articles:feed_provider_rss", kwargs={"domain": news["wired"].domain})
    _, items = parse(client.get(wired), "rss")
    # The related-only story under a public lead shows; the unpublished one never does.
    assert [item["url"] for item in items] == [news["related"].web_url]


def test_developing_story_gains_an_item_when_coverage_joins(client, news):
    url = feed_url(news, "cluster", "atom")
    before = ids(client.get(url), "atom")
    assert len(before) == 3
    late = data.story("IBM facial recognition exit, explained", news["wired"], hours_ago=0)
    Article.objects.filter(pk=late.pk).update(cluster=news["ibm"])
    data.set_published(late, True)
    after = ids(client.get(url), "atom")
    assert len(after) == 4 and set(before) < set(after)
    assert after[0].endswith(f":story/{late.slug}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_unpublished_never_appear_and_appear_after_publishing(client, news, fmt):
    hidden, secret = news["hidden"], news["secret"]
    urls = [feed_url(news, scope, fmt) for scope in ("all", "topic")]
    urls.append(reverse(f"articles:feed_provider_{fmt}", kwargs={"domain": news["wired"].domain}))
    for url in urls:
        assert hidden.title not in client.get(url).content.decode()
    secret_feed = reverse(f"articles:feed_cluster_{fmt}", kwargs={"slug": secret.slug})
    assert client.get(secret_feed).status_code == 404

    data.set_published(hidden, True)
    for url in urls:
        assert hidden.title in client.get(url).content.decode(), url
    assert client.get(secret_feed).status_code == 200

    data.set_published(hidden, False)
    for url in urls:
        assert hidden.title not in client.get(url).content.decode(), url


@pytest.mark.parametrize("scope", SCOPES)
def test_guids_survive_url_and_title_changes(client, news, scope):
    url = feed_url(news, scope, "rss")
    before = ids(client.get(url), "rss")
    for article in Article.objects.all():
        article.web_url = article.web_url.replace("/news/", "/syndicated/copy-")
        article.canonical_url = article.web_url
        article.title = f"Updated: {article.title}"
        article.save()
    versioning.bump()  # as a load that changed stories does
    response = client.get(url)
    assert "Updated: " in response.content.decode()
    assert ids(response, "rss") == before


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("scope", SCOPES)
def test_conditional_get(client, news, scope, fmt):
    data.age_everything()
    url = feed_url(news, scope, fmt)
    first = client.get(url)
    assert first.status_code == 200
    assert "max-age=300" in first["Cache-Control"] and "public" in first["Cache-Control"]
    etag, last_modified = first["ETag"], first["Last-Modified"]

    by_etag = client.get(url, headers={"if-none-match": etag})
    by_date = client.get(url, headers={"if-modified-since": last_modified})
    for repeat in (by_etag, by_date):
        assert repeat.status_code == 304
        assert repeat.content == b""
        assert repeat["ETag"] == etag

    # A publish in scope (Waymo's coverage grows) changes both validators.
    late = data.story("Waymo robotaxis reach Phoenix", news["verge"], topics=[news["ai"]])
    Article.objects.filter(pk=late.pk).update(cluster=news["ibm"])
    data.set_published(late, True)
    assert client.get(url, headers={"if-none-match": etag}).status_code == 200
    assert client.get(url, headers={"if-modified-since": last_modified}).status_code == 200


def test_unpublishing_moves_the_validators_forward(client, news):
    data.age_everything()
    url = feed_url(news, "topic", "rss")
    first = client.get(url)
    data.set_published(news["waymo_lead"], False)
    again = client.get(url, headers={"if-modified-since": first["Last-Modified"]})
    assert again.status_code == 200
    assert news["waymo_lead"].title not in again.content.decode()


@pytest.mark.parametrize("scope", SCOPES)
def test_not_modified_answers_without_rendering(
    client, news, scope, monkeypatch, django_assert_max_num_queries
):
    url = feed_url(news, scope, "rss")
    etag = client.get(url)["ETag"]
    cache.clear()  # the anonymous response cache would answer before the view

    def must_not_render(*args, **kwargs):
        raise AssertionError("a 304 rendered the feed")

    monkeypatch.setattr(feeds.StoryFeed, "get_feed", must_not_render)
    with django_assert_max_num_queries(6):
        assert client.get(url, headers={"if-none-match": etag}).status_code == 304
    # The next poll under the same content version reuses the remembered validators.
    with django_assert_max_num_queries(4):
        assert client.get(url, headers={"if-none-match": etag}).status_code == 304


@pytest.mark.parametrize("scope", ["topic", "provider"])
def test_topic_and_outlet_validators_read_only_the_content_version(
    news, scope, django_assert_num_queries
):
    obj = {"topic": news["ai"], "provider": news["verge"]}[scope]
    validators = getattr(conditional, f"{scope}_validators")
    with django_assert_num_queries(1):
        first = validators(obj)
    assert first.last_modified == versioning.current().changed_at
    versioning.bump()
    assert validators(obj).etag != first.etag


def test_feeds_are_gzipped_for_readers_that_accept_it_and_pages_never(client, news, settings):
    settings.PAGE_CACHE_SECONDS = 600
    url = feed_url(news, "topic", "rss")
    plain = client.get(url)
    assert "Content-Encoding" not in plain
    packed = client.get(url, headers={"accept-encoding": "gzip"})
    assert packed["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed["Vary"]
    assert gzip.decompress(packed.content) == plain.content
    assert packed["ETag"] == f"W/{plain['ETag']}"
    # The cached copy stays plain for readers without gzip; the weak tag still matches.
    assert "Content-Encoding" not in client.get(url)
    again = client.get(url, headers={"accept-encoding": "gzip", "if-none-match": packed["ETag"]})
    assert again.status_code == 304
    # Pages carry CSRF tokens on forms: never compressed (BREACH).
    home = client.get("/", headers={"accept-encoding": "gzip"})
    assert home.status_code == 200 and "Content-Encoding" not in home


def test_feed_query_count_does_not_grow_with_items(client, news, django_assert_max_num_queries):
    for n in range(10):
        lead = data.story(f"Extra story {n}", news["tc"], topics=[news["ai"]])
        more = data.story(f"Extra coverage {n}", news["wired"], file_backed=False)
        data.cluster_of(lead, more)
    with django_assert_max_num_queries(12):
        assert len(ids(client.get(feed_url(news, "topic", "rss")), "rss")) == 12


def test_head_answers_with_headers_and_no_body(client, news):
    response = client.head(feed_url(news, "all", "atom"))
    assert response.status_code == 200
    assert response.content == b""
    assert response["ETag"] and response["Last-Modified"]


def test_at_most_fifty_items(client, news):
    for n in range(52):
        data.cluster_of(data.story(f"Story number {n}", news["tc"], image=False))
    assert len(ids(client.get(feed_url(news, "all", "json")), "json")) == 50
    assert len(ids(client.get(feed_url(news, "provider", "rss")), "rss")) == 2


# No NUL: PostgreSQL refuses it in text columns before any feed could see it.
HOSTILE = "AT&T <script>alert(1)</script> ]]> \x01\x08\x0b\x1f\x9b\ufffe \U0001f680 “quotes” &amp;"


@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_text_stays_well_formed(client, news, fmt):
    Article.objects.filter(pk=news["lead"].pk).update(title=HOSTILE, excerpt=HOSTILE)
    versioning.bump()
    Article.objects.filter(pk=news["more"].pk).update(title=HOSTILE)
    news["tc"].name = f"Tech{HOSTILE}"
    news["tc"].save()
    news["ai"].name = f"AI {HOSTILE}"
    news["ai"].save()
    for scope in SCOPES:
        response = client.get(feed_url(news, scope, fmt))
        if fmt != "json":
            ET.fromstring(response.content)  # well-formed XML, or this raises
        _, items = parse(response, fmt)
        titles = [item["title"] for item in items]
        expected = "AT&T <script>alert(1)</script> ]]>  \U0001f680 “quotes” &amp;"
        if scope != "provider":
            assert expected in titles, titles


def test_unknown_scopes_are_404(client, news):
    for name, kwargs in [
        ("articles:feed_topic_rss", {"slug": "no-such-topic"}),
        ("articles:feed_provider_atom", {"domain": "nowhere.example"}),
        ("articles:feed_cluster_json", {"slug": "no-such-story"}),
    ]:
        assert client.get(reverse(name, kwargs=kwargs)).status_code == 404


def test_a_merged_story_feed_redirects_to_the_survivor(client, news):
    ClusterAlias.objects.create(slug="old-ibm-story", cluster=news["ibm"])
    response = client.get(reverse("articles:feed_cluster_atom", kwargs={"slug": "old-ibm-story"}))
    assert response.status_code == 301
    assert response["Location"] == feed_url(news, "cluster", "atom")


def test_pages_link_their_feeds(client, news):
    ai = news["ai"]
    page = client.get(ai.get_absolute_url()).content.decode()
    assert f'href="{reverse("articles:feeds")}"' in page  # every page's footer
    for fmt in FORMATS:
        assert f'href="{reverse(f"articles:feed_all_{fmt}")}"' in page
        assert f'href="{feed_url(news, "topic", fmt)}"' in page
    story = client.get(news["ibm"].get_absolute_url()).content.decode()
    assert f'href="{feed_url(news, "cluster", "rss")}"' in story
    outlet = client.get(news["verge"].get_absolute_url()).content.decode()
    assert f'href="{feed_url(news, "provider", "atom")}"' in outlet


def test_feeds_page_lists_every_feed(client, news, ghost):
    response = client.get(reverse("articles:feeds"))
    page = response.content.decode()
    assert page.count("<h1") == 1
    for fmt in FORMATS:
        assert reverse(f"articles:feed_all_{fmt}") in page
        for topic in (news["ai"], news["vision"]):
            assert reverse(f"articles:feed_topic_{fmt}", kwargs={"slug": topic.slug}) in page
        assert feed_url(news, "provider", fmt) in page
    assert reverse("articles:opml") in page
    assert reverse("articles:api_news_all", kwargs={"page": 1}) in page
    # Outlets are listed when they have a public story: a coverage line under a public lead counts.
    assert reverse("articles:feed_provider_rss", kwargs={"domain": news["wired"].domain}) in page
    assert "ghost.example" not in page


@pytest.fixture
def ghost(news):
    """An outlet whose only story is unpublished."""
    return data.story("Ghost story", data.provider("ghost.example"), published=False)


def test_an_outlet_key_that_cannot_form_an_address_is_left_out(client, news):
    odd = data.provider("https://odd.example/a/b", "Odd Outlet")
    story = data.story("Odd outlet story", odd)
    cluster = data.cluster_of(story)
    # The story still shows; only the outlet's own addresses are left out, never an error.
    assert story.title in client.get(feed_url(news, "all", "rss")).content.decode()
    assert client.get(cluster.get_absolute_url()).status_code == 200
    feeds_page = client.get(reverse("articles:feeds"))
    assert feeds_page.status_code == 200 and "Odd Outlet" not in feeds_page.content.decode()
    providers = client.get(reverse("articles:sitemap_section", kwargs={"section": "providers"}))
    assert providers.status_code == 200 and b"odd.example" not in providers.content


def test_opml_groups_topic_feeds_by_parent(client, news):
    child_of_child = data.topic("Face Recognition", parent=news["vision"])
    loner = data.topic("Robotics")
    response = client.get(reverse("articles:opml"))
    assert response.status_code == 200
    body = ET.fromstring(response.content).find("body")
    top = body.findall("outline")
    assert top[0].get("xmlUrl").endswith(reverse("articles:feed_all_rss"))
    folders = {o.get("text"): o for o in top if o.get("xmlUrl") is None}
    assert set(folders) == {"Artificial Intelligence"}
    grouped = [o.get("text") for o in folders["Artificial Intelligence"].findall("outline")]
    assert grouped == ["Artificial Intelligence", "Computer Vision", "Face Recognition"]
    loose = [o for o in top if o.get("text") == loner.name]
    assert loose[0].get("type") == "rss"
    assert loose[0].get("xmlUrl") == (
        "http://testserver" + reverse("articles:feed_topic_rss", kwargs={"slug": loner.slug})
    )
    assert child_of_child.slug in response.content.decode()


def test_undated_stories_come_last_with_their_first_seen_date(client, news):
    undated = data.story("A story without a date", news["verge"])
    Article.objects.filter(pk=undated.pk).update(published_at=None)
    data.cluster_of(undated)
    feed = feedparser.parse(client.get(feed_url(news, "provider", "rss")).content)
    assert feed.entries[-1].title == undated.title
    assert feed.entries[-1].published_parsed  # falls back to when the story was first seen


@pytest.mark.parametrize("fmt", FORMATS)
def test_hidden_coverage_lines_leave_every_feed(client, news, fmt):
    related = news["related"]
    urls = [feed_url(news, scope, fmt) for scope in ("all", "topic", "cluster")]
    urls.append(reverse(f"articles:feed_provider_{fmt}", kwargs={"domain": news["wired"].domain}))
    assert all(related.title in client.get(url).content.decode() for url in urls)
    data.set_published(related, False)  # an editor hides the related-only story
    for url in urls:
        assert related.title not in client.get(url).content.decode(), url


def test_unpublished_twin_is_absent_from_every_feed_api_and_sitemap_until_published(client, news):
    outlet = data.provider("twin.example", "Twin Times")
    twin = data.story("Twin story about robots", outlet, topics=[news["vision"]], published=False)
    cluster = data.cluster_of(twin)
    feeds = [feed_url(news, scope, fmt) for scope in ("all", "topic") for fmt in FORMATS]
    feeds += [
        reverse(f"articles:feed_provider_{fmt}", kwargs={"domain": outlet.domain})
        for fmt in FORMATS
    ]
    api = [
        reverse("articles:api_news", kwargs={"slug": news["vision"].slug, "page": 1}),
        reverse("articles:api_news_all", kwargs={"page": 1}),
    ]
    # What would give the twin away on each surface.
    surfaces = {url: twin.title for url in feeds + api}
    surfaces[reverse("articles:sitemap_section", kwargs={"section": "clusters"})] = cluster.slug
    surfaces[reverse("articles:sitemap_section", kwargs={"section": "providers"})] = outlet.domain
    surfaces[reverse("articles:feeds")] = outlet.name

    def shown():
        return {
            url for url, marker in surfaces.items() if marker in client.get(url).content.decode()
        }

    assert shown() == set()
    data.set_published(twin, True)
    assert shown() == set(surfaces)
