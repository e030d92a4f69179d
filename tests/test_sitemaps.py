"""Discovery: the sitemap index and its sections, and robots.txt pointing at it."""

import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse

from tests import feeds_data as data

NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}


@pytest.fixture
def news(db):
    return data.newsroom()


def sitemap_locations(client):
    """{section url: [(loc, lastmod), ...]} by following the index."""
    index = client.get(reverse("articles:sitemap"))
    assert index.status_code == 200
    sections = {}
    for entry in ET.fromstring(index.content).findall("s:sitemap", NS):
        url = entry.find("s:loc", NS).text
        assert url.startswith("http://testserver/")
        response = client.get(url.removeprefix("http://testserver"))
        assert response.status_code == 200
        sections[url] = [
            (node.find("s:loc", NS).text, node.find("s:lastmod", NS).text)
            for node in ET.fromstring(response.content).findall("s:url", NS)
        ]
    return sections


def absolute(obj):
    return "http://testserver" + obj.get_absolute_url()


def test_index_lists_topics_clusters_and_providers_with_lastmod(client, news):
    sections = sitemap_locations(client)
    assert len(sections) == 3
    locations = {loc for entries in sections.values() for loc, _ in entries}
    expected = {absolute(news[name]) for name in ("ai", "vision", "ibm", "waymo")}
    expected |= {absolute(news[name]) for name in ("tc", "verge", "wired")}
    assert locations == expected
    for entries in sections.values():
        for _, lastmod in entries:
            assert lastmod and lastmod[:4].isdigit()


def test_unpublished_are_left_out_until_published(client, news):
    outlet = data.provider("ghost.example")
    draft = data.story("Ghost story", outlet, published=False)
    cluster = data.cluster_of(draft)
    locations = {loc for entries in sitemap_locations(client).values() for loc, _ in entries}
    assert absolute(cluster) not in locations and absolute(outlet) not in locations
    data.set_published(draft, True)
    locations = {loc for entries in sitemap_locations(client).values() for loc, _ in entries}
    assert absolute(cluster) in locations and absolute(outlet) in locations


def test_robots_points_to_the_sitemap(client, db):
    response = client.get(reverse("articles:robots"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    lines = response.content.decode().splitlines()
    assert "Sitemap: http://testserver/sitemap.xml" in lines
    assert "User-agent: *" in lines
