"""RSS 2.0, Atom and JSON Feed 1.1 for every scope: all stories, a topic, a provider, a story.

One ``Feed`` class serves them all. A *scope* resolves the URL's object and
turns its public content into ``Entry`` rows (clusters for the site and topics,
single stories for providers and developing stories); the three generators
write the same entries in their own format. Conditional GET wraps each feed
(``articles.conditional``), so an unchanged repeat never reaches this code.
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.db.models import Exists, F, OuterRef
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import feedgenerator
from django.utils.html import format_html, format_html_join
from django.utils.xmlutils import SimplerXMLGenerator
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from . import conditional
from .clustering import coverage_for
from .models import (
    Article,
    ArticleImage,
    Cluster,
    ClusterAlias,
    Provider,
    Topic,
    public_clusters,
)

MAX_ITEMS = 50
# Stories newest first; undated ones last on every database (PostgreSQL sorts NULL first).
NEWEST_FIRST = (F("published_at").desc(nulls_last=True), "-pk")
MEDIA_NS = "http://search.yahoo.com/mrss/"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
# GUIDs are tag URIs (RFC 4151) under the site's host and this fixed date, so
# they never depend on an outlet's URL, a title, or the host a reader used.
GUID_DATE = "2026"

# What XML 1.0 cannot carry (C0 controls but tab/LF/CR, surrogates, U+FFFE/FFFF) and the
# C1 controls it allows but no reader should see.
XML_INVALID = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(value):
    """``value`` with XML-invalid characters removed, recursing into lists and dicts."""
    if isinstance(value, str):
        return XML_INVALID.sub("", value)
    if isinstance(value, list | tuple):
        return type(value)(xml_safe(item) for item in value)
    if isinstance(value, dict):
        return {key: xml_safe(item) for key, item in value.items()}
    return value


def guid(kind, slug):
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"tag:{host},{GUID_DATE}:{kind}/{slug}"


@dataclass
class Entry:
    """One feed item, whatever the format."""

    guid: str
    title: str
    link: str
    summary: str
    html: str
    published: datetime | None
    updated: datetime | None
    author: str | None
    categories: list
    image: ArticleImage | None


def lead_image(article):
    images = article.images.all()  # prefetched; ArticleImage orders by position
    return images[0] if images else None


def story_html(article, permalink, coverage=()):
    """The excerpt, the coverage lines (one per story, with its outlet) and our permalink."""
    parts = [format_html("<p>{}</p>", article.excerpt)] if article.excerpt else []
    if coverage:
        lines = format_html_join(
            "",
            '<li><a href="{}" rel="noopener noreferrer">{}</a> ({})</li>',
            ((story.link, story.title, outlet_name(story)) for story in coverage),
        )
        parts.append(format_html("<p>More coverage:</p><ul>{}</ul>", lines))
    parts.append(format_html('<p><a href="{}">Full coverage</a></p>', permalink))
    return "".join(parts)


def outlet_name(article):
    return str(article.provider) if article.provider_id else urlsplit(article.link).hostname


def with_story_details(stories):
    """Each story's cluster, provider, images (in position order) and topics, in three queries."""
    return stories.select_related("cluster", "provider").prefetch_related("images", "topics")


def visible_stories():
    """Stories with a public home: published, or coverage lines of a public cluster."""
    return Article.objects.coverage_visible().filter(public_clusters("cluster__"))


