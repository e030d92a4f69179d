"""Template helpers for the reader pages: safe links, times, query strings, JSON-LD."""

import datetime
import json
from functools import lru_cache
from urllib.parse import urlsplit

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.core.cache import cache
from django.http import QueryDict
from django.template.loader import render_to_string
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from .. import versioning
from ..links import REMEMBERED, named_url, named_urls
from ..models import Topic

register = template.Library()

# Unused menus only occupy memory: a new content version never reads an old one.
NAV_CACHE_SECONDS = 3600
# Escapes that keep JSON inert inside <script> (as Django's json_script does).
JSON_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


@register.filter
def http_url(value):
    """The URL when it is http(s); empty otherwise, so templates can skip the link."""
    value = (value or "").strip()
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return ""
    return value if scheme in ("http", "https") else ""


@register.simple_tag
def outbound_link(url, text):
    """A link out to an outlet, or the bare text when the URL is not http(s)."""
    href = http_url(url)
    if not href:
        return conditional_escape(text)
    return format_html('<a href="{}" rel="noopener noreferrer">{}</a>', href, text)


@register.filter
def hostname(value):
    try:
        host = urlsplit(value or "").hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


@register.filter
def outlet(story):
    """The outlet's name for a story, falling back to its host."""
    if story.provider_id and story.provider.name:
        return story.provider.name
    return hostname(story.link) or "Unknown outlet"


def first_sized(images):
    """The first image with known dimensions and an http(s) URL."""
    for image in images:
        if image.width and image.height and http_url(image.url):
            return image
    return None


@register.filter
def first_image(article):
    """The article's first usable image (images prefetched)."""
    return first_sized(article.images.all())


@register.simple_tag
def outlet_name(story):
    """The outlet with its logo, linked to its page on this site (provider images prefetched)."""
    provider = story.provider if story.provider_id else None
    logo = first_sized(provider.images.all()) if provider else None
    logo_html = (
        format_html(
            '<img class="logo" src="{}" width="{}" height="{}" loading="lazy" alt="">',
            logo.url,
            logo.width,
            logo.height,
        )
        if logo
        else ""
    )
    provider_page = page_url(provider) if provider else ""
    name = outlet(story)
    name_html = format_html('<a href="{}">{}</a>', provider_page, name) if provider_page else name
    return format_html('<span class="outlet">{}{}</span>', logo_html, name_html)


@register.simple_tag
def amp_link(story):
    """A link to the story's AMP version when the file gives one."""
    amp = http_url(story.amp_web_url) or http_url(story.cdn_amp_web_url)
    if not amp:
        return ""
    return format_html(
        ' <a class="amp" href="{}" rel="noopener noreferrer">AMP'
        '<span class="visually-hidden"> version of “{}”</span></a>',
        amp,
        story.title,
    )


@register.simple_tag
def timestamp(value, precise=False):
    """``<time datetime>`` labelled relatively ("3 hours ago", "5 years ago"), full date on hover.

    ``precise`` labels with the date and time of day instead: a timeline of one
    day's coverage reads better as times than as "5 years ago" on every line.
    """
    if value is None:
        return ""
    local = timezone.localtime(value)
    full = format_date(local, "j F Y, H:i T")
    if precise:
        label = format_date(local, "j M Y, H:i")
    elif timezone.now() - value < datetime.timedelta(days=1):
        label = naturaltime(value)
    else:
        label = f"{timesince(value, depth=1)} ago"
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), full, label)


@register.simple_tag
def cached_url(name, **kwargs):
    """``{% url name key=value as var %}`` without a ``reverse()`` per use (articles.links).

    Like ``{% url ... as var %}``, an address that cannot be formed is empty.
    """
    try:
        return named_url(name, **kwargs)
    except NoReverseMatch:
        return ""


FEED_FORMATS = (
    ("rss", "application/rss+xml", "RSS"),
    ("atom", "application/atom+xml", "Atom"),
    ("json", "application/feed+json", "JSON Feed"),
)


@register.simple_tag(takes_context=True)
def feed_links(context):
    """Feed autodiscovery: the site's feeds, then the page's own (topic, outlet or cluster).

    Built here rather than by template includes: every page renders it, and the
    includes cost a third of a topic page's templates.
    """
    sets = [("all", {}, f"{context.get('site_name') or ''}: all stories")]
    topic, provider, cluster = (context.get(name) for name in ("topic", "provider", "cluster"))
    if getattr(topic, "slug", None):
        sets.append(("topic", {"slug": topic.slug}, topic.name))
    if getattr(provider, "domain", None):
        sets.append(("provider", {"domain": provider.domain}, provider.name or provider.domain))
    if getattr(cluster, "slug", None) and getattr(cluster, "is_public", False):
        lead = cluster.lead
        sets.append(
            ("cluster", {"slug": cluster.slug}, f"Developing story: {lead.title if lead else ''}")
        )
    links = []
    for kind, kwargs, label in sets:
        urls = named_urls([f"articles:feed_{kind}_{name}" for name, _, _ in FEED_FORMATS], **kwargs)
        # As ``{% url ... as var %}``: a key that cannot form an address links nothing.
        if urls[0]:
            links.append(feed_link_set(urls, label))
    return mark_safe("\n  ".join(links))  # noqa: S308 - each set is built by format_html


