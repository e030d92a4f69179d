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
   headline or opening) however late it ran. Each day's edges are taken
   strongest first and a merge is refused when the cluster would span more than
   ``MAX_SPAN``, read too unlike itself on average, or join two groups both begun
   before that day, so long noisy lists never chain into a blob and a day's
   stories never reshape earlier days' clusters.
2. Each related-only story joins the cluster, among those of the stories listing
   it, that it reads most like. Those that join none are grouped among
   themselves by the rules of step 1 (events no file covers, listed by several
   files); such clusters have no file-backed lead, so they are never public and
   their stories show as "related reading".
3. Editors' overrides are applied in the order they were made.

Every step is a pure function of the stories involved (no corpus statistics,
ties broken by canonical URL), so the partition does not depend on load order.
Step 1 keeps each story's event (``Article.event_first``): an incremental update
replays it only from the first day its stories touch until the open events match
the stored ones (``_replay``), then redoes the clusters of the events that
changed, and reaches exactly what a full rebuild would.
"""

import gc
import hashlib
import heapq
import math
import multiprocessing
import operator
import os
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict, deque, namedtuple
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from itertools import islice
from types import SimpleNamespace

from django.db import connection, transaction
from django.db.models import Exists, F, Min, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from pyroaring import BitMap64

from . import versioning
from .bulk import column_defaults, fewer_collections, insert_rows, update_rows
from .models import (
    Article,
    ArticleTopic,
    Cluster,
    ClusterAlias,
    ClusterOverride,
    ClusterTopic,
    ModerationEvent,
    RelatedListing,
    Topic,
    published_stories,
    visible_coverage,
)
from .text_similarity import (
    ENTITY_WEIGHT,
    NAMELESS_FACTOR,
    own_weight,
    same_copy,
    similarity,
    story_text,
)

# Stories merely alike must run within WINDOW of each other; a cluster never
# spans more than MAX_SPAN, except for late re-runs of the same copy.
WINDOW = timedelta(days=5)
MAX_SPAN = timedelta(days=7)
# Thresholds on text_similarity.similarity(), tuned on the hand labels
# (tests/data/cluster_labels.json, `manage.py evaluate_clusters`).
TEXT_THRESHOLD = 0.35
LISTED_THRESHOLD = 0.20
LISTED_BONUS = 0.20
# Average similarity a merged cluster must keep: stops chains A~B~C~D.
GROUP_THRESHOLD = 0.25
RELATED_THRESHOLD = 0.42
# Related-only stories grouped among themselves: often a bare headline, so they
# must read more alike than file-backed ones (0.65 keeps precision on the labels).
ORPHAN_THRESHOLD = 0.65
# Above this many changed stories a load regroups everything in one pass (same result).
BULK_LOAD_STORIES = 2000
QUERY_BATCH = 1000
# A rebuild of fewer stories does without a helper process (see _text_helper).
HELPER_MIN_STORIES = 5000
# Pair weights a grouping remembers: enough for any one merge, bounded however long it runs.
REMEMBERED_PAIRS = 20_000
# How many of a headline key's longest words narrow the database search for its copies.
COPY_KEY_WORDS = 3
COPY_KEYS_PER_QUERY = 200

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
    "provider__name",
    "event_first",
    "grouped_at",
)


@dataclass(eq=False, slots=True)
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
    # As last stored (see Article.event_first): None for a story never grouped.
    event: int = None
    grouped_at: object = None

    @classmethod
    def from_row(cls, row, topic_names=(), text=story_text):
        # The story's own topics and outlet are its beat, not its event.
        beat = [*topic_names, row["provider__name"] or ""]
        return cls(
            pk=row["pk"],
            url=row["canonical_url"],
            slug=row["slug"],
            file_backed=row["is_file_backed"],
            time=row["published_at"] or row["first_seen_at"],
            cluster_id=row["cluster_id"],
            text=text(row["title"], row["excerpt"], beat),
            event=row["event_first"],
            grouped_at=row["grouped_at"],
        )


class _TextOnDemand:
    """A story's ``StoryText``, worked out when first read.

    Step 2 keeps every file-backed story near the related-only ones at hand, but
    compares only the few in a cluster that lists one of them.
    """

    __slots__ = ("args", "text")

    def __init__(self, *args):
        self.args, self.text = args, None

    def __getattr__(self, name):
        if self.text is None:
            self.text = story_text(*self.args)
        return getattr(self.text, name)


def _load_stories(queryset, lazily=False, text=None):
    """{pk: Story}; ``lazily``: texts worked out when first read, and no lists.

    ``text``: what makes a story's ``text`` of its title, excerpt and beat, in
    place of ``story_text``.
    """
    rows = list(queryset.values(*STORY_FIELDS))
    topic_names = defaultdict(list)
    for chunk in _chunks(row["pk"] for row in rows):
        for article_id, name in ArticleTopic.objects.filter(article_id__in=chunk).values_list(
            "article_id", "topic__name"
        ):
            topic_names[article_id].append(name)
    text = text or (_TextOnDemand if lazily else story_text)
    stories = {row["pk"]: Story.from_row(row, topic_names[row["pk"]], text) for row in rows}
    if lazily:
        return stories
    file_backed = [pk for pk, story in stories.items() if story.file_backed]
    for chunk in _chunks(file_backed):
        for source_id, target_id in RelatedListing.objects.filter(source_id__in=chunk).values_list(
            "source_id", "target_id"
        ):
            stories[source_id].lists.add(target_id)
    return stories


def _chunks(ids, size=QUERY_BATCH):
    """Bounded ``__in`` lists: databases cap how many parameters one query takes."""
    ids = sorted(ids)
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _batched(iterable, size=QUERY_BATCH):
    """Lists of ``size`` items of ``iterable`` as it streams (``_chunks`` sorts them all first)."""
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


# --- Step 1: file-backed stories ---------------------------------------------


def edge_weight(a, b):
    """How strongly two file-backed stories belong together, or None if not at all."""
    if same_copy(a.text, b.text):
        return 1.0 + LISTED_BONUS
    if abs(a.time - b.time) > WINDOW:
        return None
    score = similarity(a.text, b.text)
    if b.pk in a.lists or a.pk in b.lists:
        return score + LISTED_BONUS if score >= LISTED_THRESHOLD else None
    return score if score >= TEXT_THRESHOLD else None


# The postings a candidate search reads: which stories carry a token as a word,
# as a title word, as a name, as a name in the title.
POSTING_KINDS = ("words", "title", "names", "title_names")


def _postings_of(text):
    """(kind, token) for every posting ``text`` is indexed under."""
    for token in text.tokens:
        yield "words", token
    for token in text.title_tokens:
        yield "title", token
    for token in text.names:
        yield "names", token
        if token in text.title_tokens:
            yield "title_names", token


def _own_weights(text):
    """(words, title words) weights counting only this story's own names.

    The weights of any pair count both stories' names, so they are at least these.
    """
    return own_weight(text.tokens, text.names), own_weight(text.title_tokens, text.names)


def _shared_weights(text, scan):
    """({id: weight of shared words}, {id: of shared title words}, {id: names in common}).

    The weights are exact: a shared word weighs ENTITY_WEIGHT when either story
    uses it as a name. ``scan(kind, token, amount, tally)`` adds ``amount`` to
    ``tally`` (a _Tally) for every indexed story within reach posted under ``(kind, token)``.
    """
    shared, shared_title, common = _Tally(), _Tally(), _Tally()
    for token in text.tokens:
        if token in text.names:
            scan("words", token, ENTITY_WEIGHT, shared)
            scan("names", token, 1, common)
        else:
            scan("words", token, 1, shared)
            scan("names", token, ENTITY_WEIGHT - 1, shared)
    for token in text.title_tokens:
        if token in text.names:
            scan("title", token, ENTITY_WEIGHT, shared_title)
        else:
            scan("title", token, 1, shared_title)
            scan("title_names", token, ENTITY_WEIGHT - 1, shared_title)
    return shared.counts(), shared_title.counts(), common.counts()


class _Tally:
    """Amounts added to ids, counted at the end.

    A story's scan adds dozens of short postings: gathered in one list and
    counted once, each id costs a step in C, not a ``Counter.update`` call per posting.
    """

    __slots__ = ("ids", "fractions")

    def __init__(self):
        # Fractions only arise with a fractional ENTITY_WEIGHT: made when first needed,
        # as three tallies are made per story.
        self.ids, self.fractions = [], None

    def add(self, pks, amount):
        if amount == int(amount):
            for _ in range(int(amount)):
                self.ids.extend(pks)
        else:
            if self.fractions is None:
                self.fractions = Counter()
            for pk in pks:
                self.fractions[pk] += amount

    def counts(self):
        counts = Counter(self.ids)
        if self.fractions:
            counts.update(self.fractions)
        return counts


def _may_reach(min_weight, own, weights, shared, shared_title, common_names):
    """The ids among ``shared`` whose similarity to a story may reach ``min_weight``.

    ``own`` and ``weights`` ({id: pair}) are (words, title words) weights counting
    only each story's own names; ``shared`` and ``shared_title`` the exact weight
    of the words each id shares with the story; ``common_names`` the names both use.
    """
    weight, title_weight = own
    # Another story's weights are positive, so a pair's bound is at most the shared
    # weight over this story's own: most ids share too little to pass, and are
    # passed over here with one comparison each. A hair lenient, for rounding.
    least = min_weight / 2 * (1 - 1e-9)
    least_shared, least_title = least * weight, least * title_weight
    found = set()
    for pk in {pk for pk, amount in shared.items() if amount >= least_shared}.union(
        pk for pk, amount in shared_title.items() if amount >= least_title and pk in shared
    ):
        shared_weight = shared[pk]
        other_weight, other_title_weight = weights[pk]
        bound = max(
            shared_weight / (weight + other_weight),
            shared_title.get(pk, 0) / ((title_weight + other_title_weight) or 1),
        )
        if not common_names.get(pk):
            bound *= NAMELESS_FACTOR
        if 2 * bound >= min_weight:
            found.add(pk)
    return found


class CandidateIndex:
    """Blocking for file-backed stories: shared tokens within the window, or a shared copy key."""

    def __init__(self, stories, min_weight=TEXT_THRESHOLD):
        self.by_pk = {s.pk: s for s in stories}
        self.min_weight = min_weight
        self.own_weights = {s.pk: _own_weights(s.text) for s in stories}
        postings = {kind: defaultdict(list) for kind in POSTING_KINDS}
        self.by_copy_key = defaultdict(list)
        for story in sorted(stories, key=lambda s: s.time):
            for kind, token in _postings_of(story.text):
                postings[kind][token].append(story.pk)
            if story.text.copy_key:
                self.by_copy_key[story.text.copy_key].append(story.pk)
        # Per posting: (times, ids), oldest first, for a bisected window.
        self.postings = {
            kind: {t: ([self.by_pk[pk].time for pk in pks], pks) for t, pks in tokens.items()}
            for kind, tokens in postings.items()
        }

    def candidates(self, story):
        """Stories that may have an edge to ``story``.

        The weight of the shared words is exact and each side weighs at least
        its own names and words, so this bounds ``similarity()`` from above:
        pairs that cannot reach ``min_weight`` are dropped before any scoring.
        Listings and copies always stay.
        """
        low, high = story.time - WINDOW, story.time + WINDOW
        text = story.text

        def scan(kind, token, amount, tally):
            entry = self.postings[kind].get(token)
            if entry is not None:
                times, pks = entry
                tally.add(pks[bisect_left(times, low) : bisect_right(times, high)], amount)

        found = _may_reach(
            self.min_weight, self.own_weights[story.pk], self.own_weights,
            *_shared_weights(text, scan),
        )  # fmt: skip
        if text.copy_key:
            found.update(self.by_copy_key[text.copy_key])
        found.update(pk for pk in story.lists if pk in self.by_pk)
        found.discard(story.pk)
        return [self.by_pk[pk] for pk in found]

    def edges(self, isolated=frozenset()):
        """Every (weight, a, b) edge once; ``isolated`` stories (split by editors) have none."""
        listed_by = defaultdict(set)
        for story in self.by_pk.values():
            for pk in story.lists:
                listed_by[pk].add(story.pk)
        result = []
        for story in self.by_pk.values():
            if story.pk in isolated:
                continue
            others = self.candidates(story)
            others += [self.by_pk[pk] for pk in listed_by[story.pk]]
            for other in others:
                if other.pk <= story.pk or other.pk in isolated:
                    continue
                weight = edge_weight(story, other)
                # Weaker edges never join two groups: no need to sort them.
                if weight is not None and weight >= self.min_weight:
                    result.append((weight, story, other))
        return _strongest_first(result)


def _strongest_first(edges):
    """(weight, a, b) edges with a.pk < b.pk, once each, strongest first.

    Canonical URLs break ties, so load order never matters.
    """
    edges = list({(a.pk, b.pk): (w, a, b) for w, a, b in edges}.values())
    _sort_strongest_first(edges)
    return edges


def _sort_strongest_first(edges):
    """Sort (weight, a, b) edges in place as ``_strongest_first()`` orders them."""
    edges.sort(key=lambda edge: (-edge[0], *sorted((edge[1].url, edge[2].url))))


class _DayByDay:
    """The grouping of step 1, fed a day at a time.

    Each day's edges (those whose newer story falls on that day) are taken
    strongest first. A merge is refused when the cluster would span more than
    MAX_SPAN, read too unlike itself on average, or join two groups that both
    began before that day: a new story joins an earlier event, it never bridges
    two. So the groups of the stories before any day are final at its start,
    whatever comes later, and a sweep can let a group go once no new edge can
    reach it.
    """

    def __init__(self, min_weight):
        self.min_weight = min_weight
        self.parent, self.members, self.span = {}, {}, {}
        self.pair_weights = {}
        # Copies of one story more than WINDOW apart that the rules refused: joined
        # after the grouping, so a late re-run never widens the span others face.
        self.late_copies = []

    def add(self, story):
        pk = story.pk
        self.parent[pk], self.members[pk], self.span[pk] = pk, [story], (story.time, story.time)

    def add_group(self, stories):
        """A group as an earlier grouping left it (the replay of ``_replay`` starts from it)."""
        root = stories[0].pk
        for story in stories:
            self.parent[story.pk] = root
        self.members[root] = list(stories)
        self.span[root] = (min(s.time for s in stories), max(s.time for s in stories))

    def find(self, pk):
        parent = self.parent
        while parent[pk] != pk:
            parent[pk] = parent[parent[pk]]
            pk = parent[pk]
        return pk

    def _pair_weight(self, a, b):
        key = (a.pk, b.pk) if a.pk < b.pk else (b.pk, a.pk)
        weights = self.pair_weights
        if key not in weights:
            if len(weights) >= REMEMBERED_PAIRS:
                weights.clear()
            weight = edge_weight(a, b)
            weights[key] = weight if weight is not None else similarity(a.text, b.text)
        return weights[key]

    def _cohesive(self, left, right):
        members = self.members
        total = sum(self._pair_weight(a, b) for a in members[left] for b in members[right])
        return total / (len(members[left]) * len(members[right])) >= GROUP_THRESHOLD

    def group_day(self, day, edges):
        """Apply one day's (weight, a, b) edges; the list is sorted in place."""
        _sort_strongest_first(edges)
        span = self.span
        for weight, a, b in edges:
            left, right = self.find(a.pk), self.find(b.pk)
            if left == right or weight < self.min_weight:
                continue
            start = min(span[left][0], span[right][0])
            end = max(span[left][1], span[right][1])
            if (
                (span[left][0].date() < day and span[right][0].date() < day)
                or end - start > MAX_SPAN
                or not self._cohesive(left, right)
            ):
                if abs(a.time - b.time) > WINDOW and weight > 1:
                    self.late_copies.append((a.pk, b.pk))
                continue
            self.parent[right] = left
            self.members[left].extend(self.members.pop(right))
            span[left] = (start, end)
            del span[right]

    def release(self, root):
        """Forget a finished group; returns its members."""
        members = self.members.pop(root)
        del self.span[root]
        for story in members:
            del self.parent[story.pk]
        return members


