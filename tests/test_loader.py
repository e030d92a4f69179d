"""load_seeds on the official seeds, on hand-made bad input, and its re-load semantics."""

import json
import os
import re
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from articles import clustering, loader
from articles.models import (
    Article,
    ArticleImage,
    ContentVersion,
    ModerationEvent,
    Provider,
    RelatedListing,
    SourceFile,
    Topic,
)

pytestmark = pytest.mark.django_db

TECHCRUNCH = (
    "https://techcrunch.com/2020/06/08/"
    "ibm-ends-all-facial-recognition-work-as-ceo-calls-out-bias-and-inequality/"
)


def load(*paths, **options):
    """Run the command; returns (exit status, JSON summary or None, stderr)."""
    out, err = StringIO(), StringIO()
    status = 0
    try:
        call_command("load_seeds", *map(str, paths), json=True, stdout=out, stderr=err, **options)
    except CommandError as exc:
        status = exc.returncode
        err.write(str(exc))
    lines = out.getvalue().strip().splitlines()
    summary = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return status, summary, err.getvalue()


def news(**fields):
    """A valid news file; ``fields`` override or (as None) remove keys."""
    data = {
        "category": "news",
        "title": "A story",
        "excerpt": "What happened.",
        "publishedDateTime": "2021-05-05T10:00:00Z",
        "webUrl": "https://example.com/story",
        "type": "article",
        "quality": 80,
        "heat": 80,
        "published": True,
        "provider": {"name": "Example", "domain": "example.com"},
        "topics": ["Power Apps"],
        "images": [{"url": "https://example.com/a.jpg", "width": 10, "height": 20}],
        "secured": "opaque",
    }
    data.update(fields)
    data = {key: value for key, value in data.items() if value is not None}
    return "---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True) + "---\n"


def write(folder, name, content):
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def nothing_stored():
    return not (
        Article.objects.exists()
        or SourceFile.objects.exists()
        or Provider.objects.exists()
        or Topic.objects.exists()
    )


# The official seeds ------------------------------------------------------------


def test_seeds(seeds_dir):
    status, summary, err = load(seeds_dir)
    assert (status, err) == (0, "")
    assert summary["files"] == 5 and summary["created"] == 5 and summary["failed"] == 0
    assert Article.objects.count() == 16
    assert Article.objects.file_backed().count() == 5
    assert Article.objects.related_only().count() == 11
    assert Provider.objects.count() == 15
    assert Topic.objects.count() == 3
    assert Article.objects.filter(published=True).count() == 1
    assert set(Topic.objects.values_list("slug", flat=True)) == {"ai", "computer-vision", "ibm-ai"}

    # Seed 000's related TechCrunch item is seed 004's own story.
    techcrunch = Article.objects.get(canonical_url=TECHCRUNCH)
    assert techcrunch.is_file_backed and techcrunch.source_key.startswith("004_")
    seed_000 = SourceFile.objects.get(key__startswith="000_").article
    assert seed_000.listings.filter(target=techcrunch).exists()
    assert seed_000.published is False and seed_000.heat is None

    # SC Media is listed by two seeds: one story, two listings with their own snapshots.
    sc_media = Article.objects.get(canonical_url__contains="scmagazine.com")
    assert not sc_media.is_file_backed and sc_media.published is None
    assert sorted(sc_media.listed_in.values_list("quality", flat=True)) == [39, 41]

    version = ContentVersion.objects.get().version
    status, summary, _ = load(seeds_dir)
    assert status == 0
    assert (summary["unchanged"], summary["created"], summary["updated"]) == (5, 0, 0)
    assert ContentVersion.objects.get().version == version, "a no-op re-load bumps nothing"


def test_summary_line_and_dry_run(seeds_dir):
    out = StringIO()
    call_command("load_seeds", str(seeds_dir), "--dry-run", stdout=out, stderr=StringIO())
    assert out.getvalue().startswith(
        "files: 5, created: 5, updated: 0, unchanged: 0, failed: 0, warnings: 0"
    )
    assert nothing_stored()