class Scope:
    """What one feed covers. Subclasses resolve their object from the URL."""

    name = ""
    route = ""

    def __init__(self, request, obj=None):
        self.request = request
        self.obj = obj

    @classmethod
    def resolve(cls, request, **kwargs):
        return cls(request)

    @classmethod
    def moved(cls, **kwargs):
        """The URL kwargs of where a missing object now lives, or None."""
        return None

    def validators(self):
        raise NotImplementedError

    def entries(self):
        raise NotImplementedError

    def absolute(self, url):
        return self.request.build_absolute_uri(url)

    def cluster_entries(self, clusters):
        # Categories are the cluster's topics (ancestors included), not the lead's own.
        clusters = clusters.select_related("lead__provider").prefetch_related(
            "lead__images", "topics"
        )
        clusters = list(clusters[:MAX_ITEMS])
        coverage = coverage_for(clusters)
        entries = []
        for cluster in clusters:
            lead, permalink = cluster.lead, self.absolute(cluster.get_absolute_url())
            entries.append(
                Entry(
                    guid=guid("cluster", cluster.slug),
                    title=lead.title,
                    link=lead.link,
                    summary=lead.excerpt,
                    html=story_html(lead, permalink, coverage.get(cluster.pk, ())),
                    published=cluster.published_at or lead.first_seen_at,
                    updated=cluster.updated_at,
                    author=outlet_name(lead),
                    categories=[topic.name for topic in cluster.topics.all()],
                    image=lead_image(lead),
                )
            )
        return entries

    def story_entries(self, stories):
        stories = with_story_details(stories).order_by(*NEWEST_FIRST)
        stories = stories[:MAX_ITEMS]
        entries = []
        for story in stories:
            permalink = self.absolute(story.get_absolute_url())
            entries.append(
                Entry(
                    guid=guid("story", story.slug),
                    title=story.title,
                    link=story.link,
                    summary=story.excerpt,
                    html=story_html(story, permalink),
                    published=story.published_at or story.first_seen_at,
                    updated=story.updated_at,
                    author=outlet_name(story),
                    categories=[topic.name for topic in story.topics.all()],
                    image=lead_image(story),
                )
            )
        return entries


class SiteScope(Scope):
    name = "all"
    route = "feeds/all"

    @property
    def title(self):
        return settings.SITE_NAME

    @property
    def description(self):
        return settings.SITE_DESCRIPTION

    @property
    def link(self):
        return reverse("articles:home")

    def validators(self):
        return conditional.site_validators()

    def entries(self):
        return self.cluster_entries(Cluster.objects.public().latest())


class TopicScope(Scope):
    name = "topic"
    route = "feeds/topics/<slug:slug>"

    @classmethod
    def resolve(cls, request, slug):
        return cls(request, get_object_or_404(Topic, slug=slug))

    @property
    def title(self):
        return f"{self.obj.name} · {settings.SITE_NAME}"

    @property
    def description(self):
        return self.obj.description or f"Stories about {self.obj.name} from every outlet."

    @property
    def link(self):
        return self.obj.get_absolute_url()

    def validators(self):
        return conditional.topic_validators(self.obj)

    def entries(self):
        # ClusterTopic rows already include ancestor topics, so children's stories are here.
        return self.cluster_entries(
            Cluster.objects.public().filter(clustertopic__topic=self.obj).latest()
        )


class ProviderScope(Scope):
    name = "provider"
    route = "feeds/providers/<str:domain>"

    @classmethod
    def resolve(cls, request, domain):
        return cls(request, get_object_or_404(Provider, domain=domain))

    @property
    def title(self):
        return f"{self.obj} · {settings.SITE_NAME}"

    @property
    def description(self):
        return f"Stories from {self.obj} ({self.obj.domain})."

    @property
    def link(self):
        return self.obj.get_absolute_url()

    def validators(self):
        return conditional.provider_validators(self.obj)

    def entries(self):
        return self.story_entries(visible_stories().filter(provider=self.obj))


class ClusterScope(Scope):
    """A developing story: each outlet's coverage is an item as it joins."""

    name = "cluster"
    route = "feeds/stories/<slug:slug>"

    @classmethod
    def resolve(cls, request, slug):
        clusters = Cluster.objects.public().select_related("lead")
        return cls(request, get_object_or_404(clusters, slug=slug))

    @classmethod
    def moved(cls, slug):
        """A story merged into another keeps its feed address: it redirects to the survivor's."""
        alias = ClusterAlias.objects.filter(slug=slug, cluster__in=Cluster.objects.public())
        new_slug = alias.values_list("cluster__slug", flat=True).first()
        return new_slug and {"slug": new_slug}

    @property
    def title(self):
        return f"{self.obj.lead.title} · {settings.SITE_NAME}"

    @property
    def description(self):
        return f"Every outlet's coverage of “{self.obj.lead.title}” as it joins."

    @property
    def link(self):
        return self.obj.get_absolute_url()

    def validators(self):
        return conditional.cluster_validators(self.obj)

    def entries(self):
        return self.story_entries(Article.objects.coverage_visible().filter(cluster=self.obj))


