"""load_seeds on the real-data corpus: every file loads, duplicates collapse, histories replay."""

import csv
import shutil
from collections import defaultdict

import pytest
import yaml

from articles import loader
from articles.canonical import canonical_url
from articles.models import Article, SourceFile, Topic

pytestmark = [pytest.mark.django_db, pytest.mark.corpus]

# Corpus README item 3: files whose URLs are one story.
DUPLICATE_PAIRS = [
    (
        "powerapps-b--2023-07-07-announcing-public-preview-of-ip-firewall-in-dataverse.md",
        "powerapps-b--2024-03-20-control-access-to-dataverse-with-ip-firewall-secure-your-data"
        "-with-ease.md",
    ),
    (
        "powerapps-b--2021-08-24-massive-microsoft-power-apps-data-breach-exposes-personal-details"
        "-of-38-million-people.md",
        "powerapps-b--2021-08-24-massive-microsoft-power-apps-data-breach-exposes-personal-details"
        "-of-38-million-people-american-airlines-and-nyc-schools-data-including-social.md",
    ),
    (
        "powerapps-b--2021-08-24-38m-records-exposed-via-microsoft-power-apps-misconfiguration.md",
        "powerapps-b--2021-08-28-38m-records-exposed-via-microsoft-power-apps-misconfiguration.md",
    ),
]
AI_BUILDER = (
    "2020-05-18-microsoft-power-apps-ai-builder-ready-to-use-models-2020-release-wave-1-overview"
)


def test_whole_corpus_loads(corpus):
    folders = [corpus / name for name in ("news", "news-ai", "topics", "organizations")]
    result = loader.load(folders)
    assert result.errors == []
    assert result.failed == 0
    assert result.files == 866 + 51 + 14 + 70

    # Every news file is a file-backed story; same-URL files share one.
    keys = SourceFile.objects.filter(kind=SourceFile.KIND_NEWS)
    assert keys.count() == 866 + 51
    assert not keys.filter(article__isnull=True).exists()
    for first, second in DUPLICATE_PAIRS:
        a = SourceFile.objects.get(key=first).article_id
        assert SourceFile.objects.get(key=second).article_id == a, (first, second)

    # Topics come from topic files with their parents; news topics are the same rows.
    assert Topic.objects.get(name="Canvas apps").parent.name == "Power Apps"
    assert Topic.objects.filter(name="Power Apps").count() == 1

    mojibake = SourceFile.objects.get(
        key="powerapps-b--2021-08-27-microsoft-makes-power-apps-changes-following-asensitive-"
        "dataa-exposure-upguard.md"
    ).article
    assert "\u2018Sensitive Data\u2019" in mojibake.title
    hm = SourceFile.objects.get(
        key="powerapps-b--2021-09-20-hm-group-enables-citizen-development-at-scale-with-"
        "microsoft-power-platform.md"
    ).article
    assert hm.excerpt.startswith("H&M Group")

    video = SourceFile.objects.get(
        key="powerapps-b--2020-11-12-ai-builder-receipt-scanning.md"
    ).article
    assert video.type == "video" and video.web_url == "" and "youtube.com" in video.link

    again = loader.load(folders)
    assert (again.created, again.updated, again.failed) == (0, 0, 0)
    assert again.unchanged == result.files


def history_versions(corpus):
    by_path = defaultdict(list)
    with open(corpus / "history" / "versions.tsv", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            by_path[row["path"]].append((int(row["version"]), row["file"]))
    return {path: [name for _, name in sorted(rows)] for path, rows in by_path.items()}


def test_history_replay_ends_as_one_story_with_the_last_values(corpus, tmp_path):
    histories = history_versions(corpus)
    assert len(histories) == 3
    for number, names in enumerate(histories.values()):
        target = tmp_path / f"story-{number}.md"
        statuses = []
        for name in names:
            shutil.copyfile(corpus / "history" / name, target)
            result = loader.load([target])
            assert result.failed == 0, result.errors
            statuses.append("created" if result.created else "updated" if result.updated else "-")
        assert statuses[0] == "created" and "created" not in statuses[1:]

        last = yaml.safe_load((corpus / "history" / names[-1]).read_text().split("---")[1])
        [story] = Article.objects.filter(source_files__key=target.name)
        assert story.canonical_url == canonical_url(last.get("webUrl") or last["originalUrl"])
        assert story.quality == last.get("quality") and story.heat == last.get("heat")
        assert story.provider.domain == last["provider"]["domain"]
        assert set(story.topics.values_list("name", flat=True)) == set(last["topics"])
    # Each history is one story; the syndicated copies it swapped between were merged away.
    assert Article.objects.count() == 3


def test_crlf_only_version_is_unchanged(corpus, tmp_path):
    stem = AI_BUILDER
    target = tmp_path / "story.md"
    shutil.copyfile(corpus / "history" / f"{stem}--v070.md", target)
    loader.load([target])
    shutil.copyfile(corpus / "history" / f"{stem}--v071.md", target)
    result = loader.load([target])
    assert (result.unchanged, result.updated) == (1, 0)
    assert SourceFile.objects.get().raw_hash == loader.raw_digest(target.read_bytes())


def test_topic_added_in_history(corpus, tmp_path):
    stem = AI_BUILDER
    target = tmp_path / "story.md"
    shutil.copyfile(corpus / "history" / f"{stem}--v058.md", target)
    loader.load([target])
    story = Article.objects.get()
    assert "AI Builder" not in set(story.topics.values_list("name", flat=True))
    shutil.copyfile(corpus / "history" / f"{stem}--v059.md", target)
    assert loader.load([target]).updated == 1
    story.refresh_from_db()
    assert "AI Builder" in set(story.topics.values_list("name", flat=True))
    assert story.quality == 148
