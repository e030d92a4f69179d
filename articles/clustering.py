"""Story clusters: which stories cover one event, and each cluster's derived fields.

Entry points used by the rest of the site:

- ``update_for_articles(ids)``: the loader calls it after a load with the stories
  it created or changed; only they and their candidates are (re)grouped.
- ``recluster()``: rebuild every cluster from scratch (``manage.py recluster``);
  it reaches the same partition as any sequence of incremental updates.
- ``refresh_clusters(ids)``: recompute lead, visibility, counts, score and topic
  rows of clusters whose members or flags changed (publish/unpublish call it).
- ``merge_clusters()`` / ``split_article()``: editors' corrections, stored as
  ``ClusterOverride`` rows that every later load and rebuild applies again.
- ``coverage_for(clusters)`` / ``related_reading_for(clusters)``: what a page of
  clusters shows under each lead, in one query each.

How stories are grouped, in three steps:

1. File-backed stories are joined along edges: text similarity within a few days,
   a related listing backed by some similarity, or the same wire copy (same
   headline or opening) however late it ran. Edges are taken strongest first and
   a merge is refused when the cluster would span more than ``MAX_SPAN`` or read
   too unlike itself on average, so long noisy lists never chain into a blob.
2. Each related-only story joins the cluster, among those of the stories listing
   it, that it reads most like; if none is close enough it stays on its own and
   shows as "related reading".
3. Editors' overrides are applied in the order they were made.

Every step is a pure function of the stories involved (no corpus statistics,
ties broken by canonical URL), so the partition does not depend on load order,
and an incremental update that recomputes a closed neighbourhood (its candidates'
whole connected components) reaches exactly what a full rebuild would.
"""

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import versioning
from .models import (
    Article,
    Cluster,
    ClusterAlias,
    ClusterOverride,
    ClusterTopic,
    ModerationEvent,
    RelatedListing,
    Topic,
)
from .text_similarity import similarity, story_text

# Stories merely alike must run within WINDOW of each other; a cluster never
# spans more than MAX_SPAN, except for late re-runs of the same copy.
WINDOW = timedelta(days=5)
MAX_SPAN = timedelta(days=7)
# Thresholds on text_similarity.similarity(), tuned on the hand labels
# (tests/data/cluster_labels.json, `manage.py evaluate_clusters`).
TEXT_THRESHOLD = 0.30
LISTED_THRESHOLD = 0.20
LISTED_BONUS = 0.20
# Average similarity a merged cluster must keep: stops chains A~B~C~D.
GROUP_THRESHOLD = 0.25
RELATED_THRESHOLD = 0.42
# Above this many changed stories a load regroups everything in one pass (same result).
BULK_LOAD_STORIES = 2000

# Lobsters' shape: the time term grows by one every SCORE_TIME_CONSTANT seconds,
# so a cluster ten times as strong ranks like one that much newer; no decay job.
SCORE_TIME_CONSTANT = 45000
# Unknown heat (-1) and quality are not zero: they count as a middling story.
UNKNOWN_STRENGTH = 50

STORY_FIELDS = (
    "pk",
    "canonical_url",
    "slug",
    "is_file_backed",
    "title",
    "excerpt",
    "published_at",
    "first_seen_at",
    "cluster_id",
)


@dataclass(eq=False)
class Story:
    """What clustering needs of one Article."""

    pk: int
    url: str
    slug: str
    file_backed: bool
    time: object
    cluster_id: int
    text: object
    lists: set = field(default_factory=set)

    @classmethod
    def from_row(cls, row):
        return cls(
            pk=row["pk"],
            url=row["canonical_url"],
            slug=row["slug"],
            file_backed=row["is_file_backed"],
            time=row["published_at"] or row["first_seen_at"],
            cluster_id=row["cluster_id"],
            text=story_text(row["title"], row["excerpt"]),
        )


def _load_stories(queryset):
    stories = {row["pk"]: Story.from_row(row) for row in queryset.values(*STORY_FIELDS)}
    listings = RelatedListing.objects.filter(source_id__in=[s.pk for s in stories.values()])
    for source_id, target_id in listings.values_list("source_id", "target_id"):
        stories[source_id].lists.add(target_id)
    return stories