SCOPES = [SiteScope, TopicScope, ProviderScope, ClusterScope]


class XmlSafeMixin:
    """Strip XML-invalid characters from everything before it reaches the writer."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **xml_safe(kwargs))

    def add_item(self, **kwargs):
        super().add_item(**xml_safe(kwargs))


class MediaRssFeed(XmlSafeMixin, feedgenerator.Rss201rev2Feed):
    """RSS 2.0 plus the lead image (Media RSS) and ``atom:updated``, which RSS lacks."""

    def rss_attributes(self):
        return {**super().rss_attributes(), "xmlns:media": MEDIA_NS}

    def add_item_elements(self, handler, item):
        super().add_item_elements(handler, item)
        if item["updateddate"] is not None:
            handler.addQuickElement("atom:updated", feedgenerator.rfc3339_date(item["updateddate"]))
        add_media_content(handler, item)


class MediaAtomFeed(XmlSafeMixin, feedgenerator.Atom1Feed):
    """Atom 1.0 plus the lead image (Media RSS)."""

    def root_attributes(self):
        return {**super().root_attributes(), "xmlns:media": MEDIA_NS}

    def add_item_elements(self, handler, item):
        super().add_item_elements(handler, item)
        add_media_content(handler, item)


def add_media_content(handler, item):
    image = item.get("image")
    if image:
        attrs = {"url": image["url"], "medium": "image"}
        attrs.update({key: str(image[key]) for key in ("width", "height") if image.get(key)})
        handler.addQuickElement("media:content", "", attrs)


class JsonFeed(XmlSafeMixin, feedgenerator.SyndicationFeed):
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1) from the same items."""

    content_type = "application/feed+json; charset=utf-8"

    def write(self, outfile, encoding):
        feed = {
            "version": JSON_FEED_VERSION,
            "title": self.feed["title"],
            "home_page_url": self.feed["link"],
            "feed_url": self.feed["feed_url"],
            "description": self.feed["description"],
            "language": self.feed["language"],
            "items": [self.json_item(item) for item in self.items],
        }
        json.dump(feed, outfile, ensure_ascii=False)

    @staticmethod
    def json_item(item):
        data = {
            "id": item["unique_id"],
            "url": item["link"],
            "title": item["title"],
            "content_html": item["description"],
            "summary": item["summary"],
            "date_published": item["pubdate"] and item["pubdate"].isoformat(),
            "date_modified": item["updateddate"] and item["updateddate"].isoformat(),
            "tags": list(item["categories"]),
        }
        if item["author_name"]:
            data["authors"] = [{"name": item["author_name"]}]
        if item.get("image"):
            data["image"] = item["image"]["url"]
        return {key: value for key, value in data.items() if value not in (None, "", [])}


FORMATS = {"rss": MediaRssFeed, "atom": MediaAtomFeed, "json": JsonFeed}


class StoryFeed(Feed):
    """Every feed of the site: the resolved scope picks the content, ``feed_type`` the format."""

    def __init__(self, feed_type):
        self.feed_type = feed_type

    def get_object(self, request, scope):
        return scope

    def title(self, scope):
        return scope.title

    def description(self, scope):
        return scope.description

    def subtitle(self, scope):
        return scope.description

    def link(self, scope):
        return scope.link

    def feed_guid(self, scope):
        return guid("feed", scope.request.path.strip("/"))

    def author_name(self):
        return settings.SITE_NAME

    # Minutes a reader may wait between polls: the same as the responses' max-age.
    ttl = conditional.MAX_AGE // 60

    def items(self, scope):
        return scope.entries()

    def item_title(self, entry):
        return entry.title

    def item_link(self, entry):
        return entry.link

    def item_guid(self, entry):
        return entry.guid

    item_guid_is_permalink = False

    def item_description(self, entry):
        return entry.html

    def item_pubdate(self, entry):
        return entry.published

    def item_updateddate(self, entry):
        return entry.updated

    def item_author_name(self, entry):
        return entry.author

    def item_categories(self, entry):
        return entry.categories

    def item_extra_kwargs(self, entry):
        image = entry.image
        return {
            "summary": entry.summary,
            "image": image and {"url": image.url, "width": image.width, "height": image.height},
        }


