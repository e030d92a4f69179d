"""Story clusters: which stories cover one event, and each cluster's derived fields.

Entry points used by the rest of the site:

- ``update_for_articles(ids)``: the loader calls it after a load with the stories
  it created or changed; only they and their candidates are (re)grouped.
- ``refresh_clusters(ids)``: recompute lead, visibility, counts, score and topic
  rows of clusters whose members or flags changed (publish/unpublish call it).
"""

import math

from django.db import transaction
from django.utils import timezone

from .models import Article, Cluster, ClusterTopic, Topic

# Lobsters' shape: the time term grows by one every SCORE_TIME_CONSTANT seconds,
# so a cluster ten times as strong ranks like one that much newer; no decay job.
SCORE_TIME_CONSTANT = 45000
# Unknown heat (-1) and quality are not zero: they count as a middling story.
UNKNOWN_STRENGTH = 50


def lead_sort_key(article):
    """Best first: quality, then heat, then earliest."""
    quality = article.quality if article.quality is not None else -1
    heat = article.heat if article.heat is not None else -1
    published = article.published_at.timestamp() if article.published_at else float("inf")
    return (-quality, -heat, published, article.pk)


def cluster_score(lead, outlet_count):
    if lead is None:
        return 0.0
    strength = lead.heat if lead.heat is not None else lead.quality
    if strength is None:
        strength = UNKNOWN_STRENGTH
    points = max(strength, 1) * (1 + 0.5 * max(outlet_count - 1, 0))
    when = lead.published_at or lead.first_seen_at
    return math.log10(points) + when.timestamp() / SCORE_TIME_CONSTANT


def _topic_ancestry(topic_ids):
    """The topics with all their ancestors, so parent pages include children's clusters."""
    parents = dict(Topic.objects.values_list("pk", "parent_id"))
    expanded = set()
    for topic_id in topic_ids:
        node = topic_id
        while node is not None and node not in expanded:
            expanded.add(node)
            node = parents.get(node)
    return expanded


@transaction.atomic
def refresh_clusters(cluster_ids):
    """Recompute the derived fields of the given clusters from their members."""
    cluster_ids = set(cluster_ids)
    if not cluster_ids:
        return
    members = {}
    for article in Article.objects.filter(cluster_id__in=cluster_ids).only(
        "pk",
        "cluster_id",
        "quality",
        "heat",
        "published_at",
        "first_seen_at",
        "published",
        "is_file_backed",
        "provider_id",
    ):
        members.setdefault(article.cluster_id, []).append(article)
    topic_rows = {}
    for cluster_id, topic_id in Article.topics.through.objects.filter(
        article__cluster_id__in=cluster_ids, article__published=True, article__is_file_backed=True
    ).values_list("article__cluster_id", "topic_id"):
        topic_rows.setdefault(cluster_id, set()).add(topic_id)

    now = timezone.now()
    clusters = Cluster.objects.filter(pk__in=cluster_ids)
    for cluster in clusters:
        stories = members.get(cluster.pk, [])
        candidates = [a for a in stories if a.is_file_backed and a.published]
        lead = min(candidates, key=lead_sort_key) if candidates else None
        visible = [
            a for a in stories if a.published or (a.published is None and not a.is_file_backed)
        ]
        cluster.lead = lead
        cluster.is_public = lead is not None
        cluster.story_count = len(visible)
        cluster.outlet_count = len({a.provider_id for a in visible if a.provider_id})
        if lead is not None:
            cluster.published_at = lead.published_at or lead.first_seen_at
        elif stories:
            cluster.published_at = min(
                (a.published_at or a.first_seen_at for a in stories), default=None
            )
        cluster.score = cluster_score(lead, cluster.outlet_count)
        cluster.updated_at = now
    Cluster.objects.bulk_update(
        clusters,
        ["lead", "is_public", "story_count", "outlet_count", "published_at", "score", "updated_at"],
    )

    ClusterTopic.objects.filter(cluster_id__in=cluster_ids).delete()
    rows = []
    for cluster in clusters:
        if not cluster.is_public:
            continue
        for topic_id in _topic_ancestry(topic_rows.get(cluster.pk, ())):
            rows.append(
                ClusterTopic(
                    cluster=cluster,
                    topic_id=topic_id,
                    published_at=cluster.published_at,
                    score=cluster.score,
                )
            )
    ClusterTopic.objects.bulk_create(rows, batch_size=500)
    Cluster.objects.filter(pk__in=cluster_ids, story_count=0, articles__isnull=True).delete()


@transaction.atomic
def update_for_articles(article_ids):
    """Give every new story a cluster and refresh the clusters the given stories touch."""
    article_ids = set(article_ids)
    if not article_ids:
        return
    unclustered = Article.objects.filter(pk__in=article_ids, cluster__isnull=True).only(
        "pk", "slug"
    )
    for article in unclustered:
        cluster = Cluster.objects.create(slug=article.slug)
        Article.objects.filter(pk=article.pk).update(cluster=cluster)
    refresh_clusters(
        Article.objects.filter(pk__in=article_ids).values_list("cluster_id", flat=True).distinct()
    )