# --- Step 1: file-backed stories ---------------------------------------------


def edge_weight(a, b):
    """How strongly two file-backed stories belong together, or None if not at all."""
    if not set(a.text.copy_keys).isdisjoint(b.text.copy_keys):
        return 1.0 + LISTED_BONUS
    if abs(a.time - b.time) > WINDOW:
        return None
    score = similarity(a.text, b.text)
    if b.pk in a.lists or a.pk in b.lists:
        return score + LISTED_BONUS if score >= LISTED_THRESHOLD else None
    return score if score >= TEXT_THRESHOLD else None


class CandidateIndex:
    """Blocking for file-backed stories: shared tokens within the window, or a shared copy key."""

    def __init__(self, stories):
        self.by_pk = {s.pk: s for s in stories}
        postings = defaultdict(list)
        self.by_copy_key = defaultdict(list)
        for story in sorted(stories, key=lambda s: s.time):
            for token in story.text.tokens:
                postings[token].append(story)
            for key in story.text.copy_keys:
                self.by_copy_key[key].append(story)
        self.postings = {t: ([s.time for s in items], items) for t, items in postings.items()}

    def candidates(self, story):
        found = {}
        low, high = story.time - WINDOW, story.time + WINDOW
        for token in story.text.tokens:
            times, items = self.postings[token]
            for other in items[bisect_left(times, low) : bisect_right(times, high)]:
                found[other.pk] = other
        for key in story.text.copy_keys:
            for other in self.by_copy_key[key]:
                found[other.pk] = other
        for pk in story.lists:
            if pk in self.by_pk:
                found[pk] = self.by_pk[pk]
        found.pop(story.pk, None)
        return found.values()

    def edges(self, isolated=frozenset()):
        """Every (weight, a, b) edge once; ``isolated`` stories (split by editors) have none."""
        result = []
        for story in self.by_pk.values():
            if story.pk in isolated:
                continue
            for other in self.candidates(story):
                if other.pk in isolated or (other.url, other.pk) <= (story.url, story.pk):
                    continue
                weight = edge_weight(story, other)
                if weight is not None:
                    result.append((weight, story, other))
        # Strongest first; canonical URLs break ties so load order never matters.
        result.sort(key=lambda edge: (-edge[0], edge[1].url, edge[2].url))
        return result


def group_file_backed(stories, isolated=frozenset()):
    """Partition file-backed stories into events: {pk: group id (a member's pk)}."""
    index = CandidateIndex(stories)
    parent = {s.pk: s.pk for s in stories}
    members = {s.pk: [s] for s in stories}
    span = {s.pk: (s.time, s.time) for s in stories}
    pair_weights = {}

    def find(pk):
        while parent[pk] != pk:
            parent[pk] = parent[parent[pk]]
            pk = parent[pk]
        return pk

    def pair_weight(a, b):
        key = (a.pk, b.pk) if a.pk < b.pk else (b.pk, a.pk)
        if key not in pair_weights:
            weight = edge_weight(a, b)
            pair_weights[key] = weight if weight is not None else similarity(a.text, b.text)
        return pair_weights[key]

    def cohesive(left, right):
        total = sum(pair_weight(a, b) for a in members[left] for b in members[right])
        return total / (len(members[left]) * len(members[right])) >= GROUP_THRESHOLD

    late_copies = []
    for weight, a, b in index.edges(isolated):
        left, right = find(a.pk), find(b.pk)
        if left == right:
            continue
        start = min(span[left][0], span[right][0])
        end = max(span[left][1], span[right][1])
        if end - start > MAX_SPAN or not cohesive(left, right):
            if abs(a.time - b.time) > WINDOW and weight > 1:
                late_copies.append((a, b))
            continue
        parent[right] = left
        members[left].extend(members.pop(right))
        span[left] = (start, end)
    # A late re-run of wire copy joins its event whatever the span; it does not
    # widen the span other stories are measured against.
    for a, b in late_copies:
        left, right = find(a.pk), find(b.pk)
        if left != right:
            parent[right] = left
            members[left].extend(members.pop(right))
    return {pk: find(pk) for pk in parent}


# --- Step 2: related-only stories --------------------------------------------


