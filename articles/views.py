"""Reader pages. Each runs a fixed number of queries whatever the size of the lists shown."""

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, prefetch_related_objects
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from aggregator.middleware import is_anonymous_read

from . import versioning
from .clustering import coverage_for, related_reading_for
from .filters import ClusterFilter, StoryFilter, TopicClusterFilter, Unfiltered
from .models import (
    Article,
    Cluster,
    ClusterAlias,
    ClusterTopic,
    Provider,
    Topic,
)
from .pagination import compiled_ids, paginate_ids

TOP_ON_HOME = 5
# Outlets named on a "More:" line before "and N more".
MORE_OUTLETS = 5
DIRECTORY_CACHE_SECONDS = 3600


def clusters_with_coverage(ids):
    """The public clusters ``ids`` in that order, each with ``coverage`` and its "More:" line.

    Four queries for any number of clusters: clusters with leads and outlets,
    lead images, outlet logos, and every coverage line of the page at once.
    """
    ids = list(ids)
    by_id = (
        Cluster.objects.select_related("lead__provider")
        .prefetch_related("lead__images", "lead__provider__images")
        .in_bulk(ids)
    )
    clusters = [by_id[pk] for pk in ids if pk in by_id]
    coverage = coverage_for(clusters)
    for cluster in clusters:
        cluster.coverage = coverage[cluster.pk]
        cluster.more = more_line(cluster)
    return clusters


def cluster_entries(request, items, version):
    """Rendered list entries for ``items``, pairs of (cluster id, heading level): {pair: html}.

    Entries are the same for every anonymous reader until content changes, so
    each is cached under the content version and shared by every list showing
    it; only the misses are loaded (the four queries of ``clusters_with_coverage``)
    and rendered. Editors, and sites with ``ENTRY_CACHE_SECONDS = 0``, always get
    fresh ones. The whole-response cache (``PAGE_CACHE_SECONDS``) does not decide
    this: a page it misses still reuses the entries.
    """
    keys = {item: f"reader:entry:v{version}:{item[0]}:h{item[1]}" for item in items}
    use_cache = shares_entries(request)
    found = cache.get_many(list(keys.values())) if use_cache else {}
    missing = [item for item in items if keys[item] not in found]
    if not missing:
        return {item: mark_safe(found[key]) for item, key in keys.items()}  # noqa: S308
    loaded = {c.pk: c for c in clusters_with_coverage(dict.fromkeys(pk for pk, _ in missing))}
    fresh = {
        keys[(pk, level)]: render_to_string(
            "articles/_cluster.html", {"cluster": loaded[pk], "level": level}
        )
        for pk, level in missing
        if pk in loaded
    }
    if use_cache:
        cache.set_many(fresh, settings.ENTRY_CACHE_SECONDS)
    found.update(fresh)
    # Our own template's output, escaped when it was rendered.
    return {item: mark_safe(found[key]) for item, key in keys.items() if key in found}  # noqa: S308


def shares_entries(request):
    """Anonymous GETs share cached entries; editors (any session cookie) see fresh ones."""
    return settings.ENTRY_CACHE_SECONDS > 0 and is_anonymous_read(request)


def more_line(cluster):
    """Techmeme's "More:" line: one story per outlet, the rest counted."""
    lead_outlet = cluster.lead.provider_id if cluster.lead_id else None
    shown, outlets = [], {lead_outlet}
    for story in cluster.coverage:
        new_outlet = story.provider_id is None or story.provider_id not in outlets
        if len(shown) < MORE_OUTLETS and new_outlet:
            shown.append(story)
            outlets.add(story.provider_id)
    return {"stories": shown, "hidden": len(cluster.coverage) - len(shown)}


def topic_directory(version, show_descriptions=False):
    """The topic tree with counts, rendered, cached until content next changes.

    Counting is an aggregate over every topic row, and the tree's template
    includes itself once per topic; the content version in the key makes a
    publish show at once on every app server sharing the cache.
    """
    key = f"reader:topic-directory:v{version}:{int(show_descriptions)}"

    def tree():
        context = {"directory": build_topic_directory(), "show_descriptions": show_descriptions}
        return render_to_string("articles/_directory.html", context)

    # Our own template's output, escaped when it was rendered.
    return mark_safe(cache.get_or_set(key, tree, DIRECTORY_CACHE_SECONDS))  # noqa: S308