def feed_view(scope_class, fmt):
    """The feed of ``scope_class`` in ``fmt``; the scope is resolved once per request."""
    feed = StoryFeed(FORMATS[fmt])

    @require_safe
    def view(request, **kwargs):
        try:
            scope = scope_class.resolve(request, **kwargs)
        except Http404:
            moved = scope_class.moved(**kwargs)
            if moved is None:
                raise
            return redirect(f"articles:feed_{scope_class.name}_{fmt}", permanent=True, **moved)
        return conditional.respond_conditionally(
            request, scope.validators(), lambda: feed(request, scope=scope)
        )

    return view


def feed_urlpatterns():
    """``feed_<scope>_<format>`` for every scope and format, e.g. ``feed_topic_atom``."""
    return [
        path(f"{scope.route}.{fmt}", feed_view(scope, fmt), name=f"feed_{scope.name}_{fmt}")
        for scope in SCOPES
        for fmt in FORMATS
    ]


def providers_with_stories():
    """Outlets with a public story, whose key can form a feed and page address."""
    # One probe of the outlet's index per outlet: ``pk__in`` visible stories read them all.
    visible = visible_stories().filter(provider_id=OuterRef("pk"))
    return Provider.objects.filter(Exists(visible)).exclude(domain__contains="/")


def topic_groups():
    """Every topic under its top-level topic: ``[(root, [root, child, ...]), ...]`` by name.

    One query; parent loops from topic files end at the first repeated topic.
    """
    topics = {topic.pk: topic for topic in Topic.objects.order_by("name")}

    def root_of(topic):
        seen = {topic.pk}
        while topic.parent_id in topics and topic.parent_id not in seen:
            topic = topics[topic.parent_id]
            seen.add(topic.pk)
        return topic

    groups = {}
    for topic in topics.values():
        groups.setdefault(root_of(topic).pk, []).append(topic)
    return [
        (topics[root], sorted(members, key=lambda topic: (topic.pk != root, topic.name)))
        for root, members in sorted(groups.items(), key=lambda group: topics[group[0]].name)
    ]


@require_safe
def feed_index(request):
    return render(
        request,
        "feeds/index.html",
        {"topic_groups": topic_groups(), "providers": providers_with_stories()},
    )


@require_safe
@cache_control(public=True, max_age=conditional.MAX_AGE)
def opml(request):
    """Every topic feed (RSS) as OPML 2.0, one folder per top-level topic."""
    response = HttpResponse(content_type="text/x-opml; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="feeds.opml"'
    handler = SimplerXMLGenerator(response, "utf-8", short_empty_elements=True)
    handler.startDocument()
    handler.startElement("opml", {"version": "2.0"})
    handler.startElement("head", {})
    handler.addQuickElement("title", xml_safe(f"{settings.SITE_NAME}: topic feeds"))
    handler.endElement("head")
    handler.startElement("body", {})

    def outline(title, feed_name, page_url, **kwargs):
        title = xml_safe(title)
        handler.addQuickElement(
            "outline",
            "",
            {
                "type": "rss",
                "text": title,
                "title": title,
                "xmlUrl": request.build_absolute_uri(reverse(feed_name, kwargs=kwargs)),
                "htmlUrl": request.build_absolute_uri(page_url),
            },
        )

    outline(settings.SITE_NAME, "articles:feed_all_rss", reverse("articles:home"))
    for root, members in topic_groups():
        folder = len(members) > 1
        if folder:
            handler.startElement("outline", {"text": xml_safe(root.name)})
        for topic in members:
            page = topic.get_absolute_url()
            outline(topic.name, "articles:feed_topic_rss", page, slug=topic.slug)
        if folder:
            handler.endElement("outline")
    handler.endElement("body")
    handler.endElement("opml")
    return response
