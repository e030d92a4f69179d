"""Time clustering on a loaded database: a full rebuild, then one-story incremental updates.

    DATABASE_URL=sqlite:///bench/out/cluster.sqlite3 python manage.py load_seeds CORPUS
    DATABASE_URL=sqlite:///bench/out/cluster.sqlite3 python bench/cluster_bench.py

Use a scratch database: the script changes one story's excerpt per sample (and
restores it). Build a corpus with ``bench/make_corpus.py --count 20000``. Prints
one JSON object: the rebuild's wall and CPU time (the CPU time is what the
machine's other work does not inflate) and peak memory (tracemalloc, Python
objects only, measured in a second run as tracing slows it down); for one-story
updates the time, the queries, how many stories step 1 replayed and how many
were reclustered, and whether any fell back to a full rebuild.
"""

import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aggregator.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from articles import clustering  # noqa: E402
from articles.models import Article  # noqa: E402

SAMPLES = 10


def full_rebuild():
    started, cpu = time.perf_counter(), time.process_time()
    changed = clustering.recluster()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    tracemalloc.start()
    clustering.recluster()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "peak_python_mb": round(peak / 2**20, 1),
        "clusters_changed": changed,
    }


def one_story_updates():
    """Re-word one story's excerpt and regroup it, as a one-file load would."""
    stories = Article.objects.file_backed().order_by("pk")
    step = max(stories.count() // SAMPLES, 1)
    seconds, queries, results = [], [], []
    for article in stories[::step][:SAMPLES]:
        Article.objects.filter(pk=article.pk).update(excerpt=article.excerpt + " Updated.")
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            results.append(clustering.update_for_articles([article.pk]))
            seconds.append(time.perf_counter() - started)
        queries.append(len(captured))
        Article.objects.filter(pk=article.pk).update(excerpt=article.excerpt)
        clustering.update_for_articles([article.pk])
    replayed = [result.replayed for result in results]
    clustered = [result.clustered for result in results]
    return {
        "samples": len(seconds),
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
        "median_queries": statistics.median(queries),
        "median_stories_replayed": statistics.median(replayed),
        "max_stories_replayed": max(replayed),
        "median_stories_reclustered": statistics.median(clustered),
        "max_stories_reclustered": max(clustered),
        "rebuilds": sum(result.rebuilt for result in results),
    }


def main():
    stories = Article.objects.count()
    if not stories:
        sys.exit("No stories: load a corpus first (see the docstring).")
    loaded = clustering.partition()
    result = {
        "stories": stories,
        "file_backed": Article.objects.file_backed().count(),
        "full_rebuild": full_rebuild(),
    }
    rebuilt = clustering.partition()
    result["load_equals_rebuild"] = loaded == rebuilt
    result["one_story_update"] = one_story_updates()
    # Each sample changed a story and changed it back: the partition must be the rebuild's.
    result["updates_equal_rebuild"] = clustering.partition() == rebuilt
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