def test_missing_path_is_exit_2(tmp_path):
    status, summary, err = load(tmp_path / "nope")
    assert status == 2 and summary is None
    assert "nope: no such file or folder" in err


# Bad input: the file fails with a clear message, nothing of it is stored ----------


def huge_alias_bomb():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    return "---\ntitle: bomb\nwebUrl: https://example.com/x\n" + "\n".join(lines) + "\n---\n"


BAD_FILES = {
    "not-utf8": (b"---\ntitle: caf\xe9\n---\n", "file", "is not UTF-8"),
    "empty": (b"", "file", "is empty"),
    "blank": (b"\n  \n", "file", "is empty"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "file", "is binary"),
    "no-front-matter": ("title: x\nwebUrl: https://example.com/x\n", "front matter", "missing"),
    "unterminated": (
        "---\ntitle: x\nwebUrl: https://example.com/x\n",
        "front matter",
        "not closed",
    ),
    "yaml-syntax": ("---\ntitle: [unclosed\n---\n", "yaml", "syntax error at line"),
    "not-a-mapping": ("---\n- a\n- b\n---\n", "front matter", "must be a YAML mapping"),
    "scalar": ("---\njust text\n---\n", "front matter", "must be a YAML mapping"),
    "python-tag": (
        "---\ntitle: !!python/object/apply:os.system ['echo hi']\n---\n",
        "yaml",
        "tags that construct objects are refused",
    ),
    "alias-bomb": (huge_alias_bomb(), "yaml", "anchors and aliases"),
    "deep-nesting": ("---\ntitle: " + "[" * 5000 + "]" * 5000 + "\n---\n", "yaml", "nesting"),
    "deep-block-nesting": (
        "---\ntitle:\n" + "\n".join("  " * i + f"k{i}:" for i in range(1, 40)) + " x\n---\n",
        "yaml",
        "nesting",
    ),
    "deep-complex-keys": ("---\ntitle: x\nk:\n  " + "? " * 20000 + "x\n---\n", "yaml", "nesting"),
    "deep-compact-lists": ("---\ntitle: x\nk:\n  " + "-  " * 20000 + "x\n---\n", "yaml", "nesting"),
    "number": ("---\n42\n---\n", "front matter", "must be a YAML mapping"),
    "unknown-taxonomy": ("taxonomy: person\nname: Ada\n", "taxonomy", "is not known"),
    "title-missing": (news(title=None), "title", "is missing"),
    "title-empty": (news(title="  "), "title", "is empty"),
    "title-null": ("---\ntitle:\nwebUrl: https://example.com/x\n---\n", "title", "null"),
    "title-number": (news(title=2021), "title", "must be a string, not int"),
    "title-list": (news(title=["a"]), "title", "must be a string, not list"),
    "url-missing": (news(webUrl=None), "webUrl", "is missing"),
    "url-javascript": (news(webUrl="javascript:alert(1)"), "webUrl", "only http and https"),
    "url-data": (news(webUrl="data:text/html,<b>x</b>"), "webUrl", "only http and https"),
    "url-file": (news(webUrl="file:///etc/passwd"), "webUrl", "only http and https"),
    "url-relative": (news(webUrl="/news/story"), "webUrl", "not an absolute"),
    "url-too-long": (news(webUrl="https://example.com/" + "a" * 2001), "webUrl", "longer than"),
    "original-url-bad": (news(originalUrl="javascript:x"), "originalUrl", "only http and https"),
    "video-url-bad": (news(webUrl=None, originalUrl="data:x"), "originalUrl", "only http"),
    "date": (news(publishedDateTime="last Tuesday"), "publishedDateTime", "not a date"),
    "date-impossible": (news(publishedDateTime="2021-02-30T10:00:00Z"), "publishedDateTime", ""),
    "date-impossible-unquoted": (
        "---\ntitle: x\nwebUrl: https://example.com/x\npublishedDateTime: 2021-02-30T10:00:00Z\n"
        "provider: {name: X, domain: example.com}\n---\n",
        "publishedDateTime",
        "'2021-02-30T10:00:00Z' is not a date and time",
    ),
    "list-as-key": (
        "---\ntitle: x\n? [a, b]\n: 1\n---\n",
        "yaml",
        "is not plain data at line 2, column 3: found unhashable key",
    ),
    "quality": (news(quality="high"), "quality", "must be an integer"),
    "quality-float": (news(quality=7.5), "quality", "must be an integer"),
    "quality-huge": (news(quality=10**12), "quality", "is out of range"),
    "heat": (news(heat="warm"), "heat", "must be an integer"),
    "heat-bool": (news(heat=True), "heat", "must be an integer"),
    "published": (news(published="yes"), "published", "must be true or false"),
    "published-number": (news(published=1), "published", "must be true or false"),
    "topics-string": (news(topics="Power Apps"), "topics", "must be a list"),
    "topics-mapping": (news(topics=[{"name": "x"}]), "topics[0]", "must be a topic name"),
    "provider-missing": (news(provider=None), "provider", "is missing"),
    "provider-string": (news(provider="Example"), "provider", "must be a mapping"),
    "provider-no-domain": (news(provider={"name": "X"}), "provider.domain", "is missing"),
    "provider-bad-domain": (
        news(provider={"name": "X", "domain": "not a domain"}),
        "provider.domain",
        "is not a domain",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_bad_file(tmp_path, case):
    content, part, message = BAD_FILES[case]
    path = write(tmp_path, f"{case}.md", content)
    status, summary, err = load(path)
    assert status == 1
    assert summary["failed"] == 1 and summary["created"] == 0
    [error] = summary["errors"]
    assert error["path"] == str(path) and error["field"] == part
    assert message in error["message"]
    assert f"{path}: {part}: " in err
    assert "Traceback" not in err
    assert nothing_stored()


def test_file_size_limit(tmp_path, settings):
    settings.LOADER_MAX_FILE_BYTES = 1000
    path = write(tmp_path, "big.md", news(excerpt="x" * 2000))
    status, summary, _ = load(path)
    assert status == 1
    assert summary["errors"] == [
        {"path": str(path), "field": "file", "message": "is larger than the 1,000-byte limit"}
    ]
    assert nothing_stored()


def test_one_bad_file_does_not_stop_the_run(tmp_path):
    write(tmp_path, "a-good.md", news())
    write(tmp_path, "b-bad.md", news(webUrl="javascript:alert(1)"))
    write(tmp_path, "c-good.md", news(webUrl="https://example.com/other"))
    status, summary, _ = load(tmp_path)
    assert status == 1
    assert (summary["files"], summary["created"], summary["failed"]) == (3, 2, 1)
    assert set(SourceFile.objects.values_list("key", flat=True)) == {"a-good.md", "c-good.md"}


def test_bom_and_crlf_load_like_plain_files(tmp_path):
    write(tmp_path, "story.md", "\ufeff" + news().replace("\n", "\r\n"))
    status, summary, _ = load(tmp_path)
    assert (status, summary["created"]) == (0, 1)
    write(tmp_path, "story.md", news())
    status, summary, _ = load(tmp_path)
    assert (status, summary["unchanged"], summary["updated"]) == (0, 1, 0)


# Bad optional parts: dropped with a warning, the rest of the file loads ----------


def test_bad_optional_parts_are_dropped_with_warnings(tmp_path):
    related = [
        {"title": "No URL", "provider": {"name": "A", "domain": "a.com"}},
        {
            "title": "Bad URL",
            "webUrl": "javascript:x",
            "provider": {"name": "A", "domain": "a.com"},
        },
        {
            "title": "Good",
            "webUrl": "https://b.com/x",
            "provider": {"name": "B", "domain": "b.com"},
        },
        {"title": "Itself", "webUrl": "https://example.com/story?utm_source=x"},
        {
            "title": "Odd provider",
            "webUrl": "https://c.com/y",
            "provider": {"name": "https://c.com/y", "domain": "https://c.com/y"},
        },
    ]
    images = [
        {"url": "/relative.jpg", "width": 1, "height": 1},
        {"url": "https://example.com/ok.jpg", "width": "wide", "height": 1},
        {"url": "https://example.com/good.jpg?a=1&#038;b=2", "width": "620", "height": 497},
        {"width": 1},
    ]
    path = write(tmp_path, "story.md", news(related=related, images=images, ampWebUrl="data:x"))
    status, summary, _ = load(path)
    assert (status, summary["created"], summary["failed"]) == (0, 1, 0)
    fields = {warning["field"] for warning in summary["warnings"]}
    assert fields == {
        "related[0].webUrl",
        "related[1].webUrl",
        "related[3].webUrl",
        "related[4].provider.domain",
        "images[0].url",
        "images[1].width",
        "images[3].url",
        "ampWebUrl",
    }
    story = Article.objects.get(canonical_url="https://example.com/story")
    assert story.amp_web_url == ""
    assert list(story.images.values_list("url", "width")) == [
        ("https://example.com/good.jpg?a=1&b=2", 620)
    ]
    assert list(story.listings.values_list("title", "provider_domain")) == [
        ("Good", "b.com"),
        ("Odd provider", "c.com"),
    ]


# Identity and re-load semantics ------------------------------------------------------


def test_related_only_story_is_upgraded_in_place(tmp_path):
    lister = write(
        tmp_path,
        "lister.md",
        news(related=[{"title": "Listed", "webUrl": "https://b.com/x?utm_medium=rss"}]),
    )
    load(lister)
    listed = Article.objects.get(canonical_url="https://b.com/x")
    assert not listed.is_file_backed and listed.published is None
    slug = listed.slug
    write(tmp_path, "listed.md", news(title="Listed, in full", webUrl="https://b.com/x"))
    status, summary, _ = load(tmp_path / "listed.md")
    assert (status, summary["created"], summary["updated"]) == (0, 1, 0)
    upgraded = Article.objects.get(pk=listed.pk)
    assert upgraded.is_file_backed and upgraded.published is True
    assert upgraded.title == "Listed, in full" and upgraded.slug == slug
    assert Article.objects.count() == 2


def test_related_list_is_replaced_on_reload(tmp_path):
    def item(n):
        return {"title": f"Item {n}", "webUrl": f"https://b.com/{n}"}

    path = write(tmp_path, "story.md", news(related=[item(1), item(2), item(2)]))
    load(path)
    story = Article.objects.get(canonical_url="https://example.com/story")
    assert list(story.listings.values_list("web_url", flat=True)) == [
        "https://b.com/1",
        "https://b.com/2",
        "https://b.com/2",
    ]
    write(tmp_path, "story.md", news(related=[item(3), item(2)]))
    status, summary, _ = load(path)
    assert (status, summary["updated"]) == (0, 1)
    assert list(story.listings.values_list("title", flat=True)) == ["Item 3", "Item 2"]
    assert Article.objects.filter(canonical_url="https://b.com/1").exists(), "never deleted"


def test_changed_file_updates_its_story_in_place(tmp_path):
    path = write(tmp_path, "story.md", news())
    load(path)
    story = Article.objects.get()
    write(tmp_path, "story.md", news(secured="regenerated"))
    assert load(path)[1]["updated"] == 1
    write(tmp_path, "story.md", news(heat=-1, topics=["Power Apps", "AI Builder"], images=[]))
    assert load(path)[1]["updated"] == 1
    story.refresh_from_db()
    assert story.heat is None and story.secured == "opaque"
    assert set(story.topics.values_list("name", flat=True)) == {"Power Apps", "AI Builder"}
    assert not story.images.exists()


def test_two_files_with_one_canonical_url_are_one_story(tmp_path):
    write(tmp_path, "a.md", news(webUrl="https://example.com/story?mid=1"))
    write(tmp_path, "b.md", news(webUrl="https://EXAMPLE.com/story#x", title="Other copy"))
    status, summary, _ = load(tmp_path)
    assert (status, summary["created"], summary["updated"]) == (0, 1, 1)
    story = Article.objects.get()
    assert set(story.source_files.values_list("key", flat=True)) == {"a.md", "b.md"}
    assert story.title == "Other copy"


def test_url_swap_keeps_the_story_and_merges_the_other(tmp_path):
    write(tmp_path, "mine.md", news(webUrl="https://a.com/copy"))
    write(tmp_path, "theirs.md", news(webUrl="https://b.com/copy", title="Theirs"))
    write(
        tmp_path,
        "lister.md",
        news(webUrl="https://c.com/l", related=[{"title": "B", "webUrl": "https://b.com/copy"}]),
    )
    load(tmp_path)
    mine = Article.objects.get(canonical_url="https://a.com/copy")
    theirs = Article.objects.get(canonical_url="https://b.com/copy")
    Article.objects.filter(pk=theirs.pk).update(
        published=False, published_decided_at=timezone.now()
    )
    ModerationEvent.objects.create(action=ModerationEvent.UNPUBLISH, article=theirs)

    write(tmp_path, "mine.md", news(webUrl="https://b.com/copy", title="Mine, moved"))
    status, summary, _ = load(tmp_path)
    assert (status, summary["updated"], summary["unchanged"]) == (0, 1, 2)
    assert not Article.objects.filter(pk=theirs.pk).exists()
    merged = Article.objects.get(pk=mine.pk)
    assert merged.canonical_url == "https://b.com/copy" and merged.title == "Mine, moved"
    assert set(merged.source_files.values_list("key", flat=True)) == {"mine.md", "theirs.md"}
    assert merged.published is False and merged.published_decided_at is not None
    assert merged.file_published is True
    assert RelatedListing.objects.get().target_id == merged.pk
    assert ModerationEvent.objects.get().article_id == merged.pk
    assert not Article.objects.filter(canonical_url="https://a.com/copy").exists()
    # The merged-away story left its event and cluster: they regroup as a rebuild would.
    regrouped = clustering.partition()
    clustering.recluster()
    assert clustering.partition() == regrouped


def test_a_story_at_a_url_another_story_left_gets_a_slug_of_its_own(tmp_path):
    # The moved story keeps its slug (permalinks never change), which was made
    # from the old URL: a new story there must not collide with it.
    write(tmp_path, "mine.md", news(webUrl="https://a.com/copy"))
    load(tmp_path)
    write(tmp_path, "mine.md", news(webUrl="https://b.com/copy"))
    load(tmp_path)
    write(tmp_path, "back.md", news(webUrl="https://a.com/copy"))
    write(
        tmp_path,
        "lister.md",
        news(webUrl="https://c.com/l", related=[{"title": "A story", "webUrl": "https://a.com/x"}]),
    )
    status, summary, err = load(tmp_path)
    assert (status, summary["failed"], err) == (0, 0, "")
    slugs = list(Article.objects.values_list("slug", flat=True))
    assert len(slugs) == len(set(slugs)) == 4


def test_topic_names_that_slugify_alike_get_numbered_slugs(tmp_path):
    write(tmp_path, "a.md", news(topics=["IBM AI"]))
    load(tmp_path)
    write(tmp_path, "b.md", news(webUrl="https://example.com/b", topics=["IBM-AI", "IBM AI!"]))
    status, summary, _ = load(tmp_path)
    assert (status, summary["failed"]) == (0, 0)
    slugs = dict(Topic.objects.values_list("name", "slug"))
    assert slugs == {"IBM AI": "ibm-ai", "IBM-AI": "ibm-ai-2", "IBM AI!": "ibm-ai-3"}


def test_editor_decision_survives_reload(seeds_dir, tmp_path):
    folder = tmp_path / "seeds"
    shutil.copytree(seeds_dir, folder)
    load(folder)
    story = Article.objects.get(canonical_url=TECHCRUNCH)
    assert story.published is True
    Article.objects.filter(pk=story.pk).update(published=False, published_decided_at=timezone.now())
    seed = next(folder.glob("004_*"))
    seed.write_text(seed.read_text().replace("heat: 98", "heat: 99"))
    status, summary, _ = load(folder)
    assert (status, summary["updated"], summary["unchanged"]) == (0, 1, 4)
    story.refresh_from_db()
    assert story.published is False and story.file_published is True and story.heat == 99


def test_future_dates_are_clamped_to_first_seen(tmp_path):
    load(write(tmp_path, "story.md", news(publishedDateTime="2999-01-01T00:00:00Z")))
    story = Article.objects.get()
    assert story.published_at == story.first_seen_at


def test_topic_and_organization_files(tmp_path):
    write(tmp_path, "child.yaml", "taxonomy: topic\nname: IBM AI\nparent: AI\nkeywords: [ibm]\n")
    write(
        tmp_path,
        "org.md",
        "---\ntaxonomy: organization\nname: TechCrunch\ndomain: TechCrunch.com\n"
        "description: Startups.\nimages:\n  - url: https://tc.com/logo.png\n    width: 50\n"
        "    height: 50\n  - url: /assets/logo.png\n---\n",
    )
    status, summary, _ = load(tmp_path)
    assert (status, summary["created"], summary["failed"]) == (0, 2, 0)
    child = Topic.objects.get(name="IBM AI")
    assert (child.slug, child.parent.name, child.keywords) == ("ibm-ai", "AI", ["ibm"])
    provider = Provider.objects.get(domain="techcrunch.com")
    assert (provider.name, provider.description) == ("TechCrunch", "Startups.")
    assert list(provider.images.values_list("url", flat=True)) == ["https://tc.com/logo.png"]
    assert [w["field"] for w in summary["warnings"]] == ["images[1].url"]
    assert load(tmp_path)[1]["unchanged"] == 2


def test_text_is_cleaned(tmp_path):
    load(
        write(
            tmp_path,
            "story.md",
            news(title="Security  in\u00a0Dataverse\u00a0", excerpt="H&#038;M &amp; co\r\nmore"),
        )
    )
    story = Article.objects.get()
    assert (story.title, story.excerpt) == ("Security in Dataverse", "H&M & co more")
    write(tmp_path, "story.md", news(excerpt="Placeholder."))
    load(tmp_path / "story.md")
    assert Article.objects.get().excerpt == ""
    assert ArticleImage.objects.count() == 1


@pytest.mark.slow
def test_command_line_exit_statuses(tmp_path, seeds_dir):
    """The real command: exit 0/1/2, errors on stderr as path: field: problem, no traceback."""
    repo = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "AGGREGATOR_VAR_DIR": str(tmp_path),
    }

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    unmigrated = manage("load_seeds", str(seeds_dir))
    assert unmigrated.returncode == 1 and "has `manage.py migrate` run?" in unmigrated.stderr
    assert manage("migrate", "--noinput", "-v0").returncode == 0
    ok = manage("load_seeds", str(seeds_dir))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == (
        "files: 5, created: 5, updated: 0, unchanged: 0, failed: 0, warnings: 0"
    )

    bad = write(tmp_path, "bad.md", news(quality="high"))
    failed = manage("load_seeds", "--json", str(bad))
    assert failed.returncode == 1
    assert f"{bad}: quality: must be an integer" in failed.stderr
    assert json.loads(failed.stdout.strip().splitlines()[-1])["failed"] == 1

    missing = manage("load_seeds", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    for run in (unmigrated, ok, failed, missing):
        assert "Traceback" not in run.stderr


def test_provider_logos(tmp_path):
    logo = {"url": "https://cdn.example/logos/example.com-50x50.jpg", "width": 50, "height": 50}
    write(
        tmp_path,
        "a.md",
        news(provider={"name": "Example", "domain": "example.com", "images": [logo]}),
    )
    write(
        tmp_path,
        "example.com.md",
        "---\ntaxonomy: organization\nname: Example Inc.\ndomain: example.com\n"
        "images:\n  - url: /assets/images/organizations/example.com-50x50.jpg\n---\n",
    )
    status, summary, _ = load(tmp_path)
    assert status == 0
    provider = Provider.objects.get()
    assert provider.name == "Example Inc."
    assert list(provider.images.values_list("url", "width")) == [(logo["url"], 50)]


REFUSE_CLASH_SQL = {
    "sqlite": [
        "CREATE TRIGGER refuse_clash BEFORE INSERT ON articles_article "
        "WHEN NEW.canonical_url = 'https://example.com/clash' "
        "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_clash() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'refused by a trigger'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_clash BEFORE INSERT ON articles_article FOR EACH ROW "
        "WHEN (NEW.canonical_url = 'https://example.com/clash') EXECUTE FUNCTION refuse_clash()",
    ],
}


def test_a_file_the_database_refuses_fails_alone(tmp_path):
    """A chunk that fails in the database is redone file by file; only the culprit fails."""
    # A refusal validation cannot foresee, made by the database itself.
    with connection.cursor() as cursor:
        for statement in REFUSE_CLASH_SQL[connection.vendor]:
            cursor.execute(statement)
    write(tmp_path, "a.md", news(webUrl="https://example.com/a"))
    clash = write(tmp_path, "b.md", news(webUrl="https://example.com/clash", title="Clash"))
    write(tmp_path, "c.md", news(webUrl="https://example.com/c", featuredContent='<iframe a="\0">'))
    status, summary, err = load(tmp_path)
    assert status == 1
    assert (summary["created"], summary["failed"]) == (2, 1)
    [error] = summary["errors"]
    assert (error["path"], error["field"]) == (str(clash), "database")
    assert error["message"].startswith("could not be stored")
    assert set(SourceFile.objects.values_list("key", flat=True)) == {"a.md", "c.md"}
    assert not Article.objects.filter(canonical_url="https://example.com/clash").exists()
    assert Article.objects.get(canonical_url="https://example.com/c").featured_content == (
        '<iframe a="">'
    )


# Lines of fences, near-fences and list items, with either line break.
FRONT_MATTER_LINES = st.lists(
    st.sampled_from(
        ["---", "--- ", "---\t", "----", " ---", "a: -", "- - x", "? ? y", "-\t-", "b: 1"]
    ),
    max_size=8,
)


@given(lines=FRONT_MATTER_LINES, crlf=st.booleans(), bom=st.booleans())
def test_the_front_matter_ends_at_the_first_line_of_three_hyphens(lines, crlf, bom):
    text = ("\ufeff" if bom else "") + ("\r\n" if crlf else "\n").join(lines)
    text = text.encode().decode("utf-8-sig")
    opening = loader._OPENING_FENCE.match(text)
    if not opening:
        return
    # The plain reading: the first line from the opening fence on that is ---.
    fence = re.compile(r"^---[ \t]*\r?$", re.MULTILINE).search(text, opening.end())
    closing = loader._CLOSING_FENCE.search(text, opening.end() - 1)
    assert (closing is None) == (fence is None)
    if fence:
        assert closing.start() + 1 == fence.start()


def test_the_front_matter_is_every_line_between_the_fences():
    mapping, fenced = loader._read_mapping(b"---\nkey: |\n  kept as written\n---\nbody")
    assert fenced and mapping == {"key": "kept as written\n"}
