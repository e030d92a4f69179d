"""Every feed of the official seeds and of the real corpus, loaded with ``load_seeds``."""

import json
import xml.etree.ElementTree as ET

import feedparser
import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

from articles.feeds import providers_with_stories
from articles.models import Article, Cluster, Topic

FORMATS = ["rss", "atom", "json"]


def load(*paths):
    call_command("load_seeds", *map(str, paths), verbosity=0)


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker, corpus, request):
    """The seeds and the corpus loaded once for the module, rolled back afterwards."""
    with django_db_blocker.unblock(), transaction.atomic():
        load(
            request.config.rootpath / "seeds",
            corpus / "topics",
            corpus / "organizations",
            corpus / "news",
            corpus / "news-ai",
        )
        yield
        transaction.set_rollback(True)


def every_feed_url(fmt):
    urls = [reverse(f"articles:feed_all_{fmt}")]
    urls += [
        reverse(f"articles:feed_topic_{fmt}", kwargs={"slug": t.slug}) for t in Topic.objects.all()
    ]
    urls += [
        reverse(f"articles:feed_provider_{fmt}", kwargs={"domain": p.domain})
        for p in providers_with_stories()
    ]
    urls += [
        reverse(f"articles:feed_cluster_{fmt}", kwargs={"slug": c.slug})
        for c in Cluster.objects.public()
    ]
    return urls


def check_json_feed(content):
    feed = json.loads(content)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"]
    for item in feed["items"]:
        assert item["id"].startswith("tag:") and item["url"].startswith(("http://", "https://"))
        assert item["title"] and item["date_published"]
    return [item["id"] for item in feed["items"]]


@pytest.mark.corpus
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_feed_of_the_corpus_is_valid(loaded, db, client, fmt):
    urls = every_feed_url(fmt)
    assert len(urls) > 300  # all, 20 topics, outlets and every public story
    items = 0
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        if fmt == "json":
            items += len(check_json_feed(response.content))
            continue
        ET.fromstring(response.content)
        parsed = feedparser.parse(response.content)
        assert parsed.bozo == 0, (url, parsed.get("bozo_exception"))
        for entry in parsed.entries:
            assert entry.id.startswith("tag:") and entry.link.startswith("http"), url
        assert len(parsed.entries) <= 50
        items += len(parsed.entries)
    assert items > 500


@pytest.mark.corpus
def test_corpus_feeds_show_only_published_stories(loaded, db, client):
    hidden = set(
        Article.objects.filter(published=False)
        .values_list("web_url", flat=True)
        .exclude(web_url="")
    )
    shown = set()
    for url in every_feed_url("json"):
        shown |= {item["url"] for item in json.loads(client.get(url).content)["items"]}
    assert shown and not shown & hidden


@pytest.mark.corpus
def test_seed_guids_survive_a_reload(loaded, db, client, seeds_dir):
    url = reverse("articles:feed_all_rss")
    before = [entry.id for entry in feedparser.parse(client.get(url).content).entries]
    load(seeds_dir)
    after = [entry.id for entry in feedparser.parse(client.get(url).content).entries]
    assert before and after == before


@pytest.mark.corpus
def test_corpus_opml_and_sitemaps_list_what_they_should(loaded, db, client):
    body = ET.fromstring(client.get(reverse("articles:opml")).content).find("body")
    feeds = {o.get("text"): o.get("xmlUrl") for o in body.iter("outline") if o.get("xmlUrl")}
    assert set(Topic.objects.values_list("name", flat=True)) <= set(feeds)
    power_apps = Topic.objects.get(slug="power-apps")
    folder = next(o for o in body.findall("outline") if o.get("text") == power_apps.name)
    grouped = {o.get("text") for o in folder.findall("outline")}
    assert grouped == {power_apps.name, *power_apps.children.values_list("name", flat=True)}

    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    index = ET.fromstring(client.get(reverse("articles:sitemap")).content)
    listed = set()
    for section in index.findall("s:sitemap/s:loc", ns):
        urls = ET.fromstring(client.get(section.text.removeprefix("http://testserver")).content)
        listed |= {
            loc.text.removeprefix("http://testserver") for loc in urls.iter(f"{{{ns['s']}}}loc")
        }
    public = {cluster.get_absolute_url() for cluster in Cluster.objects.public()}
    outlets = {provider.get_absolute_url() for provider in providers_with_stories()}
    assert public and outlets and public | outlets <= listed
    assert power_apps.get_absolute_url() in listed
    hidden = {
        c.get_absolute_url() for c in Cluster.objects.exclude(pk__in=Cluster.objects.public())
    }
    assert hidden and not hidden & listed