def _first(members):
    """The story that names an event: its earliest (a later day never adds an earlier one)."""
    return min(members, key=lambda s: (s.time, s.pk))


def _edge_day(edge):
    return max(edge[1].time, edge[2].time).date()


def group_file_backed(stories, isolated=frozenset(), min_weight=TEXT_THRESHOLD, edges=None):
    """Partition stories into events: {pk: group id (a member's pk)}.

    ``min_weight``: the weakest edge that may join two groups (see ``ORPHAN_THRESHOLD``).
    ``edges``: every edge among ``stories`` of at least ``min_weight``, once
    each, as ``(weight, a, b)`` with a.pk < b.pk, when the caller has found them already.
    """
    if edges is None:
        edges = CandidateIndex(stories, min_weight).edges(isolated)
    grouping = _DayByDay(min_weight)
    for story in stories:
        grouping.add(story)
    by_day = defaultdict(list)
    for edge in edges:
        by_day[_edge_day(edge)].append(edge)
    for day in sorted(by_day):
        grouping.group_day(day, by_day[day])
    labels = {pk: grouping.find(pk) for pk in grouping.parent}
    _join(labels, grouping.late_copies)
    return labels


# --- Step 2: related-only stories --------------------------------------------


def assign_related(story, groups, first_urls):
    """The group a related-only story belongs to, or None to stand alone.

    ``groups`` maps a group key to the file-backed members of each cluster whose
    stories list ``story`` (those within the window are enough); ``first_urls``
    maps each key to the smallest canonical URL of the whole group. The
    best-matching member within the window wins; ties go to the smaller URL.
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
        rank = (-score, first_urls[key])
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


def _partition(file_backed, related, overrides, changed=frozenset()):
    """The new grouping of a neighbourhood's stories: ({pk: label}, {pk: story}).

    The given file-backed stories, with their stored events, form whole clusters;
    stories outside keep theirs, and so do related-only stories whose grouping
    cannot change (see ``_orphans_to_regroup``; ``changed``: stories with a new
    text). A full rebuild streams instead (``_rebuild``), to the same rules.
    """
    split = {o.article_id for o in overrides if o.kind == ClusterOverride.KIND_SPLIT}
    labels = {pk: ("auto", story.event) for pk, story in file_backed.items()}
    _join(labels, _far_copies(file_backed.values(), split))
    # Overrides between file-backed stories shape the clusters related-only stories choose from.
    _apply_overrides(
        labels,
        [
            o
            for o in overrides
            if o.kind == ClusterOverride.KIND_SPLIT
            or (o.article_id in file_backed and o.other_article_id in file_backed)
        ],
    )
    groups = _members_by_label(labels, file_backed)

    listers = defaultdict(set)
    for story in file_backed.values():
        for target in story.lists & related.keys():
            listers[target].add(story.pk)
    # Listers outside the neighbourhood keep their clusters: read them as they are.
    outside = defaultdict(set)
    for chunk in _chunks(related):
        for source_id, target_id in RelatedListing.objects.filter(
            target_id__in=chunk, source__is_file_backed=True
        ).values_list("source_id", "target_id"):
            if source_id not in file_backed:
                outside[source_id].add(target_id)
    clusters = dict(
        Article.objects.filter(pk__in=list(outside), cluster__isnull=False).values_list(
            "pk", "cluster_id"
        )
    )
    members = Article.objects.filter(cluster_id__in=set(clusters.values()), is_file_backed=True)
    for story in _load_stories(members).values():
        groups[("cluster", story.cluster_id)].append(story)
    for source_id, cluster_id in clusters.items():
        labels.setdefault(source_id, ("cluster", cluster_id))
        for target in outside[source_id]:
            listers[target].add(source_id)

    first_urls = {label: min(m.url for m in members) for label, members in groups.items()}
    for story in related.values():
        if story.pk in split:
            labels[story.pk] = ("split", story.pk)
            continue
        candidates = {labels[pk]: groups[labels[pk]] for pk in listers[story.pk] if pk in labels}
        labels[story.pk] = assign_related(story, candidates, first_urls) or ("alone", story.pk)
    alone = {pk for pk, story in related.items() if labels[pk] == ("alone", pk)}
    named = {pk for o in overrides for pk in (o.article_id, o.other_article_id)}
    orphans = _orphans_to_regroup(related, alone, changed | named)
    for pk, root in group_file_backed(list(orphans.values()), min_weight=ORPHAN_THRESHOLD).items():
        labels[pk] = ("alone", root)
    stories = {**file_backed, **related, **orphans}
    # Alone before and after, and near no change: they keep their clusters.
    unmoved = alone - orphans.keys()
    for pk in [pk for pk in labels if pk not in stories or pk in unmoved]:
        del labels[pk]
    _apply_overrides(
        labels, [o for o in overrides if o.article_id in related or o.other_article_id in related]
    )
    return labels, {pk: stories[pk] for pk in labels}


def _orphans_to_regroup(related, alone, changed):
    """The stories with no file-backed cluster whose grouping among themselves may change.

    ``related``: the neighbourhood's related-only stories, ``alone`` those of them
    no cluster took now. A change is a story that turned alone or stopped being
    so, or one of ``changed`` (new text, or named by an override); its old
    cluster-mates and every story in reach of the grouping rules follow, as
    whole clusters, and in turn their own reach. Other stories keep their clusters.
    """
    related_only = Article.objects.filter(is_file_backed=False)
    with_file = set()
    for chunk in _chunks({s.cluster_id for s in related.values() if s.cluster_id}):
        with_file |= set(
            Article.objects.filter(cluster_id__in=chunk, is_file_backed=True).values_list(
                "cluster_id", flat=True
            )
        )

    def was_alone(story):
        return story.cluster_id is not None and story.cluster_id not in with_file

    turned = {pk for pk, story in related.items() if (pk in alone) != was_alone(story)}
    # Only stories no file-backed cluster holds may group with them.
    unassigned = related_only.exclude(
        Exists(Article.objects.filter(cluster_id=OuterRef("cluster_id"), is_file_backed=True))
    )

    def mates(pks):
        """Alone stories among ``pks`` and their old clusters' members."""
        clusters = {related[pk].cluster_id for pk in pks if pk in related} | _values_for(
            unassigned, "pk", pks - related.keys(), "cluster_id"
        )
        clusters -= with_file | {None}
        found = (pks & alone) | _values_for(unassigned, "pk", pks - related.keys(), "pk")
        found |= _values_for(unassigned, "cluster_id", clusters, "pk") - related.keys()
        return found | {pk for pk in alone if related[pk].cluster_id in clusters}

    regroup, loaded = {}, {pk: related[pk] for pk in alone}
    frontier = mates(turned | (changed & related.keys()))
    while frontier:
        _load_missing(frontier - loaded.keys(), related_only, loaded)
        stories = [loaded[pk] for pk in frontier if pk in loaded]
        regroup.update((story.pk, story) for story in stories)
        in_reach = _in_windows(unassigned, stories) - related.keys()
        _load_missing(in_reach - loaded.keys(), related_only, loaded)
        pool = [loaded[pk] for pk in in_reach if pk in loaded]
        pool += [related[pk] for pk in alone]
        # Windows of a long frontier hold thousands of stories: block as a rebuild does.
        index = CandidateIndex(
            {story.pk: story for story in stories + pool}.values(), min_weight=ORPHAN_THRESHOLD
        )
        near = {
            other.pk
            for story in stories
            for other in index.candidates(story)
            if other.pk not in regroup and (edge_weight(story, other) or 0) >= ORPHAN_THRESHOLD
        }
        frontier = mates(near) - regroup.keys() if near else set()
    return regroup