def build_topic_directory():
    """Top-level topics, each with ``child_list``; every topic carries ``cluster_count``."""
    counts = dict(
        ClusterTopic.objects.filter(cluster__in=Cluster.objects.public())
        .values_list("topic")
        .annotate(n=Count("pk"))
    )
    topics = list(Topic.objects.order_by("name"))
    by_id = {topic.pk: topic for topic in topics}
    for topic in topics:
        topic.cluster_count = counts.get(topic.pk, 0)
        topic.child_list = []
    roots = []
    for topic in topics:
        parent = by_id.get(topic.parent_id)
        (parent.child_list if parent else roots).append(topic)
    return roots


def cluster_filter(filter_class, request, rows, version, scope):
    """The filter over ``rows()``, the list's queryset; its outlet menu, the same for every
    reader until content changes, is cached per content version and ``scope``, and so
    is the rendered form of a list that no filter narrows (``Unfiltered``)."""

    def outlets():
        key = f"reader:outlets:v{version}:{scope}"
        find = lambda: filter_class.outlet_choices(rows())  # noqa: E731
        return cache.get_or_set(key, find, DIRECTORY_CACHE_SECONDS)

    if not Unfiltered.applies(filter_class, request.GET):
        return filter_class(request.GET or None, queryset=rows(), outlets=outlets)

    def fields():
        key = f"reader:filter-fields:v{version}:{scope}"
        blank = lambda: filter_fields(filter_class(None, queryset=rows(), outlets=outlets))  # noqa: E731
        # Our own template's output, escaped when it was rendered.
        return mark_safe(cache.get_or_set(key, blank, DIRECTORY_CACHE_SECONDS))  # noqa: S308

    return Unfiltered(filter_class, request.GET, rows, fields, outlets=outlets)


def filter_fields(filterset):
    return render_to_string("articles/_filter_fields.html", {"filter": filterset})


def list_page(request, filterset, ids_field="pk", scope=None):
    """The requested page of the ids the filter selects (404 past the end).

    A list of ``scope`` that no filter narrows is the same query every time, so
    its SQL is compiled once.
    """

    def ids():
        return filterset.results().values_list(ids_field, flat=True)

    if scope is not None and isinstance(filterset, Unfiltered):
        return paginate_ids(compiled_ids((scope, ids_field), ids), request.GET.get("page"))
    return paginate_ids(ids(), request.GET.get("page"))


def home(request):
    version = versioning.for_request(request).version
    filterset = cluster_filter(ClusterFilter, request, Cluster.objects.public, version, "home")
    page = list_page(request, filterset, scope="home")
    # A short front page reads better as one list than as the same stories twice.
    show_top = page.number == 1 and not filterset.active and len(page.ids) > TOP_ON_HOME
    top_query = lambda: Cluster.objects.public().top().values_list("pk", flat=True)  # noqa: E731
    top_ids = compiled_ids(("home-top", "pk"), top_query)[0:TOP_ON_HOME] if show_top else []
    top = [(pk, 2) for pk in top_ids]
    # Stories already shown as top stories are not repeated below them.
    latest = [(pk, 3 if top else 2) for pk in page.ids if pk not in top_ids]
    entries = cluster_entries(request, top + latest, version)
    return render(
        request,
        "articles/home.html",
        {
            "top_entries": joined(entries[item] for item in top if item in entries),
            "entries": joined((entries[item] for item in latest if item in entries), "\n"),
            "page": page,
            "filter": filterset,
            "directory": topic_directory(version),
        },
    )


def topic_list(request):
    directory = topic_directory(versioning.for_request(request).version, show_descriptions=True)
    return render(request, "articles/topic_list.html", {"directory": directory})