@lru_cache(maxsize=REMEMBERED)
def feed_link_set(urls, label):
    """The ``<link rel="alternate">`` of each format; a pure function of its arguments."""
    return "\n  ".join(
        format_html(
            '<link rel="alternate" type="{}" title="{} ({})" href="{}">', kind, label, title, url
        )
        for (_, kind, title), url in zip(FEED_FORMATS, urls, strict=True)
    )


@register.simple_tag(takes_context=True)
def query_url(context, **changes):
    """This page's query string with ``changes`` applied.

    Changing anything but ``page`` drops ``page`` (a new filter starts at page 1);
    a value of None or page 1 removes the key.
    """
    query = context["request"].GET
    # A copy without QueryDict.copy()'s deepcopy: the values are strings.
    params = QueryDict(mutable=True)
    for key, values in query.lists():
        params.setlist(key, list(values))
    if set(changes) - {"page"}:
        params.pop("page", None)
    for key, value in changes.items():
        if value is None or (key == "page" and str(value) == "1"):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


# Pagination is a tag rather than an include: every list renders it twice (links in
# the head, navigation under the list), and an include costs more than building it.


@register.simple_tag(takes_context=True)
def rel_links(context, page):
    """``<link rel="prev|next">`` for the head of a paginated list."""
    links = []
    if page.has_previous:
        url = query_url(context, page=page.previous_page_number)
        links.append(format_html('<link rel="prev" href="{}">', url))
    if page.has_next:
        url = query_url(context, page=page.next_page_number)
        links.append(format_html('<link rel="next" href="{}">', url))
    return mark_safe("\n  ".join(links))  # noqa: S308 - each link is built by format_html


@register.simple_tag(takes_context=True)
def pagination(context, page):
    """Previous and next links under a list, with the current page number."""
    if not page.has_other_pages:
        return ""
    steps = (
        (
            page.has_previous,
            '<a rel="prev" href="{}"><span aria-hidden="true">←</span> Previous'
            '<span class="visually-hidden"> page</span></a>',
            lambda: query_url(context, page=page.previous_page_number),
        ),
        (True, '<span class="current" aria-current="page">Page {}</span>', lambda: page.number),
        (
            page.has_next,
            '<a rel="next" href="{}">Next<span class="visually-hidden"> page</span> '
            '<span aria-hidden="true">→</span></a>',
            lambda: query_url(context, page=page.next_page_number),
        ),
    )
    parts = [format_html(markup, value()) for shown, markup, value in steps if shown]
    # Each part is built by format_html.
    links = mark_safe("\n  ".join(parts))  # noqa: S308
    return format_html('<nav class="pagination" aria-label="Pages">\n  {}\n</nav>', links)


@register.filter
def jsonld(data):
    """JSON for a ``<script type="application/ld+json">`` block, inert inside HTML."""
    text = json.dumps(data, ensure_ascii=False, default=str).translate(JSON_SCRIPT_ESCAPES)
    return mark_safe(text)  # noqa: S308 - every character that could close the script is escaped


@register.simple_tag(takes_context=True)
def news_article(context, lead, cluster):
    """The schema.org NewsArticle for a cluster's lead story."""
    if lead is None:
        return "{}"
    request = context["request"]
    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": lead.title,
        "url": request.build_absolute_uri(cluster.get_absolute_url()),
        "mainEntityOfPage": request.build_absolute_uri(cluster.get_absolute_url()),
    }
    if lead.excerpt:
        data["description"] = lead.excerpt
    if lead.published_at:
        data["datePublished"] = lead.published_at.isoformat()
    data["dateModified"] = cluster.updated_at.isoformat()
    if lead.provider_id:
        data["publisher"] = {"@type": "Organization", "name": outlet(lead)}
    image = first_image(lead)
    if image:
        data["image"] = [image.url]
    if http_url(lead.link):
        data["isBasedOn"] = lead.link
    return jsonld(data)


@register.simple_tag(takes_context=True)
def topic_nav(context):
    """The top-level topics for the site navigation (one query).

    Every page shows the same menu until content changes, so its HTML is shared
    under the content version (topics change only through loads and editors'
    edits, which bump it).
    """
    request = context.get("request")
    if request is None:
        return render_topic_nav()
    key = f"reader:topic-nav:v{versioning.for_request(request).version}"
    return mark_safe(cache.get_or_set(key, render_topic_nav, NAV_CACHE_SECONDS))  # noqa: S308


def render_topic_nav():
    topics = Topic.objects.filter(parent__isnull=True).order_by("name")
    return render_to_string("articles/_topic_nav.html", {"nav_topics": topics})


@register.simple_tag(takes_context=True)
def canonical_url(context):
    """This page's absolute URL without filters; only a page number past 1 is kept."""
    request = context.get("request")
    if request is None:
        return ""
    url = request.build_absolute_uri(request.path)
    page = request.GET.get("page", "")
    if page.isascii() and page.isdigit() and int(page) > 1:
        url += f"?page={int(page)}"
    return url


@register.filter
def page_url(obj):
    """``obj.get_absolute_url()``, or empty when the stored key cannot form a URL."""
    try:
        return obj.get_absolute_url()
    except NoReverseMatch:
        return ""