def _in_windows(queryset, stories):
    """Stories of ``queryset`` within WINDOW of any of ``stories``: one query per run of windows."""
    spans = sorted((s.time - WINDOW, s.time + WINDOW) for s in stories)
    merged = []
    for low, high in spans:
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    ids = set()
    for low, high in merged:
        ids |= _timed_ids(queryset, range=(low, high))
    return ids


def _timed_ids(queryset, **bounds):
    """Ids of ``queryset``'s stories whose time (published, else first seen) is within
    ``bounds`` (lookups such as ``gte=``, ``lt=``).

    Two queries, not an OR: each walks the (time, kind) index.
    """
    queryset = queryset.order_by()
    published = {f"published_at__{lookup}": value for lookup, value in bounds.items()}
    first_seen = {f"first_seen_at__{lookup}": value for lookup, value in bounds.items()}
    ids = set(queryset.filter(**published).values_list("pk", flat=True))
    ids.update(
        queryset.filter(published_at__isnull=True, **first_seen).values_list("pk", flat=True)
    )
    return ids


def _load_missing(ids, queryset, loaded):
    for chunk in _chunks(set(ids) - loaded.keys()):
        loaded.update(_load_stories(queryset.filter(pk__in=chunk)))


def _copy_partner_ids(stories, loaded):
    """File-backed stories that are copies of one of ``stories`` run more than WINDOW apart.

    Such copies join clusters whatever their events (see ``_far_copies``).
    ``loaded`` keeps stories already read during one neighbourhood search.
    """
    file_backed = Article.objects.filter(is_file_backed=True)
    copies = []
    for story in stories:
        if story.text.copy_key:
            # Every headline with the same key contains its words (stems only drop letters).
            words = sorted(set(story.text.copy_key.split()), key=lambda w: (-len(w), w))
            copy = Q()
            for word in words[:COPY_KEY_WORDS]:
                copy &= Q(title__icontains=word.removesuffix("y"))
            copies.append(copy)
    ids = set()
    # SQLite refuses an expression tree deeper than 1,000: a few hundred keys per query.
    for start in range(0, len(copies), COPY_KEYS_PER_QUERY):
        either = reduce(operator.or_, copies[start : start + COPY_KEYS_PER_QUERY])
        ids.update(file_backed.filter(either).values_list("pk", flat=True))
    _load_missing(ids, file_backed, loaded)
    return {
        pk
        for pk in ids
        if pk in loaded and any(_far_copy(story, loaded[pk]) for story in stories if story.pk != pk)
    }


def _far_copy(a, b):
    return abs(a.time - b.time) > WINDOW and same_copy(a.text, b.text)


def _far_copies(stories, isolated):
    """Pairs of ``stories`` (outside ``isolated``) that are copies more than WINDOW apart.

    Step 1 joins them whatever the rules refused: a late re-run of wire copy
    belongs to its event however late it runs.
    """
    by_key = defaultdict(list)
    for story in stories:
        if story.text.copy_key and story.pk not in isolated:
            by_key[story.text.copy_key].append(story)
    return [
        (a.pk, b.pk)
        for copies in by_key.values()
        for i, a in enumerate(copies)
        for b in copies[i + 1 :]
        if _far_copy(a, b)
    ]


def _values_for(queryset, key, keys, field):
    """The ``field`` values of rows whose ``key`` is among ``keys``, in bounded queries."""
    values = set()
    for chunk in _chunks(keys):
        values.update(queryset.filter(**{f"{key}__in": chunk}).values_list(field, flat=True))
    return values


def _override_partners(overrides):
    partners = defaultdict(set)
    for override in overrides:
        if override.other_article_id:
            partners[override.article_id].add(override.other_article_id)
            partners[override.other_article_id].add(override.article_id)
    return partners


def neighbourhood(article_ids, overrides):
    """The stories whose clusters may change when ``article_ids`` changed or changed event.

    A cluster is the union of events joined by far copies and editors' merges,
    so the clusters that may change are those holding these stories, their new
    events and copies, and the override partners, whole; the rest keep theirs.
    Events must be stored first (``_replay``).
    """
    partners = _override_partners(overrides)
    file_backed, related_ids, seen, loaded = {}, set(), set(), {}
    frontier = set(article_ids)
    while frontier:
        seen |= frontier
        clusters = _values_for(
            Article.objects.filter(cluster__isnull=False), "pk", frontier, "cluster_id"
        )
        ids = frontier | _values_for(Article.objects.all(), "cluster_id", clusters, "pk")
        ids -= file_backed.keys() | related_ids
        new = {}
        _load_missing(ids, Article.objects.filter(is_file_backed=True), new)
        file_backed.update(new)
        loaded.update(new)
        related_ids |= _values_for(
            Article.objects.filter(is_file_backed=False), "pk", ids - new.keys(), "pk"
        )
        events = {story.event for story in new.values() if story.event is not None}
        frontier = _values_for(Article.objects.all(), "event_first", events, "pk")
        # Only a changed text can have copies its cluster does not hold already.
        changed = [story for pk, story in new.items() if pk in article_ids]
        frontier |= _copy_partner_ids(changed, loaded) if changed else set()
        for pk in ids:
            frontier |= partners[pk]
        frontier -= seen | file_backed.keys() | related_ids
    return file_backed, related_ids


def _anchor(members):
    """The earliest-created file-backed member names the cluster."""
    return min(members, key=lambda s: (not s.file_backed, s.pk))


def cluster_slug(members):
    """The cluster's permalink, derived from its anchor story's slug (which never changes).

    Hashed rather than spelled out: the anchor may be an unpublished story, and a
    public address must not reveal its headline.
    """
    return _hashed_slug(_anchor(members).slug)


def _hashed_slug(story_slug):
    return hashlib.blake2b(story_slug.encode(), digest_size=8).hexdigest()