def assign_related(story, groups):
    """The group a related-only story belongs to, or None to stand alone.

    ``groups`` maps a group key to the file-backed members of each cluster whose
    stories list ``story``. The best-matching member within the window wins;
    ties go to the group whose earliest member has the smaller canonical URL.
    """
    best_key, best_rank = None, None
    for key, members in groups.items():
        score = max(
            (
                similarity(story.text, member.text)
                for member in members
                if abs(member.time - story.time) <= WINDOW
            ),
            default=0.0,
        )
        if score < RELATED_THRESHOLD:
            continue
        rank = (-score, min(m.url for m in members))
        if best_rank is None or rank < best_rank:
            best_key, best_rank = key, rank
    return best_key


# --- Step 3: editors' overrides ----------------------------------------------


def _apply_overrides(labels, overrides):
    """Editors' merges and splits, oldest first, over ``labels`` ({pk: group label})."""
    for override in overrides:
        if override.article_id not in labels:
            continue
        if override.kind == ClusterOverride.KIND_SPLIT:
            labels[override.article_id] = ("split", override.article_id)
        elif override.other_article_id in labels:
            winner = labels[override.article_id]
            loser = labels[override.other_article_id]
            for pk, label in labels.items():
                if label == loser:
                    labels[pk] = winner


def _members_by_label(labels, stories):
    groups = defaultdict(list)
    for pk, label in labels.items():
        groups[label].append(stories[pk])
    return groups


def _partition(file_backed, related_ids, overrides):
    """The new grouping of the given stories: ({pk: label}, {pk: Story})."""
    split = {o.article_id for o in overrides if o.kind == ClusterOverride.KIND_SPLIT}
    roots = group_file_backed(list(file_backed.values()), isolated=split)
    labels = {pk: ("auto", root) for pk, root in roots.items()}
    # Overrides between file-backed stories shape the clusters related-only stories choose from.
    _apply_overrides(
        labels,
        [
            o
            for o in overrides
            if o.article_id in file_backed
            and (o.other_article_id is None or o.other_article_id in file_backed)
        ],
    )
    groups = _members_by_label(labels, file_backed)

    listed = RelatedListing.objects.filter(
        source_id__in=list(file_backed), target__is_file_backed=False
    )
    related_ids = set(related_ids) | set(listed.values_list("target_id", flat=True))
    related = _load_stories(Article.objects.filter(pk__in=related_ids, is_file_backed=False))
    listers = defaultdict(set)
    for source_id, target_id in RelatedListing.objects.filter(
        target_id__in=list(related), source__is_file_backed=True
    ).values_list("source_id", "target_id"):
        listers[target_id].add(source_id)
    # Listers outside the neighbourhood keep their clusters: read them as they are.
    outside = {pk for pks in listers.values() for pk in pks} - file_backed.keys()
    outside_cluster = dict(
        Article.objects.filter(pk__in=outside, cluster__isnull=False).values_list(
            "pk", "cluster_id"
        )
    )
    for story in _load_stories(
        Article.objects.filter(cluster_id__in=set(outside_cluster.values()), is_file_backed=True)
    ).values():
        groups[("cluster", story.cluster_id)].append(story)

    for story in related.values():
        if story.pk in split:
            labels[story.pk] = ("split", story.pk)
            continue
        candidates = {}
        for lister in listers[story.pk]:
            if lister in labels:
                candidates[labels[lister]] = groups[labels[lister]]
            elif lister in outside_cluster:
                key = ("cluster", outside_cluster[lister])
                candidates[key] = groups[key]
        labels[story.pk] = assign_related(story, candidates) or ("alone", story.pk)
    _apply_overrides(
        labels, [o for o in overrides if o.article_id in related or (o.other_article_id in related)]
    )
    return labels, {**file_backed, **related}


