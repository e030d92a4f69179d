"""Large loads parse in worker processes: the outcome must be exactly the in-process one."""

import gc
from datetime import UTC, datetime, timedelta, timezone

import pytest
import yaml
from django.db import connection, transaction

from articles import bulk, clustering, loader
from articles.models import Article, Cluster, RelatedListing, SourceFile

pytestmark = pytest.mark.django_db


def news(title, url, related=()):
    data = {
        "title": title,
        "webUrl": url,
        "publishedDateTime": "2021-05-05T10:00:00Z",
        "provider": {"name": "Example", "domain": "example.com"},
        "topics": ["Power Apps"],
        "related": [
            {"title": f"Listed {link}", "webUrl": link, "images": [{"url": "javascript:x"}]}
            for link in related
        ],
    }
    return "---\n" + yaml.safe_dump(data, sort_keys=False) + "---\n"


def write(folder, name, content):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)


def stored():
    return {
        "stories": sorted(
            Article.objects.values_list("canonical_url", "title", "is_file_backed", "published")
        ),
        "listings": sorted(
            RelatedListing.objects.values_list(
                "source__canonical_url", "target__canonical_url", "position"
            )
        ),
        "files": sorted(SourceFile.objects.values_list("key", "raw_hash", "article__title")),
    }


def load(monkeypatch, workers, paths):
    """One load with ``workers`` parsing processes (0: in this process), then rolled back."""
    monkeypatch.setattr(loader, "PARSE_WORKERS", workers)
    with transaction.atomic():
        result = loader.load(paths)
        outcome = result.as_dict(), stored()
        transaction.set_rollback(True)
    return outcome


@pytest.fixture
def one_file_batches(monkeypatch):
    """Every file its own batch, so even a few files use the worker processes."""
    monkeypatch.setattr(loader, "CHUNK_FILES", 1)


@pytest.mark.slow
def test_workers_load_exactly_what_one_process_loads(tmp_path, monkeypatch, one_file_batches):
    write(tmp_path, "a.md", news("First", "https://example.com/a", ["https://other.example/x"]))
    write(tmp_path, "b.md", "---\ntitle: [unclosed\n---\n")
    write(tmp_path, "c.md", b"---\ntitle: caf\xe9\n---\n")
    write(tmp_path, "d.md", news("Same story", "https://example.com/a?utm_source=feed"))
    write(tmp_path, "e/f.md", news("Lists a", "https://example.com/f", ["https://example.com/a"]))
    write(tmp_path, "g.md", news("Lists x", "https://example.com/g", ["https://other.example/x"]))

    in_process = load(monkeypatch, 0, [tmp_path])
    with_workers = load(monkeypatch, 2, [tmp_path])

    assert with_workers == in_process
    summary, rows = with_workers
    assert (summary["files"], summary["created"], summary["updated"], summary["failed"]) == (
        6,
        3,
        1,
        2,
    )
    assert [error["path"] for error in summary["errors"]] == [
        str(tmp_path / "b.md"),
        str(tmp_path / "c.md"),
    ]
    assert [warning["field"] for warning in summary["warnings"]] == [
        "related[0].images[0].url",
        "related[0].images[0].url",
        "related[0].images[0].url",
    ]
    assert ("https://other.example/x", "Listed https://other.example/x", False, None) in rows[
        "stories"
    ]


@pytest.mark.slow
def test_a_source_key_stored_earlier_in_the_run_is_compared_again(
    tmp_path, monkeypatch, one_file_batches
):
    """Workers compare raw hashes ahead of the writes; a key written meanwhile is compared again.

    ``b/x.md`` has the bytes stored by the last load, but ``a/x.md`` (the same
    source key) stores other bytes first in this run, so ``b/x.md`` is loaded again.
    """
    first, second = tmp_path / "a", tmp_path / "b"
    write(first, "x.md", news("From a", "https://example.com/x"))
    write(second, "x.md", news("From b", "https://example.com/x"))
    write(second, "y.md", news("Other", "https://example.com/y"))
    loader.load([second])

    in_process = load(monkeypatch, 0, [first, second])
    with_workers = load(monkeypatch, 2, [first, second])

    assert with_workers == in_process
    summary, rows = with_workers
    assert (summary["updated"], summary["unchanged"]) == (2, 1)
    assert ("x.md", loader.raw_digest((second / "x.md").read_bytes()), "From b") in rows["files"]