def _slugs_of(groups):
    """The cluster slug of each group of ``Member``s, from its anchor story's slug."""
    anchors = [_anchor(members).pk for members in groups]
    slugs = dict(Article.objects.filter(pk__in=anchors).values_list("pk", "slug"))
    return [_hashed_slug(slugs[pk]) for pk in anchors]


def _save(labels, stories):
    """Write a neighbourhood's partition; returns the ids of clusters whose membership changed."""
    groups = sorted(
        (
            (cluster_slug(members), members)
            for members in _members_by_label(labels, stories).values()
        ),
        key=operator.itemgetter(0),
    )
    old_ids = {s.cluster_id for s in stories.values() if s.cluster_id}
    spare = dict(
        Cluster.objects.filter(pk__in=old_ids)
        .exclude(slug__in=[slug for slug, _ in groups])
        .values_list("pk", "slug")
    )
    writer = _ClusterWriter(spare)
    for batch in _batched(groups):
        writer.write(batch)
    return writer.finish()


class _ClusterWriter:
    """Gives each group its cluster row, a batch of groups at a time.

    A group keeps the row named by its slug; a new slug takes over the spare row
    (one whose slug no group wants any more) most of its members sat in, so the
    cluster's first-seen time survives and its old address redirects.
    """

    def __init__(self, spare):
        self.spare = spare  # {cluster id: slug} of rows no group wants by name
        self.touched, self.destination = BitMap64(), {}
        # New clusters, written with their derived fields and topic rows: they
        # need no refresh, which would otherwise rewrite every row of a fresh load.
        self.fresh = BitMap64()
        self.parents = dict(Topic.objects.values_list("pk", "parent_id"))

    def write(self, groups):
        """``groups``: [(slug, members)], members with ``pk`` and ``cluster_id``."""
        by_slug = dict(
            Cluster.objects.filter(slug__in=[slug for slug, _ in groups]).values_list("slug", "pk")
        )
        created, renamed, moves, new_members = [], [], [], []
        # Plain rows, not model instances: a fresh load creates a cluster for
        # most stories, and an instance each cost more than its insert.
        columns = column_defaults(Cluster)
        for slug, members in groups:
            if slug in by_slug:
                cluster = SimpleNamespace(pk=by_slug[slug], slug=slug)
            else:
                counts = defaultdict(int)
                for story in members:
                    if story.cluster_id in self.spare:
                        counts[story.cluster_id] += 1
                if counts:
                    pk = min(counts, key=lambda pk: (-counts[pk], pk))
                    ClusterAlias.objects.update_or_create(
                        slug=self.spare.pop(pk), defaults={"cluster_id": pk}
                    )
                    Cluster.objects.filter(pk=pk).update(slug=slug)
                    cluster = SimpleNamespace(pk=pk, slug=slug)
                    renamed.append(slug)
                else:
                    cluster = SimpleNamespace(**{**columns, "pk": None, "slug": slug})
                    created.append(cluster)
                    new_members.append(members)
            moved = [story for story in members if story.cluster_id != cluster.pk or not cluster.pk]
            if moved:
                moves.append((cluster, moved))
        created_slugs = [cluster.slug for cluster in created]
        if created:
            topic_rows = self._derive(created, new_members)
            # One prepared INSERT: bulk_create compiles every value into SQL in Python.
            new_ids = insert_rows(Cluster, created, ids_by="slug")
            for cluster, pk in zip(created, new_ids, strict=True):
                cluster.pk = pk
            self.fresh.update(new_ids)
            insert_rows(
                ClusterTopic,
                [
                    {
                        "cluster_id": cluster.pk,
                        "topic_id": topic_id,
                        "published_at": at,
                        "score": score,
                    }
                    for cluster, rows in zip(created, topic_rows, strict=True)
                    for topic_id, (at, score) in rows.items()
                ],
            )
        ClusterAlias.objects.filter(slug__in=created_slugs + renamed).delete()
        update_rows(
            Article,
            (
                SimpleNamespace(pk=story.pk, cluster_id=cluster.pk)
                for cluster, members in moves
                for story in members
            ),
            ["cluster"],
        )
        for cluster, members in moves:
            self.touched.add(cluster.pk)
            for story in members:
                if story.cluster_id:
                    self.touched.add(story.cluster_id)
                    counts = self.destination.setdefault(story.cluster_id, defaultdict(int))
                    counts[cluster.pk] += 1

    def _derive(self, clusters, memberships):
        """Set each new cluster's derived fields from its members; returns their topic rows."""
        facts, topics = {}, defaultdict(set)
        for chunk in _chunks(story.pk for members in memberships for story in members):
            facts.update(
                (article.pk, article)
                for article in Article.objects.filter(pk__in=chunk).values_list(
                    *MEMBER_FIELDS, named=True
                )
            )
            # The topics of published file-backed stories, told by the facts just
            # read: a join would read each story's row a second time.
            for article_id, topic_id in ArticleTopic.objects.filter(
                article_id__in=chunk
            ).values_list("article_id", "topic_id"):
                story = facts[article_id]
                if story.published and story.is_file_backed:
                    topics[article_id].add(topic_id)
        topic_rows = []
        for cluster, members in zip(clusters, memberships, strict=True):
            fields = _derived([facts[story.pk] for story in members])
            for name, value in fields.items():
                setattr(cluster, name, value)
            member_topics = set().union(*(topics[story.pk] for story in members))
            topic_rows.append(_topic_rows(fields, member_topics, self.parents))
        return topic_rows

    def finish(self):
        """Emptied clusters go; their slugs (and older aliases) redirect to where most members went.

        Returns the ids of clusters whose membership changed.
        """
        spare, emptied = self.spare, set(self.spare)
        for chunk in _chunks(spare):
            emptied -= set(
                Article.objects.filter(cluster_id__in=chunk).values_list("cluster_id", flat=True)
            )
        for pk in sorted(emptied):
            counts = self.destination.get(pk)
            if counts:
                target = min(counts, key=lambda c: (-counts[c], c))
                ClusterAlias.objects.filter(cluster_id=pk).update(cluster_id=target)
                ClusterAlias.objects.update_or_create(
                    slug=spare[pk], defaults={"cluster_id": target}
                )
        for chunk in _chunks(emptied):
            Cluster.objects.filter(pk__in=chunk).delete()
        return self.touched - BitMap64(emptied)


def _overrides():
    return list(ClusterOverride.objects.order_by("created_at", "pk"))


Regrouped = namedtuple("Regrouped", "replayed clustered rebuilt")


class Deleted(namedtuple("Deleted", "grouped_at event cluster_id")):
    """What regrouping needs of a grouped file-backed story that is about to be deleted."""

    @classmethod
    def of(cls, article):
        return cls(article.grouped_at, article.event_first, article.cluster_id)


@transaction.atomic
def update_for_articles(article_ids, deleted=()):
    """Regroup new or changed stories with their candidates only, then refresh what moved.

    ``deleted``: grouped stories deleted since (as ``Deleted``). Returns
    how many stories step 1 replayed, how many were reclustered, and whether
    it fell back to a full rebuild.
    """
    article_ids = BitMap64(article_ids)
    if not article_ids and not deleted:
        return Regrouped(0, 0, False)
    versioning.hold()
    overrides = _overrides()
    split = {o.article_id for o in overrides if o.kind == ClusterOverride.KIND_SPLIT}
    replay = hood = None
    # A bulk load: one pass over everything beats a replay per story.
    if len(article_ids) <= BULK_LOAD_STORIES:
        changed = set(article_ids)
        replay = _replay(changed, split, deleted)
    if replay is not None:
        # The clusters the deleted stories left, whole: events they joined may part.
        mates = _values_for(
            Article.objects.all(), "cluster_id", {d.cluster_id for d in deleted}, "pk"
        )
        hood = neighbourhood(changed | replay[0] | mates, overrides)
        if any(story.event is None for story in hood[0].values()):
            hood = None  # stories grouped before events were stored
    fresh = ()
    if hood is None:
        touched, fresh = _rebuild(overrides)
        result = Regrouped(0, 0, True)
    else:
        file_backed, related_ids = hood
        related_ids = set(related_ids)
        for story in file_backed.values():
            related_ids |= story.lists
        related = {}
        _load_missing(related_ids, Article.objects.filter(is_file_backed=False), related)
        labels, stories = _partition(file_backed, related, overrides, changed=changed)
        touched = _save(labels, stories)
        result = Regrouped(replay[1], len(file_backed) + len(related), False)
    # Changed stories may change their cluster's lead or score without moving.
    for chunk in _batched(article_ids):
        touched.update(
            Article.objects.filter(pk__in=chunk, cluster__isnull=False).values_list(
                "cluster_id", flat=True
            )
        )
    refresh_clusters(pk for pk in touched if pk not in fresh)
    return result


@transaction.atomic
def recluster():
    """Rebuild every cluster from scratch; returns how many clusters changed membership."""
    versioning.hold()
    with fewer_collections():
        touched, fresh = _rebuild(_overrides())
        clusters = Cluster.objects.values_list("pk", flat=True).iterator(QUERY_BATCH)
        refresh_clusters(pk for pk in clusters if pk not in fresh)
    return len(touched)


def partition():
    """The current grouping as a set of frozensets of story ids (for tests and evaluation)."""
    groups = defaultdict(set)
    for pk, cluster_id in Article.objects.values_list("pk", "cluster_id"):
        groups[cluster_id].add(pk)
    return {frozenset(members) for members in groups.values()}


# --- Full rebuild, streamed oldest first -------------------------------------
#
# A rebuild reaches the partition the rules above give for all stories at once,
# holding only the stories near the sweep's current time (and a few integers per
# story): every edge but a wire copy's joins stories at most WINDOW apart, copies
# more than MAX_SPAN apart only ever join after the grouping (the span refuses
# them there), and the groups of earlier days are final (see _DayByDay). So a
# group is finished once the sweep is MAX_SPAN past its newest story, however
# far its connected stories run on: at 51 files a day they run for years.