def _neighbour_ids(story):
    """File-backed stories with an edge to ``story``, found in the database."""
    window = (story.time - WINDOW, story.time + WINDOW)
    nearby = (
        Q(published_at__range=window)
        | Q(published_at__isnull=True, first_seen_at__range=window)
        | Q(pk__in=story.lists)
        | Q(listings__target_id=story.pk)
    )
    for key in story.text.copy_keys:
        # Every story sharing the key contains this word (stems only drop letters).
        word = max(key[2:].split(), key=len).removesuffix("y")
        nearby |= Q(title__icontains=word) if key.startswith("t:") else Q(excerpt__icontains=word)
    candidates = _load_stories(
        Article.objects.filter(nearby, is_file_backed=True).exclude(pk=story.pk).distinct()
    )
    return {pk for pk, other in candidates.items() if edge_weight(story, other) is not None}


def _override_partners(overrides):
    partners = defaultdict(set)
    for override in overrides:
        if override.other_article_id:
            partners[override.article_id].add(override.other_article_id)
            partners[override.other_article_id].add(override.article_id)
    return partners


def _closed_neighbourhood(article_ids, overrides):
    """The stories whose clusters may change when ``article_ids`` changed.

    File-backed stories grow to whole connected components of the edge graph,
    with their current cluster-mates and override partners, so regrouping them
    alone gives what a full rebuild would. Each step asks the database only for
    one story's candidates (time window, copy keys, listings).
    """
    partners = _override_partners(overrides)
    file_backed, related_ids, seen = {}, set(), set()
    frontier = set(article_ids)
    while frontier:
        seen |= frontier
        clusters = Article.objects.filter(pk__in=frontier, cluster__isnull=False).values(
            "cluster_id"
        )
        rows = Article.objects.filter(Q(pk__in=frontier) | Q(cluster_id__in=clusters))
        new = _load_stories(rows.filter(is_file_backed=True).exclude(pk__in=list(file_backed)))
        new_related = set(rows.filter(is_file_backed=False).values_list("pk", flat=True))
        new_related -= related_ids
        file_backed.update(new)
        related_ids |= new_related
        frontier = set()
        for story in new.values():
            frontier |= _neighbour_ids(story)
        for pk in [*new, *new_related]:
            frontier |= partners[pk]
        frontier -= seen | file_backed.keys() | related_ids
    return file_backed, related_ids


def _anchor(members):
    """The earliest-created file-backed member names the cluster: its slug is the permalink."""
    return min(members, key=lambda s: (not s.file_backed, s.pk))


def _save(labels, stories):
    """Write a partition; returns the ids of clusters whose membership changed."""
    groups = sorted(_members_by_label(labels, stories).values(), key=lambda m: _anchor(m).slug)
    wanted = {_anchor(members).slug for members in groups}
    by_slug = {c.slug: c for c in Cluster.objects.filter(slug__in=wanted)}
    old_ids = {s.cluster_id for s in stories.values() if s.cluster_id}
    spare = {c.pk: c for c in Cluster.objects.filter(pk__in=old_ids).exclude(slug__in=wanted)}
    ClusterAlias.objects.filter(slug__in=wanted).delete()

    touched, destination = set(), {}
    for members in groups:
        slug = _anchor(members).slug
        cluster = by_slug.get(slug)
        if cluster is None:
            # Reuse the row most members sat in (renamed), so first-seen time survives.
            counts = defaultdict(int)
            for story in members:
                if story.cluster_id in spare:
                    counts[story.cluster_id] += 1
            if counts:
                cluster = spare.pop(min(counts, key=lambda pk: (-counts[pk], pk)))
                ClusterAlias.objects.update_or_create(
                    slug=cluster.slug, defaults={"cluster": cluster}
                )
                Cluster.objects.filter(pk=cluster.pk).update(slug=slug)
            else:
                cluster = Cluster.objects.create(slug=slug)
        moved = [s.pk for s in members if s.cluster_id != cluster.pk]
        if moved:
            Article.objects.filter(pk__in=moved).update(cluster=cluster)
            touched.add(cluster.pk)
        for story in members:
            if story.cluster_id and story.cluster_id != cluster.pk:
                touched.add(story.cluster_id)
                destination.setdefault(story.cluster_id, defaultdict(int))[cluster.pk] += 1
    # Emptied clusters go; their slugs (and older aliases) redirect to where most members went.
    for cluster in spare.values():
        if Article.objects.filter(cluster=cluster).exists():
            continue
        counts = destination.get(cluster.pk)
        if counts:
            target = min(counts, key=lambda pk: (-counts[pk], pk))
            ClusterAlias.objects.filter(cluster=cluster).update(cluster_id=target)
            ClusterAlias.objects.update_or_create(
                slug=cluster.slug, defaults={"cluster_id": target}
            )
        cluster.delete()
        touched.discard(cluster.pk)
    return touched