def topic_detail(request, slug):
    version = versioning.for_request(request).version
    topic, subtopics = topic_and_subtopics(slug, version)
    scope = f"topic:{topic.pk}"

    def rows():
        return ClusterTopic.objects.public().filter(topic=topic)

    filterset = cluster_filter(TopicClusterFilter, request, rows, version, scope)
    page = list_page(request, filterset, ids_field="cluster_id", scope=scope)
    return render(
        request,
        "articles/topic.html",
        {
            "topic": topic,
            "subtopics": subtopics,
            "entries": joined(
                cluster_entries(request, [(pk, 2) for pk in page.ids], version).values(), "\n"
            ),
            "page": page,
            "filter": filterset,
        },
    )


def topic_and_subtopics(slug, version):
    """The topic (its parent selected) and the rendered menu of its child topics, or a 404.

    The same for every request until content changes, so kept under the content
    version: two queries and a template loop fewer on every topic page.
    """
    key = f"reader:topic:v{version}:{slug}"
    found = cache.get(key)
    if found is None:
        topic = get_object_or_404(Topic.objects.select_related("parent"), slug=slug)
        children = list(topic.children.order_by("name"))
        found = (topic, render_to_string("articles/_subtopics.html", {"children": children}))
        cache.set(key, found, DIRECTORY_CACHE_SECONDS)
    topic, menu = found
    # Our own template's output, escaped when it was rendered.
    return topic, mark_safe(menu)  # noqa: S308


def joined(entries, end=""):
    """Rendered entries as one string, each followed by ``end``; empty when there are none.

    One template variable instead of a loop over twenty.
    """
    # Each entry is our own template's output, escaped when it was rendered.
    return mark_safe("".join(f"{entry}{end}" for entry in entries))  # noqa: S308


def cluster_context(cluster, members=None):
    """Everything the cluster page shows; the admin preview passes ``members`` to include drafts."""
    members = members if members is not None else Article.objects.coverage_visible()
    stories = list(
        members.filter(cluster=cluster)
        .select_related("provider")
        .prefetch_related("images", "provider__images")
        .order_by("published_at", "pk")
    )
    fallback = stories[0] if stories else None  # a preview of a cluster without a lead
    lead = next((s for s in stories if s.pk == cluster.lead_id), fallback)
    # Best first, as ``coverage_for`` orders the lines under list entries.
    coverage = sorted(
        (s for s in stories if s is not lead),
        key=lambda s: (
            s.quality is None,
            -(s.quality or 0),
            s.published_at or s.first_seen_at,
            s.pk,
        ),
    )
    return {
        "cluster": cluster,
        "lead": lead,
        "coverage": coverage,
        "timeline": stories,
        "related": related_reading(cluster),
        "topics": cluster.topics.order_by("name"),
    }


def related_reading(cluster):
    """Visible stories the cluster's published members list that belong to other events."""
    stories = related_reading_for([cluster])[cluster.pk]
    prefetch_related_objects(stories, "provider__images")
    return stories


def cluster_detail(request, slug):
    cluster = Cluster.objects.public().filter(slug=slug).first()
    if cluster is None:
        alias = ClusterAlias.objects.filter(slug=slug, cluster__in=Cluster.objects.public())
        alias = alias.select_related("cluster").first()
        if alias is None:
            raise Http404("No published story lives at this address.")
        return redirect(alias.cluster, permanent=True)
    return render(request, "articles/cluster.html", cluster_context(cluster))


def provider_detail(request, domain):
    # No stored domain holds a NUL, and PostgreSQL refuses one inside a query.
    if "\x00" in domain:
        raise Http404("No outlet has that domain.")
    provider = get_object_or_404(Provider.objects.prefetch_related("images"), domain=domain)
    stories = Article.objects.coverage_visible().filter(
        provider=provider, cluster__in=Cluster.objects.public()
    )
    filterset = StoryFilter(request.GET or None, queryset=stories)
    page = list_page(request, filterset)
    by_id = Article.objects.select_related("cluster").prefetch_related("images").in_bulk(page.ids)
    return render(
        request,
        "articles/provider.html",
        {
            "provider": provider,
            "stories": [by_id[pk] for pk in page.ids if pk in by_id],
            "page": page,
            "filter": filterset,
        },
    )