def _stream(queryset, lazily=False, helper=None, finder=None, keep=False):
    """Batches of the stories of ``queryset``, oldest first (ties by id); see _load_stories.

    With a ``helper`` (see _text_helper), a batch's texts are worked out there
    while this process reads the next batch and groups the one before. With a
    ``finder`` (see _finder_key), batches come as lists of (story, its edges) for
    ``_Sweep.add``: found by the helper when there is one. With ``keep``, the
    helper keeps the texts for _OrphanEdges.
    """
    ordered = (
        queryset.annotate(story_time=Coalesce("published_at", "first_seen_at"))
        .order_by("story_time", "pk")
        .values_list("pk", flat=True)
    )
    pk_batches = _batched(ordered.iterator(chunk_size=QUERY_BATCH), QUERY_BATCH)
    if helper is None or lazily:
        for pks in pk_batches:
            batch = _ordered(queryset, pks, lazily)
            yield batch if finder is None else [(story, None) for story in batch]
        return
    pending = deque()
    for pks in pk_batches:
        batch = _ordered(queryset, pks, text=_text_arguments)
        arguments = [(story.pk, story.time, story.lists, story.text) for story in batch]
        pending.append((batch, helper.submit(_texts_and_edges, arguments, finder, keep)))
        if len(pending) > 1:
            yield _worked_out(*pending.popleft(), finder)
    while pending:
        yield _worked_out(*pending.popleft(), finder)


def _ordered(queryset, pks, lazily=False, text=None):
    stories = _load_stories(queryset.filter(pk__in=pks), lazily, text)
    return [stories[pk] for pk in pks if pk in stories]


def _text_arguments(*arguments):
    return arguments


def _texts_and_edges(arguments, finder=None, keep=False):
    """In the helper: the texts of a batch of stories and, with a ``finder``, their edges.

    ``arguments``: (pk, time, lists, story_text arguments) of each story, oldest
    first and after those of the calls before; the edges, as (weight, pk, pk),
    reach the stories of those calls too. With ``keep``, the stories stay here
    for _orphan_edges.
    """
    stories = [
        (pk, time, lists, story_text(*story_arguments))
        for pk, time, lists, story_arguments in arguments
    ]
    if keep:
        _KEPT_IN_HELPER.update((story[0], story) for story in stories)
    texts = [text for *_, text in stories]
    return texts, None if finder is None else _edges_in_helper(finder, stories)


def _orphan_edges(pks, orphans, finder):
    """In the helper: the edges of ``orphans``, those of the batch ``pks`` kept
    by _texts_and_edges that step 2 found no cluster for."""
    kept = {pk: _KEPT_IN_HELPER.pop(pk) for pk in pks}
    return _edges_in_helper(finder, [kept[pk] for pk in orphans])


def _edges_in_helper(finder, stories):
    """Each story's edges, as (weight, pk, pk), from the helper's finder named ``finder``."""
    edge_finder = _finder_in_helper(finder)
    return [
        [
            (weight, a.pk, b.pk)
            for weight, a, b in edge_finder.edges(
                Story(
                    pk,
                    url=None,
                    slug=None,
                    file_backed=None,
                    time=time,
                    cluster_id=None,
                    text=text,
                    lists=lists,
                )
            )
        ]
        for pk, time, lists, text in stories
    ]


# The helper's stories kept for _orphan_edges, and its one _EdgeFinder (a helper
# serves one rebuild), kept from call to call: [key, finder].
_KEPT_IN_HELPER = {}
_FINDER_IN_HELPER = [None, None]


def _finder_in_helper(key):
    """The helper's _EdgeFinder for ``key`` (see _finder_key); the last one goes."""
    if _FINDER_IN_HELPER[0] != key:
        _FINDER_IN_HELPER[:] = [key, _EdgeFinder(*key[1:])]
    return _FINDER_IN_HELPER[1]


def _finder_key(step, sweep):
    """What the helper needs to run an _EdgeFinder like ``sweep``'s, named for its step."""
    return step, sweep.finder.min_weight, frozenset(sweep.finder.isolated)


class _OrphanEdges:
    """Step 2's orphans with their edges, found in the helper a batch behind, if there is one.

    Which stories are orphans is known only once this process has matched a
    batch against the clusters of step 1; the helper then finds their edges
    while this process reads and matches the next batch.
    """

    def __init__(self, helper, sweep):
        self.helper, self.finder, self.pending = helper, _finder_key(2, sweep), deque()

    def send(self, batch, orphans):
        """Hand over a batch and its orphans; returns the (orphan, edges) ready to add."""
        if self.helper is None:
            return [(story, None) for story in orphans]
        pks, orphan_pks = [story.pk for story in batch], [story.pk for story in orphans]
        self.pending.append(
            (orphans, self.helper.submit(_orphan_edges, pks, orphan_pks, self.finder))
        )
        return self._ready(1)

    def rest(self):
        return self._ready(0)

    def _ready(self, behind):
        """The orphans of the batches sent but the last ``behind``, with their edges."""
        ready = []
        while len(self.pending) > behind:
            orphans, future = self.pending.popleft()
            ready += zip(orphans, future.result(), strict=True)
        return ready


def _worked_out(batch, future, finder):
    texts, edges = future.result()
    for story, text in zip(batch, texts, strict=True):
        story.text = text
    return batch if finder is None else list(zip(batch, edges, strict=True))


@contextmanager
def _text_helper(stories):
    """A process to work out story texts and edges for a rebuild of ``stories``
    stories (see _stream and _OrphanEdges), or None.

    Reading, grouping and writing keep this process busy while a second core
    idles (a load's parsing workers have finished by then); texts and edges cost
    more to work out than to send. Forked, the helper needs no set-up and never
    touches the database. Small rebuilds, and machines of one core, do without.
    """
    if stories < HELPER_MIN_STORIES or (os.cpu_count() or 1) < 2:
        yield None
        return
    helper = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
    try:
        yield helper
    finally:
        helper.shutdown(cancel_futures=True)


class _Posting:
    """The times and ids of the open stories posted under one token, oldest first."""

    __slots__ = ("times", "pks")

    def __init__(self):
        self.times, self.pks = deque(), deque()

    def drop_before(self, time):
        times, pks = self.times, self.pks
        while times and times[0] < time:
            times.popleft()
            pks.popleft()


class _EdgeFinder:
    """The candidate search of a sweep: the edges of each story fed, oldest first,
    to the stories before it, holding only those a later story can still reach.

    It needs nothing of the grouping, so a rebuild runs it in its helper process
    (see _texts_and_edges).
    """

    def __init__(self, min_weight, isolated=frozenset()):
        self.min_weight, self.isolated = min_weight, isolated
        # kind -> token -> indexed stories (as CandidateIndex's postings).
        self.postings = {kind: defaultdict(_Posting) for kind in POSTING_KINDS}
        # Stories that share no name score at most NAMELESS_FACTOR (see similarity()):
        # above it, only the stories under a story's names can pass, and the other
        # postings, the longest, are never read (step 2's orphans).
        self.names_only = min_weight > NAMELESS_FACTOR
        self.copies = defaultdict(deque)  # copy key -> stories of the last MAX_SPAN
        self.listed_by = defaultdict(list)  # pk -> stories listing it
        # pk -> story fed: every story of the last MAX_SPAN is here (no older one can pair).
        self.recent = {}
        self.own_weights = {}  # pk -> CandidateIndex.own_weights of an indexed story
        self.now = None
        self.fed = 0

    def edges(self, story):
        """``story``'s (weight, a, b) edges, a and b ordered by id; then it is indexed."""
        self.now, self.recent[story.pk] = story.time, story
        edges = []
        if story.pk not in self.isolated:
            for other in self._candidates(story):
                if other.pk in self.isolated:
                    continue
                weight = edge_weight(story, other)
                if weight is not None and weight >= self.min_weight:
                    edges.append((weight, *sorted((story, other), key=lambda s: s.pk)))
            self.index(story)
        self.fed += 1
        if self.fed % QUERY_BATCH == 0:
            self._forget_old()
        return edges

    def _candidates(self, story):
        """Stories that may have an edge to ``story`` (CandidateIndex's bound)."""
        low, text = story.time - WINDOW, story.text

        def scan(kind, token, amount, tally):
            posting = self.postings[kind].get(token)
            if posting is not None:
                # Stories come oldest first: out of this one's reach is out of any later one's.
                posting.drop_before(low)
                tally.add(posting.pks, amount)

        if self.names_only:
            named = _Tally()
            for token in text.names:
                scan("names", token, 1, named)
            found = set(named.ids)
        else:
            found = _may_reach(
                self.min_weight, _own_weights(text), self.own_weights, *_shared_weights(text, scan)
            )
        if text.copy_key:
            found.update(
                other.pk
                for other in self.copies.get(text.copy_key, ())
                if story.time - other.time <= MAX_SPAN
            )
        # Listed stories further back than MAX_SPAN cannot pair (copies are found above).
        found.update(
            pk
            for pk in story.lists
            if pk in self.recent and story.time - self.recent[pk].time <= MAX_SPAN
        )
        found.update(
            other.pk
            for other in self.listed_by.pop(story.pk, ())
            if other.pk in self.recent and story.time - other.time <= MAX_SPAN
        )
        found.discard(story.pk)
        return [self.recent[pk] for pk in found]

    def index(self, story):
        """Make ``story`` a candidate of the stories after it."""
        text = story.text
        self.recent[story.pk] = story
        if not self.names_only:  # only the bound of _may_reach reads them
            self.own_weights[story.pk] = _own_weights(text)
        for kind, token in _postings_of(text):
            if self.names_only and kind != "names":
                continue
            posting = self.postings[kind][token]
            posting.times.append(story.time)
            posting.pks.append(story.pk)
        for target in story.lists:
            self.listed_by[target].append(story)
        if text.copy_key:
            self.copies[text.copy_key].append(story)

    def _forget_old(self):
        """Drop index entries no later story can reach (text edges WINDOW back, copies MAX_SPAN)."""
        for postings in self.postings.values():
            for token in list(postings):
                postings[token].drop_before(self.now - WINDOW)
                if not postings[token].pks:
                    del postings[token]
        for key in list(self.copies):
            entries = self.copies[key]
            while entries and self.now - entries[0].time > MAX_SPAN:
                entries.popleft()
            if not entries:
                del self.copies[key]
        for target in list(self.listed_by):
            listers = [s for s in self.listed_by[target] if self.now - s.time <= WINDOW]
            if listers:
                self.listed_by[target] = listers
            else:
                del self.listed_by[target]
        for pk in [pk for pk, story in self.recent.items() if self.now - story.time > MAX_SPAN]:
            del self.recent[pk]
            self.own_weights.pop(pk, None)