def _everything():
    file_backed = _load_stories(Article.objects.filter(is_file_backed=True))
    related_ids = set(Article.objects.filter(is_file_backed=False).values_list("pk", flat=True))
    return file_backed, related_ids


@transaction.atomic
def update_for_articles(article_ids):
    """Regroup new or changed stories with their candidates only, then refresh what moved."""
    article_ids = set(article_ids)
    if not article_ids:
        return
    overrides = list(ClusterOverride.objects.order_by("created_at", "pk"))
    if len(article_ids) > BULK_LOAD_STORIES:
        # A bulk load: one pass over everything beats a neighbourhood query per story.
        file_backed, related_ids = _everything()
    else:
        file_backed, related_ids = _closed_neighbourhood(article_ids, overrides)
    labels, stories = _partition(file_backed, related_ids, overrides)
    touched = _save(labels, stories)
    # Changed stories may change their cluster's lead or score without moving.
    touched |= set(Article.objects.filter(pk__in=article_ids).values_list("cluster_id", flat=True))
    refresh_clusters(touched)


@transaction.atomic
def recluster():
    """Rebuild every cluster from scratch; returns how many clusters changed membership."""
    overrides = list(ClusterOverride.objects.order_by("created_at", "pk"))
    labels, stories = _partition(*_everything(), overrides)
    touched = _save(labels, stories)
    refresh_clusters(Cluster.objects.values_list("pk", flat=True))
    return len(touched)


def partition():
    """The current grouping as a set of frozensets of story ids (for tests and evaluation)."""
    groups = defaultdict(set)
    for pk, cluster_id in Article.objects.values_list("pk", "cluster_id"):
        groups[cluster_id].add(pk)
    return {frozenset(members) for members in groups.values()}


# --- Editors' corrections ----------------------------------------------------


def _representative(cluster):
    """The member an override names for a cluster: its anchor (earliest file-backed story)."""
    return (
        Article.objects.filter(cluster=cluster)
        .order_by("-is_file_backed", "pk")
        .only("pk", "title", "cluster_id")
        .first()
    )


@transaction.atomic
def merge_clusters(cluster_a, cluster_b, user, reason=""):
    """Put two clusters' stories together for good; returns the merged cluster."""
    first, second = _representative(cluster_a), _representative(cluster_b)
    if first is None or second is None or first.cluster_id == second.cluster_id:
        return Cluster.objects.get(pk=first.cluster_id) if first else cluster_a
    old = f"{cluster_a.slug} + {cluster_b.slug}"
    ClusterOverride.objects.create(
        kind=ClusterOverride.KIND_MERGE,
        article=first,
        other_article=second,
        created_by=user,
        reason=reason,
    )
    update_for_articles([first.pk, second.pk])
    merged = Cluster.objects.get(articles=first)
    ModerationEvent.objects.create(
        actor=user,
        action=ModerationEvent.MERGE,
        cluster=merged,
        subject=str(merged),
        field="cluster",
        old_value=old,
        new_value=merged.slug,
        reason=reason,
    )
    versioning.bump()
    return merged


@transaction.atomic
def split_article(article, user, reason=""):
    """Take a story out of its cluster into one of its own, for good; returns that cluster."""
    old_slug = Cluster.objects.filter(pk=article.cluster_id).values_list("slug", flat=True).first()
    ClusterOverride.objects.create(
        kind=ClusterOverride.KIND_SPLIT, article=article, created_by=user, reason=reason
    )
    update_for_articles([article.pk])
    article.refresh_from_db(fields=["cluster"])
    ModerationEvent.objects.create(
        actor=user,
        action=ModerationEvent.SPLIT,
        article=article,
        cluster=article.cluster,
        subject=article.title,
        field="cluster",
        old_value=old_slug or "",
        new_value=article.cluster.slug,
        reason=reason,
    )
    versioning.bump()
    return article.cluster


