"""Scoring clusters against hand labels: pairwise precision and recall.

A pair of labelled stories is "same event" when they share a label and
"clustered" when they share a cluster. Precision is the share of clustered
pairs that are same-event; recall the share of same-event pairs clustered.
"""

import json
from dataclasses import dataclass, field
from itertools import combinations

from .canonical import InvalidURL, canonical_url
from .models import Article, SourceFile


class LabelError(ValueError):
    """The labels file cannot be used; the message names the file and the problem."""


@dataclass
class Score:
    true_pairs: int = 0
    predicted_pairs: int = 0
    correct_pairs: int = 0
    stories: int = 0
    missing: list = field(default_factory=list)
    false_merges: list = field(default_factory=list)
    misses: list = field(default_factory=list)

    @property
    def precision(self):
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self):
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0


def read_labels(path):
    """{set name: {event: [story names]}} from a labels file."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise LabelError(f"{path}: cannot be read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise LabelError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    sets = data.get("sets") if isinstance(data, dict) else None
    if not isinstance(sets, dict) or not all(
        isinstance(events, dict) and all(isinstance(names, list) for names in events.values())
        for events in sets.values()
    ):
        raise LabelError(f'{path}: expected {{"sets": {{set: {{event: [story, ...]}}}}}}')
    return sets


def resolve(names):
    """{name: article id} for names (source keys or URLs) that are loaded."""
    keys = dict(SourceFile.objects.filter(key__in=names).values_list("key", "article_id"))
    urls = {}
    for name in names:
        if name.startswith(("http://", "https://")):
            try:
                urls[canonical_url(name)] = name
            except InvalidURL:
                continue
    found = {key: article_id for key, article_id in keys.items() if article_id}
    for url, pk in Article.objects.filter(canonical_url__in=urls).values_list(
        "canonical_url", "pk"
    ):
        found[urls[url]] = pk
    return found


def score(events, clusters, titles=None):
    """Score one set of labels ({event: [name]}) against {name: (story id, cluster id)}.

    Names that resolve to one story (a file's key and its URL) count once.
    """
    result = Score()
    event_of = {}
    for event, names in events.items():
        for name in names:
            if name not in clusters:
                result.missing.append(name)
                continue
            story = clusters[name][0]
            if event_of.setdefault(story, event) != event:
                raise LabelError(f"{name} is labelled both {event_of[story]} and {event}")
    cluster_of = dict(clusters.values())
    result.stories = len(event_of)
    titles = titles or {}
    for a, b in combinations(sorted(event_of), 2):
        same_event = event_of[a] == event_of[b]
        clustered = cluster_of[a] == cluster_of[b]
        result.true_pairs += same_event
        result.predicted_pairs += clustered
        result.correct_pairs += same_event and clustered
        if clustered and not same_event:
            result.false_merges.append((titles.get(a, a), titles.get(b, b)))
        elif same_event and not clustered:
            result.misses.append((titles.get(a, a), titles.get(b, b)))
    return result


def evaluate(sets):
    """{set name: Score} for every labels set against the current clusters."""
    results = {}
    for name, events in sets.items():
        ids = resolve([story for stories in events.values() for story in stories])
        rows = Article.objects.filter(pk__in=ids.values()).values_list("pk", "cluster_id", "title")
        cluster_of = {pk: cluster_id for pk, cluster_id, _ in rows}
        titles = {pk: title for pk, _, title in rows}
        clusters = {story: (pk, cluster_of[pk]) for story, pk in ids.items()}
        results[name] = score(events, clusters, titles)
    return results