class _Sweep:
    """Groups stories fed oldest first, a day at a time, holding a window of them.

    ``add()`` returns the groupings ({pk: root}) it has finished, ``finish()``
    the rest; ``late_pairs()`` then gives the copies further apart than the
    rules let join, for the caller to put together.
    """

    def __init__(self, min_weight, isolated=frozenset(), copy_log=None, note_events=True):
        self.isolated = isolated
        self.finder = _EdgeFinder(min_weight, isolated)
        self.open = {}  # pk -> story, until its group is finished
        self.grouping = _DayByDay(min_weight)
        self.day, self.day_edges = None, []
        self.newest = []  # heap of (time, pk) of every open story, to find finished groups
        # Where each indexed story's copy key goes, to find copies further apart
        # than MAX_SPAN at the end. A replay needs none: its neighbourhood search
        # finds far copies itself (_copy_partner_ids).
        self.copy_log = copy_log
        # Grouped stories whose stored event differs (a first load: every story);
        # None where the caller stores no events (related-only stories).
        self.regrouped = _EventRows() if note_events else None
        self.fed = 0

    def seed(self, groups):
        """Start from stored groups of the stories before the first day to be fed.

        Only groups a later story may still join matter; their stories are
        indexed oldest first, as if they had been fed.
        """
        for members in groups:
            self.grouping.add_group(members)
        for story in sorted(
            (s for members in groups for s in members), key=lambda s: (s.time, s.pk)
        ):
            self.open[story.pk] = story
            heapq.heappush(self.newest, (story.time, story.pk))
            if story.pk not in self.isolated:
                self.finder.index(story)

    def add(self, story, edges=None):
        """Feed ``story``; ``edges``: its edges as (weight, pk, pk), found elsewhere
        by an _EdgeFinder fed the same stories (else this sweep's own finds them)."""
        finished = {}
        day = story.time.date()
        if self.day is not None and day != self.day:
            finished = self._end_day(story.time)
        self.day, pk = day, story.pk
        self.open[pk] = story
        self.grouping.add(story)
        heapq.heappush(self.newest, (story.time, pk))
        if edges is None:
            self.day_edges += self.finder.edges(story)
        else:
            self.day_edges += [(weight, self.open[a], self.open[b]) for weight, a, b in edges]
        if self.copy_log is not None and story.text.copy_key and pk not in self.isolated:
            self.copy_log.note(story.text.copy_key, pk, story.time)
        self.fed += 1
        return finished

    def _end_day(self, next_time):
        """Group the day's edges; finish the groups no story from ``next_time`` on can reach."""
        self.grouping.group_day(self.day, self.day_edges)
        self.day_edges = []
        grouping, finished = self.grouping, {}

        def out_of_reach(time):
            return next_time is None or next_time - time > MAX_SPAN

        while self.newest and out_of_reach(self.newest[0][0]):
            _time, pk = heapq.heappop(self.newest)
            if pk not in grouping.parent:
                continue  # finished with its group
            root = grouping.find(pk)
            if not out_of_reach(grouping.span[root][1]):
                continue  # its newest member's turn comes later
            members = grouping.release(root)
            finished.update(self._named(members))
            for member in members:
                del self.open[member.pk]
        return finished

    def _named(self, members):
        """{pk: event} for a group's members, noting those whose stored event differs."""
        event = _first(members).pk
        if self.regrouped is not None:
            for story in members:
                if (story.event, story.grouped_at) != (event, story.time):
                    self.regrouped.append(story.pk, event, story.time)
        return dict.fromkeys((story.pk for story in members), event)

    def end_day(self, next_time):
        """Group the day fed so far now; returns the groups finished (as ``add()``)."""
        finished = self._end_day(next_time)
        self.day = None
        return finished

    def take_events(self):
        """The events noted since the last call, handed over for the caller to store."""
        events, self.regrouped = self.regrouped, _EventRows()
        return events

    def name_open_groups(self):
        """Note the events of the groups not finished yet (a replay stops with some open)."""
        for members in self.grouping.members.values():
            self._named(members)

    def finish(self):
        """The groupings not yet returned (then ask for ``late_pairs()``)."""
        groups = self._end_day(None) if self.day is not None else {}
        # Nothing more comes: let the index go before the caller's next step.
        self.finder = None
        return groups

    def late_pairs(self, queryset):
        """Copies further apart than the rules let join, checked against the stories' texts."""
        pairs = list(self.grouping.late_copies)
        for batch in _batched(self.copy_log.far_apart() if self.copy_log else ()):
            stories = _load_stories(queryset.filter(pk__in={pk for pair in batch for pk in pair}))
            pairs += [(a, b) for a, b in batch if same_copy(stories[a].text, stories[b].text)]
        return pairs


class _EventRows:
    """(pk, event_first, grouped_at) rows, held as machine integers: 24 bytes a story."""

    def __init__(self):
        self.pks, self.events, self.times = array("q"), array("q"), array("q")

    def append(self, pk, event, time):
        self.pks.append(pk)
        self.events.append(event)
        self.times.append(_micros(time))

    def __len__(self):
        return len(self.pks)

    def __iter__(self):
        for pk, event, micros in zip(self.pks, self.events, self.times, strict=True):
            yield pk, event, EPOCH + timedelta(microseconds=micros)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(time):
    """A time as an integer of microseconds since EPOCH, exact."""
    return (time - EPOCH) // timedelta(microseconds=1)


def _store_events(regrouped):
    for batch in _batched(regrouped):
        update_rows(
            Article,
            (
                SimpleNamespace(pk=pk, event_first=event, grouped_at=time)
                for pk, event, time in batch
            ),
            ["event_first", "grouped_at"],
        )


def _between(queryset, low, high):
    """The stories of ``queryset`` with a time in [low, high), oldest first (ties by id)."""
    ids = _timed_ids(queryset, gte=low, lt=high)
    stories = {}
    _load_missing(ids, queryset, stories)
    return sorted(stories.values(), key=lambda s: (s.time, s.pk))


def _stream_from(queryset, start):
    """The stories of ``queryset`` from ``start`` on, oldest first, a span of days at a time."""
    low = start
    while low is not None:
        high = low + MAX_SPAN
        yield from _between(queryset, low, high)
        later = [
            queryset.filter(published_at__gte=high).aggregate(time=Min("published_at"))["time"],
            queryset.filter(published_at__isnull=True, first_seen_at__gte=high).aggregate(
                time=Min("first_seen_at")
            )["time"],
        ]
        low = min(filter(None, later), default=None)


def _replay(article_ids, isolated, deleted=()):
    """Step 1 again from the first day ``article_ids`` touch, until it agrees with stored groups.

    The groups of the stories before any day are final (see ``_DayByDay``), so the
    stored groups of the days before stand, and once the groups still open hold no
    changed story and equal the stored ones, every later day groups as stored too.
    Writes the events that changed; returns those stories' ids and how many
    stories it regrouped, or None when the stories it starts from were never
    grouped (a full rebuild is then needed).
    ``deleted``: grouped stories deleted since, as ``Deleted``.
    """
    file_backed = Article.objects.filter(is_file_backed=True)
    changed = {}
    _load_missing(article_ids, file_backed, changed)
    times = [t for s in changed.values() for t in (s.time, s.grouped_at) if t is not None]
    times += [story.grouped_at for story in deleted]
    gone = {story.event for story in deleted}
    if not times:
        return set(), 0
    start = min(times).replace(hour=0, minute=0, second=0, microsecond=0)
    last_day = max(times).date()

    # Every group a story from ``start`` on may join began at most MAX_SPAN before it.
    earlier = _between(file_backed, start - 2 * MAX_SPAN - timedelta(days=1), start)
    if any(story.event is None for story in earlier):
        return None
    stored = Counter(story.event for story in earlier)
    open_groups = defaultdict(list)
    for story in earlier:
        open_groups[story.event].append(story)
    reach = start - MAX_SPAN - timedelta(days=1)
    sweep = _Sweep(TEXT_THRESHOLD, isolated=isolated)
    sweep.seed([members for members in open_groups.values() if members[-1].time >= reach])

    for story in _stream_from(file_backed, start):
        if sweep.day is not None and story.time.date() != sweep.day:
            day = sweep.day
            sweep.end_day(story.time)
            if day >= last_day and _agrees(sweep.grouping.members.values(), stored, changed, gone):
                break
        stored[story.event] += 1
        sweep.add(story)
    else:
        sweep.finish()
    sweep.name_open_groups()
    _store_events(sweep.regrouped)
    # Only a changed story's own time moves: every other story listed changed event.
    return {pk for pk, _event, _time in sweep.regrouped}, sweep.fed


def _agrees(groups, stored, changed, gone):
    """Whether open ``groups`` (lists of stories) are the stored ones, none changed.

    ``changed``: stories whose stored event was made of another text or time;
    ``gone``: events that held a deleted story. Either may still steer a later day.
    """
    for members in groups:
        event = members[0].event
        if (
            event is None
            or event in gone
            or stored[event] != len(members)
            or any(story.event != event or story.pk in changed for story in members)
        ):
            return False
    return True


