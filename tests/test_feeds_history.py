"""Guids across a real file's history: the file swaps between syndicated copies."""

import shutil

import feedparser
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from articles import clustering, versioning
from articles.models import Article

HISTORY_STEM = "2022-06-06-alithya-unveils-microsoft-healthcare-power-apps"


def load(path):
    call_command("load_seeds", str(path), verbosity=0)


@pytest.mark.corpus
def test_guid_survives_a_syndicated_copy_swap(corpus, db, tmp_path):
    """The same file switching outlets (tmcnet.com to barrons.com) keeps its item's guid."""
    folder = tmp_path / "news"
    folder.mkdir()
    target = folder / f"{HISTORY_STEM}.md"
    shutil.copy(corpus / "history" / f"{HISTORY_STEM}--v001.md", target)
    load(folder)
    story = Article.objects.get(source_key__endswith=f"{HISTORY_STEM}.md")
    # The copy is below the quality bar in the file; an editor publishes it.
    Article.objects.filter(pk=story.pk).update(published=True, published_decided_at=timezone.now())
    clustering.refresh_clusters([story.cluster_id])
    versioning.bump()
    client = Client()

    def items():
        feed_all = feedparser.parse(client.get(reverse("articles:feed_all_atom")).content)
        return [(entry.id, entry.link) for entry in feed_all.entries]

    before = items()
    assert len(before) == 1 and "tmcnet.com" in before[0][1]
    shutil.copy(corpus / "history" / f"{HISTORY_STEM}--v010.md", target)
    load(folder)
    after = items()
    assert len(after) == 1 and "barrons.com" in after[0][1]
    assert after[0][0] == before[0][0]
