"""The benchmark corpus generator: reproducible, in the real format, loadable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.make_corpus import Corpus, write_corpus

REPO = Path(__file__).resolve().parent.parent


def tree(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def front_matter(data):
    text = data.decode("utf-8").replace("\r\n", "\n")
    assert text.startswith("---\n")
    return yaml.load(text[4:].split("\n---\n", 1)[0], Loader=yaml.CSafeLoader)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    write_corpus(out, 400, 7)
    return out


def test_same_seed_same_bytes(corpus_dir, tmp_path):
    write_corpus(tmp_path, 400, 7)
    assert tree(tmp_path) == tree(corpus_dir)


def test_same_seed_same_bytes_in_another_process(corpus_dir, tmp_path):
    """Another process hashes strings differently: nothing may depend on a set's order."""
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        subprocess.run(
            [sys.executable, "bench/make_corpus.py", "--count", "400", "--seed", "7", str(out)],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            check=True,
        )
        assert tree(out) == tree(corpus_dir), hash_seed


def test_other_seed_other_bytes(corpus_dir, tmp_path):
    write_corpus(tmp_path, 400, 8)
    assert tree(tmp_path) != tree(corpus_dir)


def test_news_files_follow_the_format(corpus_dir):
    news = [data for key, data in tree(corpus_dir).items() if key.startswith("news/")]
    assert len(news) == 400
    items = [front_matter(data) for data in news]
    for item in items:
        assert item["category"] == "news"
        assert item["title"].strip()
        assert item.get("webUrl") or item["originalUrl"].startswith("https://youtube.com/")
        assert item["provider"]["domain"]
        assert item["topics"]
        assert len(item.get("related", [])) <= 60
    # The edge cases are present in a corpus of this size.
    assert any(b"\r\n" in data for data in news)
    assert any(item["type"] == "video" and "webUrl" not in item for item in items)
    assert any(item.get("heat") == -1 for item in items)
    assert any("&#" in item["excerpt"] or "&amp;" in item["excerpt"] for item in items)
    assert max(len(item.get("related", [])) for item in items) > 30


def test_related_lists_link_to_other_files_and_events_group_files(corpus_dir):
    items = [front_matter(p.read_bytes()) for p in sorted((corpus_dir / "news").rglob("*.md"))]
    urls = {item.get("webUrl") for item in items}
    links = [r["webUrl"] for item in items for r in item.get("related", [])]
    assert sum(url in urls for url in links) > 50
    assert sum(url not in urls for url in links) > 50  # related-only stories
    corpus = Corpus(400, 7)
    assert max(len(members) for members in corpus.event_members.values()) >= 4


def test_a_revision_changes_the_requested_fraction(corpus_dir, tmp_path):
    before = tree(corpus_dir)
    write_corpus(tmp_path, 400, 7)
    files, written = write_corpus(tmp_path, 400, 7, revision=1, fraction=0.1)
    after = tree(tmp_path)
    changed = [key for key in before if before[key] != after[key]]
    assert written == len(changed) == 40
    assert files == len(before)
    # Back to revision 0 rewrites exactly those files.
    assert write_corpus(tmp_path, 400, 7)[1] == 40
    assert tree(tmp_path) == before


def test_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/make_corpus.py", "--count", "5", "--seed", "3", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "news").rglob("*.md"))) == 5
    bad = subprocess.run(
        [sys.executable, "bench/make_corpus.py", "--count", "0", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "--count" in bad.stderr


@pytest.mark.django_db
def test_generated_files_load_without_failures(tmp_path):
    from io import StringIO

    from django.core.management import call_command

    files, _written = write_corpus(tmp_path, 150, 11)
    out = StringIO()
    call_command("load_seeds", str(tmp_path), json=True, stdout=out, stderr=StringIO())
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["failed"] == 0, summary["errors"][:5]
    assert summary["files"] == files


def distinct_excerpt_words(paths, count):
    from articles.text_similarity import story_text

    words, seen = set(), 0
    for path in paths:
        item = front_matter(path.read_bytes())
        if isinstance(item, dict) and item.get("excerpt"):
            words |= story_text("", item["excerpt"]).lede_tokens
            seen += 1
            if seen == count:
                break
    return len(words)


def test_excerpts_use_about_as_many_words_as_the_real_archive(corpus, corpus_dir):
    """Unrelated stories share words about as often as real ones only if the vocabulary
    is as wide: a narrow one makes every pair of stories look alike to clustering."""
    real = distinct_excerpt_words(sorted((corpus / "news").rglob("*.md")), 300)
    synthetic = distinct_excerpt_words(sorted((corpus_dir / "news").rglob("*.md")), 300)
    assert 0.5 <= synthetic / real <= 2, (synthetic, real)