# --- Derived fields ----------------------------------------------------------


def lead_sort_key(article):
    """Best first: quality, then heat, then earliest."""
    quality = article.quality if article.quality is not None else -1
    heat = article.heat if article.heat is not None else -1
    published = article.published_at.timestamp() if article.published_at else float("inf")
    return (-quality, -heat, published, article.pk)


def cluster_score(lead, outlet_count):
    """Lobsters' shape: log10(points) + time / constant; points from the lead and the outlets."""
    if lead is None:
        return 0.0
    strength = lead.heat if lead.heat is not None else lead.quality
    if strength is None:
        strength = UNKNOWN_STRENGTH
    points = max(strength, 1) * (1 + 0.5 * max(outlet_count - 1, 0))
    when = lead.published_at or lead.first_seen_at
    return math.log10(points) + when.timestamp() / SCORE_TIME_CONSTANT


def _topic_ancestry(topic_ids, parents):
    """The topics with all their ancestors, so parent pages include children's clusters."""
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
    cluster_ids = {pk for pk in cluster_ids if pk}
    if not cluster_ids:
        return
    members = defaultdict(list)
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
        members[article.cluster_id].append(article)
    topic_rows = defaultdict(set)
    for cluster_id, topic_id in Article.topics.through.objects.filter(
        article__cluster_id__in=cluster_ids, article__published=True, article__is_file_backed=True
    ).values_list("article__cluster_id", "topic_id"):
        topic_rows[cluster_id].add(topic_id)

    now = timezone.now()
    clusters = list(Cluster.objects.filter(pk__in=cluster_ids))
    for cluster in clusters:
        stories = members[cluster.pk]
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
        else:
            cluster.published_at = min(
                (a.published_at or a.first_seen_at for a in stories), default=None
            )
        cluster.score = cluster_score(lead, cluster.outlet_count)
        cluster.updated_at = now
    Cluster.objects.bulk_update(
        clusters,
        ["lead", "is_public", "story_count", "outlet_count", "published_at", "score", "updated_at"],
        batch_size=500,
    )

    ClusterTopic.objects.filter(cluster_id__in=cluster_ids).delete()
    parents = dict(Topic.objects.values_list("pk", "parent_id"))
    rows = [
        ClusterTopic(
            cluster=cluster,
            topic_id=topic_id,
            published_at=cluster.published_at,
            score=cluster.score,
        )
        for cluster in clusters
        if cluster.is_public
        for topic_id in _topic_ancestry(topic_rows[cluster.pk], parents)
    ]
    ClusterTopic.objects.bulk_create(rows, batch_size=500)


# --- What pages show ---------------------------------------------------------


def coverage_for(clusters):
    """{cluster id: [coverage stories]} for a page of clusters, in one query.

    Coverage lines are the visible members other than the lead, best first, with
    their providers selected; a canonical URL is one story, so none repeats.
    """
    clusters = list(clusters)
    leads = [c.lead_id for c in clusters if c.lead_id]
    result = {c.pk: [] for c in clusters}
    stories = (
        Article.objects.coverage_visible()
        .filter(cluster_id__in=result)
        .exclude(pk__in=leads)
        .select_related("provider")
        .order_by(F("quality").desc(nulls_last=True), "published_at", "pk")
    )
    for story in stories:
        result[story.cluster_id].append(story)
    return result


def related_reading_for(clusters):
    """{cluster id: [stories]} listed by a cluster's published members but not of its event.

    One query; each story once per cluster, newest first, providers selected.
    """
    result = {c.pk: [] for c in clusters}
    stories = (
        Article.objects.coverage_visible()
        .filter(
            listed_in__source__cluster_id__in=result,
            listed_in__source__published=True,
            listed_in__source__is_file_backed=True,
        )
        .exclude(cluster_id=F("listed_in__source__cluster_id"))
        .annotate(listing_cluster=F("listed_in__source__cluster_id"))
        .select_related("provider")
        .order_by(F("published_at").desc(nulls_last=True), "pk")
    )
    seen = set()
    for story in stories:
        if (story.listing_cluster, story.pk) not in seen:
            seen.add((story.listing_cluster, story.pk))
            result[story.listing_cluster].append(story)
    return result