def test_a_load_collects_garbage_less_and_leaves_the_collector_as_it_found_it(
    tmp_path, monkeypatch
):
    write(tmp_path, "a.md", news("First", "https://example.com/a"))
    before = gc.get_threshold(), gc.get_freeze_count()
    seen = []

    def failing_clustering(*args, **kwargs):
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        raise RuntimeError("clustering failed")

    monkeypatch.setattr(clustering, "update_for_articles", failing_clustering)
    with pytest.raises(RuntimeError):
        loader.load([tmp_path])

    [(threshold, frozen)] = seen
    assert threshold == bulk.BULK_GC_THRESHOLD
    assert frozen > before[1]
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2021, 5, 5, 10, 0, tzinfo=UTC),
        datetime(2021, 5, 5, 10, 0, 7, 250, tzinfo=UTC),
        datetime(2021, 5, 5, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        None,
    ],
)
def test_bulk_writes_store_datetimes_as_django_does(moment):
    assert bulk._datetime_adapter(connection)(moment) == (
        connection.ops.adapt_datetimefield_value(moment)
    )


def stored_cluster_ids(clusters):
    by_slug = dict(Cluster.objects.values_list("slug", "pk"))
    return [by_slug[cluster.slug] for cluster in clusters]


def test_bulk_inserts_tell_the_new_ids_in_row_order():
    first = [Cluster(slug=f"first-{n}") for n in range(5)]
    ids = bulk.insert_rows(Cluster, first, ids_by="slug")
    # The newest row goes: its id is not given again, the next rows count on from it.
    Cluster.objects.filter(slug="first-4").delete()
    second = [Cluster(slug=f"second-{n}") for n in (2, 0, 1)]
    more_ids = bulk.insert_rows(Cluster, second, ids_by="slug")

    assert ids[:4] == stored_cluster_ids(first[:4])
    assert more_ids == stored_cluster_ids(second)
    assert bulk.insert_rows(Cluster, [Cluster(slug="no-ids")]) is None


def test_bulk_inserts_read_back_more_new_ids_than_one_query_takes(monkeypatch):
    monkeypatch.setattr(bulk, "READ_BACK_BATCH", 2)
    monkeypatch.setattr(connection, "vendor", "elsewhere")  # as any database but SQLite
    clusters = [Cluster(slug=f"cluster-{n}") for n in (3, 1, 4, 0, 2)]
    assert bulk.insert_rows(Cluster, clusters, ids_by="slug") == stored_cluster_ids(clusters)


@pytest.mark.django_db(transaction=True)
def test_bulk_inserts_outside_a_transaction_read_the_new_ids_back():
    """Each INSERT then commits alone, and another connection may write in between."""
    assert not connection.in_atomic_block
    alone = [Cluster(slug="alone"), Cluster(slug="also-alone")]
    assert bulk.insert_rows(Cluster, alone, ids_by="slug") == stored_cluster_ids(alone)


PAGE_INDEXES = {index.name for model in loader.PAGE_INDEXED_MODELS for index in model._meta.indexes}


def test_the_page_indexes_are_those_of_the_stories_clusters_and_topic_pages():
    assert {"article_pub_date", "cluster_public_latest", "clustertopic_top"} <= PAGE_INDEXES


def page_indexes():
    """Which of the indexes for the pages the database has now."""
    names = set()
    with connection.cursor() as cursor:
        for model in loader.PAGE_INDEXED_MODELS:
            names |= set(connection.introspection.get_constraints(cursor, model._meta.db_table))
    return PAGE_INDEXES.intersection(names)


def test_a_first_load_builds_the_page_indexes_after_its_writes_and_clustering(
    tmp_path, monkeypatch
):
    """On SQLite, a load into an empty database writes and clusters without the
    indexes for the pages and builds them at the end; a load into a filled one
    works with them."""
    write(tmp_path, "a.md", news("First", "https://example.com/a", ["https://other.example/x"]))
    during = []
    load_batch, update_for_articles = loader._load_batch, clustering.update_for_articles

    def noting_indexes(*args):
        during.append(("writes", page_indexes()))
        return load_batch(*args)

    def noting_indexes_then_clustering(*args, **kwargs):
        during.append(("clustering", page_indexes()))
        return update_for_articles(*args, **kwargs)

    monkeypatch.setattr(loader, "_load_batch", noting_indexes)
    monkeypatch.setattr(clustering, "update_for_articles", noting_indexes_then_clustering)
    loader.load([tmp_path])
    assert Cluster.objects.count() == 2  # the story and the one it lists
    write(tmp_path, "b.md", news("Second", "https://example.com/b"))
    loader.load([tmp_path])

    first_load = set() if connection.vendor == "sqlite" else PAGE_INDEXES
    assert during == [
        ("writes", first_load),
        ("clustering", first_load),
        ("writes", PAGE_INDEXES),
        ("clustering", PAGE_INDEXES),
    ]
    assert page_indexes() == PAGE_INDEXES


def test_a_first_load_that_fails_keeps_the_page_indexes(tmp_path, monkeypatch):
    write(tmp_path, "a.md", news("First", "https://example.com/a"))

    def failing_batch(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(loader, "_load_batch", failing_batch)
    with pytest.raises(RuntimeError):
        loader.load([tmp_path])

    assert page_indexes() == PAGE_INDEXES