def _roots(labels, pairs):
    """{label: the label it joins} for each label that each pair's union moves."""
    parent = {}

    def find(label):
        while parent.get(label, label) != label:
            label = parent[label]
        return label

    for a, b in pairs:
        left, right = find(labels[a]), find(labels[b])
        if left != right:
            parent[right] = left
    return {label: find(label) for label in parent}


def _join(labels, pairs):
    """Put each pair's groups together (``labels``: {pk: label}, changed in place)."""
    roots = _roots(labels, pairs)
    if roots:
        for pk, label in labels.items():
            if label in roots:
                labels[pk] = roots[label]


Member = namedtuple("Member", "pk file_backed cluster_id")


class _ScratchTables:
    """Temporary tables a rebuild keeps instead of per-story dicts, rows written a batch at a time.

    ``tables`` and ``indexes`` name them ({key: name}); every name in the SQL is
    one of those keys, quoted; every value is a parameter. ``create`` makes the
    tables (any left by an earlier rebuild on this connection go first);
    ``insert`` writes one row of the first.
    """

    def __init__(self, tables, indexes, create, insert):
        quote = connection.ops.quote_name
        self.tables = list(tables)
        self.names = {key: quote(name) for key, name in (tables | indexes).items()}
        self.names |= {
            "article": quote(Article._meta.db_table),
            "cluster": quote(Cluster._meta.db_table),
        }
        self.insert, self.pending = insert, []
        for key in self.tables:
            self._execute(f"DROP TABLE IF EXISTS {{{key}}}")
        for statement in create:
            self._execute(statement)

    def drop(self):
        for key in self.tables:
            self._execute(f"DROP TABLE {{{key}}}")

    def _write(self, rows):
        self.pending += rows
        if len(self.pending) >= QUERY_BATCH:
            self.flush()

    def flush(self):
        self._execute_many(self.insert, self.pending)
        self.pending = []

    def _sql(self, template, count=0):
        """``template`` with its names filled in, and ``count`` marks for an IN list."""
        return template.format(**self.names, marks=", ".join(["%s"] * count))

    def _execute(self, template, params=()):
        with connection.cursor() as cursor:
            cursor.execute(self._sql(template), params)

    def _execute_many(self, template, rows):
        if rows:
            with connection.cursor() as cursor:
                cursor.executemany(self._sql(template), rows)

    def _fetch(self, template, params=()):
        with connection.cursor() as cursor:
            cursor.execute(self._sql(template, len(params)), params)
            return cursor.fetchall()

    def _fetch_in(self, template, values):
        """The rows of ``template`` for ``values``, an IN list a bounded chunk at a time."""
        for chunk in _chunks(values):
            yield from self._fetch(template, chunk)


