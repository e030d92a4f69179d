"""The Smartable-shaped JSON API: shape, paging, visibility, conditional GET, JSON errors."""

import json

import pytest
from django.urls import reverse

from articles import api
from tests import feeds_data as data


@pytest.fixture
def news(db):
    return data.newsroom()


def news_url(topic, page=1):
    return reverse("articles:api_news", kwargs={"slug": topic.slug, "page": page})


def get_json(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def test_topic_page_has_the_smartable_shape(client, news):
    body = get_json(client, news_url(news["ai"]))
    assert set(body) == {"page", "value", "nextPage"}
    assert body["page"] == 1 and body["nextPage"] is None
    # Published stories of the topic and its child topic, newest first; no related-only, no drafts.
    titles = [value["title"] for value in body["value"]]
    assert titles == [news["lead"].title, news["more"].title, news["waymo_lead"].title]
    value = body["value"][0]
    assert value["webUrl"] == news["lead"].web_url
    assert value["excerpt"] == news["lead"].excerpt
    assert value["publishedDateTime"].endswith("Z")
    assert value["heat"] == 90
    assert value["images"] == [{"url": news["lead"].images.get().url, "width": 640, "height": 360}]
    assert value["provider"] == {"name": "TechCrunch", "domain": "techcrunch.com", "images": []}
    assert value["topics"] == ["Computer Vision"]
    assert value["type"] == "article" and value["locale"] == "en-US"
    assert value["cluster"] == "http://testserver" + news["ibm"].get_absolute_url()
    assert "ampWebUrl" not in value  # unknown optional URLs are left out, as in the files


def test_an_empty_excerpt_is_kept_as_the_files_keep_it(client, news):
    type(news["lead"]).objects.filter(pk=news["lead"].pk).update(excerpt="")
    assert get_json(client, news_url(news["vision"]))["value"][0]["excerpt"] == ""


def test_unknown_heat_is_minus_one_as_in_the_files(client, news):
    type(news["lead"]).objects.filter(pk=news["lead"].pk).update(heat=None)
    assert get_json(client, news_url(news["vision"]))["value"][0]["heat"] == -1


def test_pages_follow_next_page(client, news, monkeypatch):
    monkeypatch.setattr(api, "PAGE_SIZE", 2)
    first = get_json(client, news_url(news["ai"]))
    assert first["nextPage"] == 2 and len(first["value"]) == 2
    second = get_json(client, news_url(news["ai"], first["nextPage"]))
    assert second["page"] == 2 and second["nextPage"] is None and len(second["value"]) == 1
    seen = [v["title"] for v in first["value"] + second["value"]]
    assert len(set(seen)) == 3


def test_all_topics_endpoint(client, news):
    body = get_json(client, reverse("articles:api_news_all", kwargs={"page": 1}))
    assert len(body["value"]) == 3


@pytest.mark.parametrize(
    "path",
    [
        "/api/news/no-such-topic/page1/index.json",
        "/api/news/artificial-intelligence/page0/index.json",
        "/api/news/artificial-intelligence/page2/index.json",
        "/api/news/artificial-intelligence/pageX/index.json",
        "/api/nothing-here",
    ],
)
def test_errors_are_json_404(client, news, path):
    body = get_json(client, path, status=404)
    assert body["error"]


def test_unpublished_appear_only_after_publishing(client, news):
    url = news_url(news["ai"])
    assert news["hidden"].title not in client.get(url).content.decode()
    data.set_published(news["hidden"], True)
    assert news["hidden"].title in client.get(url).content.decode()


def test_conditional_get(client, news):
    data.age_everything()
    url = news_url(news["ai"])
    first = client.get(url)
    assert "max-age" in first["Cache-Control"]
    assert client.get(url, headers={"if-none-match": first["ETag"]}).status_code == 304
    since = {"if-modified-since": first["Last-Modified"]}
    assert client.get(url, headers=since).status_code == 304
    data.set_published(news["hidden"], True)
    assert client.get(url, headers={"if-none-match": first["ETag"]}).status_code == 200
    assert client.get(url, headers=since).status_code == 200