class _CopyLog(_ScratchTables):
    """The copy key of every story a sweep indexes, to find copies further apart than MAX_SPAN.

    A wire story can run again months later, and the sweep holds only a span of
    stories; noted here rather than in a dict, every story's key costs the
    rebuild's memory nothing.
    """

    def __init__(self):
        super().__init__(
            tables={"copies": "clustering_rebuild_copy"},
            indexes={"copies_index": "clustering_rebuild_copy_key"},
            create=(
                # copy_key: Python's hash of the key; pairs are checked on their texts after.
                "CREATE TEMPORARY TABLE {copies} (copy_key bigint NOT NULL,"
                " article_id bigint NOT NULL, micros bigint NOT NULL)",
                "CREATE INDEX {copies_index} ON {copies} (copy_key, micros)",
            ),
            insert="INSERT INTO {copies} (copy_key, article_id, micros) VALUES (%s, %s, %s)",
        )

    def note(self, copy_key, pk, time):
        self._write([(hash(copy_key), pk, _micros(time))])

    def far_apart(self):
        """(earlier, later) id pairs of the same key more than MAX_SPAN apart, in feeding order."""
        self.flush()
        return self._fetch(
            "SELECT a.article_id, b.article_id FROM {copies} a JOIN {copies} b"
            " ON b.copy_key = a.copy_key AND b.micros - a.micros > %s"
            " ORDER BY b.micros, b.article_id, a.micros, a.article_id",
            [MAX_SPAN // timedelta(microseconds=1)],
        )


# _Labels.groups()'s pages: every story, and where stories had clusters when the
# rebuild started, its cluster and its group's slug (see name_groups).
_GROUPS = (
    "SELECT l.label, l.article_id, l.file_backed, NULL, NULL FROM {labels} l"
    " WHERE l.label > %s OR (l.label = %s AND l.article_id > %s)"
    " ORDER BY l.label, l.article_id LIMIT %s"
)
_GROUPS_WITH_CLUSTERS = (
    "SELECT l.label, l.article_id, l.file_backed, a.cluster_id, s.slug"
    " FROM {labels} l JOIN {article} a ON a.id = l.article_id"
    " LEFT JOIN {slugs} s ON s.label = l.label"
    " WHERE l.label > %s OR (l.label = %s AND l.article_id > %s)"
    " ORDER BY l.label, l.article_id LIMIT %s"
)


class _Labels(_ScratchTables):
    """Every story's group label during a rebuild, kept in a temporary table.

    Held in dicts, labels with each story's cluster, anchor and slug cost a few
    hundred bytes a story (over 100 MB at 100,000 files); in the table they cost
    the rebuild's memory nothing. A label is an integer: the id of the first
    story of an event or orphan group, or minus the id of a story split out.
    """

    def __init__(self):
        super().__init__(
            tables={"labels": "clustering_rebuild_label", "slugs": "clustering_rebuild_slug"},
            indexes={
                "labels_index": "clustering_rebuild_label_label",
                "slugs_index": "clustering_rebuild_slug_slug",
            },
            create=(
                "CREATE TEMPORARY TABLE {labels} (article_id bigint PRIMARY KEY,"
                " label bigint NOT NULL, file_backed boolean NOT NULL)",
                "CREATE INDEX {labels_index} ON {labels} (label, article_id)",
                "CREATE TEMPORARY TABLE {slugs} (label bigint PRIMARY KEY,"
                " slug varchar(32) NOT NULL)",
                "CREATE INDEX {slugs_index} ON {slugs} (slug)",
            ),
            insert="INSERT INTO {labels} (article_id, label, file_backed) VALUES (%s, %s, %s)",
        )
        # Read before the rebuild writes any: groups() are written in label order,
        # so a story not yet written keeps the cluster it had then.
        self.stories_had_clusters = Article.objects.filter(cluster__isnull=False).exists()

    def add(self, labels, file_backed):
        """Note ``labels`` ({pk: label}); written a batch at a time."""
        self._write([(pk, label, file_backed) for pk, label in labels.items()])

    def of(self, pks):
        """{pk: label} of those of ``pks`` labelled so far."""
        self.flush()
        return dict(
            self._fetch_in(
                "SELECT article_id, label FROM {labels} WHERE article_id IN ({marks})", pks
            )
        )

    def first_urls(self, labels):
        """{label: the smallest canonical URL of its file-backed stories}, as Python orders them."""
        first = {}
        for label, url in self._fetch_in(
            "SELECT l.label, a.canonical_url FROM {labels} l JOIN {article} a"
            " ON a.id = l.article_id WHERE l.file_backed AND l.label IN ({marks})",
            labels,
        ):
            if label not in first or url < first[label]:
                first[label] = url
        return first

    def _relabel(self, renames):
        """Give every story labelled ``old`` the label ``new``, for each (new, old)."""
        self._execute_many("UPDATE {labels} SET label = %s WHERE label = %s", renames)

    def join(self, pairs):
        """Put each pair's groups together (as ``_join``)."""
        pairs = list(pairs)
        labels = self.of({pk for pair in pairs for pk in pair})
        self._relabel([(root, label) for label, root in _roots(labels, pairs).items()])

    def apply_overrides(self, overrides):
        """Editors' merges and splits, oldest first (as ``_apply_overrides``)."""
        for override in overrides:
            pk, other = override.article_id, override.other_article_id
            labels = self.of({pk, other} - {None})
            if pk not in labels:
                continue
            if override.kind == ClusterOverride.KIND_SPLIT:
                self._execute("UPDATE {labels} SET label = %s WHERE article_id = %s", [-pk, pk])
            elif other in labels:
                self._relabel([(labels[pk], labels[other])])

    def groups(self):
        """(label, [Member], slug or None) of every group, in label order.

        Read in keyset pages rather than through one open cursor: the caller
        writes between pages.
        """
        self.flush()
        # Before a first load's clusters are written, no story has one: its rows,
        # read in label order, would cost a random read each.
        template = _GROUPS_WITH_CLUSTERS if self.stories_had_clusters else _GROUPS
        label = members = slug = None
        after = (-(2**62), 0)
        while rows := self._fetch(template, [after[0], after[0], after[1], QUERY_BATCH]):
            for row_label, pk, file_backed, cluster_id, row_slug in rows:
                if row_label != label:
                    if members:
                        yield label, members, slug
                    label, members, slug = row_label, [], row_slug
                members.append(Member(pk, bool(file_backed), cluster_id))
            after = rows[-1][:2]
        if members:
            yield label, members, slug

    def name_groups(self):
        """Store each group's cluster slug, for spare_clusters() to read before any is written.

        When no story had a cluster (a first load), no cluster can be spare:
        slugged_groups() then works the slugs out as it goes, one pass over the
        labels instead of two.
        """
        if not self.stories_had_clusters:
            return
        for batch in _batched(self.groups()):
            slugs = _slugs_of([members for _, members, _ in batch])
            self._execute_many(
                "INSERT INTO {slugs} (label, slug) VALUES (%s, %s)",
                [(label, slug) for (label, _, _), slug in zip(batch, slugs, strict=True)],
            )

    def slugged_groups(self):
        """Batches of (cluster slug, [Member]) of every group, in label order."""
        for batch in _batched(self.groups()):
            groups = [members for _, members, _ in batch]
            if self.stories_had_clusters:
                slugs = [slug for _, _, slug in batch]
            else:
                slugs = _slugs_of(groups)
            yield list(zip(slugs, groups, strict=True))

    def spare_clusters(self):
        """{cluster id: slug} of the clusters with members whose slug no group wants."""
        if not self.stories_had_clusters:
            return {}
        return dict(
            self._fetch(
                "SELECT c.id, c.slug FROM {cluster} c"
                " WHERE NOT EXISTS (SELECT 1 FROM {slugs} s WHERE s.slug = c.slug)"
                " AND EXISTS (SELECT 1 FROM {article} a WHERE a.cluster_id = c.id)"
            )
        )


def _rebuild(overrides):
    """Regroup every story, streaming.

    Returns the ids of clusters whose membership changed, and of those the ones
    it created, whose derived fields are already up to date.
    """
    with _text_helper(Article.objects.count()) as helper:
        try:
            return _regroup_all(overrides, helper)
        except BrokenProcessPool:
            # The helper died (out of memory): once more without it. Events it
            # stored are read back as they are now, and only those that differ written.
            pass
    gc.collect()  # the streams left behind hold cursors open, which block dropping scratch tables
    return _regroup_all(overrides, None)


def _regroup_all(overrides, helper):
    split = {o.article_id for o in overrides if o.kind == ClusterOverride.KIND_SPLIT}
    file_backed = Article.objects.filter(is_file_backed=True)
    related_only = Article.objects.filter(is_file_backed=False)
    labels = _Labels()

    # Step 1: file-backed stories. Overrides naming a related-only story find no
    # label yet and wait for step 3.
    sweep = _Sweep(TEXT_THRESHOLD, isolated=split, copy_log=_CopyLog())
    for batch in _stream(file_backed, helper=helper, finder=_finder_key(1, sweep)):
        for story, edges in batch:
            labels.add(sweep.add(story, edges), file_backed=True)
        # Stored as they come: a story is read once, before its group is named.
        _store_events(sweep.take_events())
    labels.add(sweep.finish(), file_backed=True)
    _store_events(sweep.take_events())
    labels.join(sweep.late_pairs(file_backed))
    sweep.copy_log.drop()
    labels.apply_overrides(overrides)

    # Step 2: related-only stories, beside a second pass over the file-backed ones
    # that keeps those within WINDOW of the batch at hand.
    orphans = _Sweep(ORPHAN_THRESHOLD, copy_log=_CopyLog(), note_events=False)
    orphan_edges = _OrphanEdges(helper, orphans)
    ahead = (story for batch in _stream(file_backed, lazily=True) for story in batch)
    upcoming, window = next(ahead, None), deque()
    for batch in _stream(related_only, helper=helper, keep=True):
        while upcoming is not None and upcoming.time <= batch[-1].time + WINDOW:
            window.append(upcoming)
            upcoming = next(ahead, None)
        while window and window[0].time < batch[0].time - WINDOW:
            window.popleft()
        listers = defaultdict(set)
        for source_id, target_id in RelatedListing.objects.filter(
            target_id__in=[story.pk for story in batch], source__is_file_backed=True
        ).values_list("source_id", "target_id"):
            listers[target_id].add(source_id)
        known = labels.of({story.pk for story in window}.union(*listers.values()))
        nearby = defaultdict(list)
        for story in window:
            nearby[known[story.pk]].append(story)
        first_urls = labels.first_urls(nearby)
        found = []
        for story in batch:
            if story.pk in split:
                labels.add({story.pk: -story.pk}, file_backed=False)
                continue
            candidates = {known[pk]: nearby[known[pk]] for pk in listers[story.pk]}
            label = assign_related(story, candidates, first_urls)
            if label is None:
                found.append(story)
            else:
                labels.add({story.pk: label}, file_backed=False)
        for story, edges in orphan_edges.send(batch, found):
            labels.add(orphans.add(story, edges), file_backed=False)
    for story, edges in orphan_edges.rest():
        labels.add(orphans.add(story, edges), file_backed=False)
    ahead.close()  # the file-backed stories after the last related-only one are not needed
    labels.add(orphans.finish(), file_backed=False)
    labels.join(orphans.late_pairs(related_only))
    orphans.copy_log.drop()

    # Step 3: the editors' overrides that name a related-only story.
    named = {pk for o in overrides for pk in (o.article_id, o.other_article_id) if pk}
    related_named = set(related_only.filter(pk__in=named).values_list("pk", flat=True))
    labels.apply_overrides(
        [o for o in overrides if {o.article_id, o.other_article_id} & related_named]
    )

    labels.name_groups()
    writer = _ClusterWriter(labels.spare_clusters())
    for batch in labels.slugged_groups():
        writer.write(batch)
    labels.drop()
    return writer.finish(), writer.fresh


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
    versioning.hold()
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
    versioning.hold()
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
    """Recompute the derived fields of the given clusters from their members.

    Only clusters whose lead, visibility, counts or score actually change are
    written (and get a new ``updated_at``); so are their topic-page rows.
    """
    parents = dict(Topic.objects.values_list("pk", "parent_id"))
    # Sorted and each id once, in a few bytes an id: a rebuild refreshes every cluster.
    for chunk in _batched(BitMap64(pk for pk in cluster_ids if pk)):
        _refresh(chunk, parents)


def _derived(stories):
    """A cluster's derived fields from its members."""
    candidates = [a for a in stories if a.is_file_backed and a.published]
    lead = min(candidates, key=lead_sort_key) if candidates else None
    visible = [a for a in stories if a.published or (a.published is None and not a.is_file_backed)]
    outlets = len({a.provider_id for a in visible if a.provider_id})
    if lead is not None:
        published_at = lead.published_at or lead.first_seen_at
    else:
        published_at = min((a.published_at or a.first_seen_at for a in stories), default=None)
    # Keys are attribute names, in the order of DERIVED_FIELDS.
    return {
        "lead_id": lead.pk if lead else None,
        "is_public": lead is not None,
        "story_count": len(visible),
        "outlet_count": outlets,
        "published_at": published_at,
        "score": cluster_score(lead, outlets),
    }


# The derived fields _derived() returns, as model field names.
DERIVED_FIELDS = ["lead", "is_public", "story_count", "outlet_count", "published_at", "score"]
# What _derived() reads of each member.
MEMBER_FIELDS = [
    "pk",
    "cluster_id",
    "quality",
    "heat",
    "published_at",
    "first_seen_at",
    "published",
    "is_file_backed",
    "provider_id",
]


def _topic_rows(fields, topic_ids, parents):
    """{topic id: (published_at, score)}: the topic-page rows of a cluster with ``fields``."""
    if not fields["is_public"]:
        return {}
    sort_keys = (fields["published_at"], fields["score"])
    return dict.fromkeys(_topic_ancestry(topic_ids, parents), sort_keys)


def _refresh(cluster_ids, parents):
    # Named tuples, not model instances: a rebuild refreshes every cluster, and
    # building an instance per story cost more than the query.
    members = defaultdict(list)
    for article in Article.objects.filter(cluster_id__in=cluster_ids).values_list(
        *MEMBER_FIELDS, named=True
    ):
        members[article.cluster_id].append(article)
    topics = defaultdict(set)
    for cluster_id, topic_id in Article.topics.through.objects.filter(
        article__cluster_id__in=cluster_ids, article__published=True, article__is_file_backed=True
    ).values_list("article__cluster_id", "topic_id"):
        topics[cluster_id].add(topic_id)
    rows = defaultdict(dict)
    for cluster_id, topic_id, published_at, score in ClusterTopic.objects.filter(
        cluster_id__in=cluster_ids
    ).values_list("cluster_id", "topic_id", "published_at", "score"):
        rows[cluster_id][topic_id] = (published_at, score)

    now = timezone.now()
    stale, new_rows, changed = [], [], []
    stored = Cluster.objects.filter(pk__in=cluster_ids).values_list(
        "pk", *(f"{name}_id" if name == "lead" else name for name in DERIVED_FIELDS), named=True
    )
    for cluster in stored:
        fields = _derived(members[cluster.pk])
        if any(getattr(cluster, name) != value for name, value in fields.items()):
            changed.append(SimpleNamespace(pk=cluster.pk, **fields, updated_at=now))
        wanted = _topic_rows(fields, topics[cluster.pk], parents)
        if wanted != rows[cluster.pk]:
            stale.append(cluster.pk)
            new_rows += [
                ClusterTopic(cluster_id=cluster.pk, topic_id=topic_id, published_at=at, score=score)
                for topic_id, (at, score) in wanted.items()
            ]
    update_rows(Cluster, changed, [*DERIVED_FIELDS, "updated_at"])
    ClusterTopic.objects.filter(cluster_id__in=stale).delete()
    insert_rows(ClusterTopic, new_rows)


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

    One query, read from the listings side: a story listed from several clusters
    appears under each of them (every listing names its own source cluster).
    Each story once per cluster, newest first, providers selected.
    """
    result = {c.pk: [] for c in clusters}
    listings = (
        RelatedListing.objects.filter(source__cluster_id__in=result)
        # Conditions on the joined rows: ``__in`` a queryset reads every story first.
        .filter(published_stories("source__"), visible_coverage("target__"))
        .exclude(target__cluster_id=F("source__cluster_id"))
        .annotate(listing_cluster=F("source__cluster_id"))
        .select_related("target__provider")
        .order_by(F("target__published_at").desc(nulls_last=True), "target_id", "pk")
    )
    seen = set()
    for listing in listings:
        key = (listing.listing_cluster, listing.target_id)
        if key not in seen:
            seen.add(key)
            result[listing.listing_cluster].append(listing.target)
    return result
