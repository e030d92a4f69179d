"""Editorial acts: their log rows, public effects, and that loads and re-clustering keep them."""

import re
import shutil
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from articles import clustering, moderation, versioning
from articles.models import Article, Cluster, ModerationEvent

from .editorial_factories import editor, join, story, superuser

pytestmark = pytest.mark.django_db


def only(pk):
    return Article.objects.filter(pk=pk)


@pytest.fixture
def desk():
    return editor("jdoe")


def test_publish_decides_logs_refreshes_and_bumps(desk):
    draft = story("Lone draft about a glacier survey", "example.org", ["Science"])
    cluster = draft.cluster
    assert not cluster.is_public
    version = versioning.current().version

    assert moderation.publish(only(draft.pk), desk, reason="checked") == 1

    draft.refresh_from_db()
    cluster.refresh_from_db()
    assert draft.published is True
    assert draft.published_decided_by == desk
    assert draft.published_decided_at is not None
    assert cluster.is_public and cluster.lead_id == draft.pk
    assert versioning.current().version == version + 1
    event = ModerationEvent.objects.get()
    assert (event.action, event.actor, event.article, event.cluster_id) == (
        "publish",
        desk,
        draft,
        cluster.pk,
    )
    assert (event.field, event.old_value, event.new_value, event.reason) == (
        "published",
        "unpublished",
        "published",
        "checked",
    )


def test_repeating_a_decision_changes_nothing(desk):
    draft = story("Draft on tariffs", published=False)
    moderation.publish(only(draft.pk), desk)
    version = versioning.current().version
    assert moderation.publish(only(draft.pk), desk) == 0
    assert ModerationEvent.objects.count() == 1
    assert versioning.current().version == version


def test_confirming_the_file_value_stamps_the_decision(desk):
    """Rejecting a story from the queue keeps it unpublished but decided, so it leaves the queue."""
    draft = story("Draft on satellites", published=False)
    assert list(Article.objects.awaiting_review()) == [draft]
    assert moderation.unpublish(only(draft.pk), desk) == 1
    assert not Article.objects.awaiting_review().exists()
    assert ModerationEvent.objects.get().old_value == "unpublished"


def test_hide_touches_only_related_only_stories(desk):
    lead = story("Senate passes budget", "a.example", published=True)
    coverage = story("Budget passes senate", "b.example", file_backed=False)
    join(lead, coverage)
    assert moderation.hide(Article.objects.all(), desk) == 1
    lead.refresh_from_db()
    coverage.refresh_from_db()
    assert lead.published is True
    assert coverage.published is False
    assert not Article.objects.coverage_visible().filter(pk=coverage.pk).exists()
    event = ModerationEvent.objects.get()
    assert (event.action, event.old_value, event.new_value) == ("hide", "undecided", "hidden")


def test_unpublishing_a_related_only_story_is_a_hide(desk):
    coverage = story("Orchestra tour announced", file_backed=False)
    moderation.unpublish(only(coverage.pk), desk)
    assert ModerationEvent.objects.get().action == "hide"


def test_description_edit_logs_old_and_new(desk):
    topic = story("Harbour expansion", topics=["Ports"]).topics.get()
    version = versioning.current().version
    assert moderation.edit_description(topic, "Shipping and ports.", desk)
    assert not moderation.edit_description(topic, "Shipping and ports.", desk)
    event = ModerationEvent.objects.get()
    assert (event.topic, event.old_value, event.new_value) == (topic, "", "Shipping and ports.")
    assert versioning.current().version == version + 1


def test_events_are_never_edited(desk):
    draft = story("Vaccine trial results")
    moderation.publish(only(draft.pk), desk)
    event = ModerationEvent.objects.get()
    event.reason = "rewritten"
    with pytest.raises(ValueError, match="never edited"):
        event.save()


def test_publish_and_unpublish_show_on_the_next_request(desk):
    """Pages, feeds, sitemap and API, through the response cache, see a decision at once."""
    draft = story("Glacier retreat measured by satellite", "example.org", ["Science"])
    cluster_url = draft.cluster.get_absolute_url()
    reader = Client()
    surfaces = [
        reverse("articles:home"),
        reverse("articles:topic", args=["science"]),
        reverse("articles:feed_all_rss"),
        reverse("articles:feed_all_json"),
        reverse("articles:sitemap_section", kwargs={"section": "clusters"}),
        reverse("articles:api_news_all", kwargs={"page": 1}),
    ]

    def shown():
        """Where the story appears (its title, or its cluster's address in the sitemap)."""
        found = set()
        for url in surfaces:
            body = reader.get(url).content.decode()
            if draft.title in body or cluster_url in body:
                found.add(url)
        if reader.get(cluster_url).status_code == 200:
            found.add(cluster_url)
        return found

    assert shown() == set()
    moderation.publish(only(draft.pk), desk)
    assert shown() == {*surfaces, cluster_url}
    moderation.unpublish(only(draft.pk), desk)
    assert shown() == set()


def test_public_moderation_log(desk, settings):
    shown = story("Harbour strike ends", "port.example", published=False)
    gone = story("Rumour about a merger", "gossip.example", published=True)
    hidden = story("Benchmarks, again", file_backed=False)
    moderation.publish(only(shown.pk), desk, reason="confirmed by two outlets")
    moderation.unpublish(only(gone.pk), desk)
    moderation.hide(only(hidden.pk), desk)
    moderation.edit_description(shown.provider, "A port newsletter.", desk)

    html = Client().get(reverse("articles:moderation")).content.decode()
    assert len(re.findall(r"<h1[\s>]", html)) == 1
    assert "Harbour strike ends" in html
    assert "confirmed by two outlets" in html
    assert "Rumour about a merger" not in html
    assert "Gossip.Example" in html  # named by its outlet only, now that it is not public
    assert "Benchmarks, again" not in html
    assert "A port newsletter." not in html
    assert desk.username not in html

    settings.MODERATION_LOG_SHOWS_USERS = True
    versioning.bump()  # pages cached under the old content version predate the setting
    assert f"by {desk.username}" in Client().get(reverse("articles:moderation")).content.decode()


@pytest.mark.parametrize("page", ["2", "0", "abc"])
def test_moderation_log_bad_pages_are_404(page):
    response = Client().get(reverse("articles:moderation"), {"page": page})
    assert response.status_code == 404


def test_preview_is_private_noindex_and_shows_the_draft(desk):
    draft = story("Orchestra strike looms", "music.example")
    client = Client()
    client.force_login(desk)
    response = client.get(reverse("articles:preview", args=[draft.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert {"private", "no-cache"} <= {
        part.strip() for part in response["Cache-Control"].split(",")
    }
    assert "noindex" in response["X-Robots-Tag"]
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert "Orchestra strike looms" in html
    assert "Editor preview" in html
    assert len(re.findall(r"<h1[\s>]", html)) == 1
    assert Client().get(draft.cluster.get_absolute_url()).status_code == 404


def test_preview_of_a_story_without_a_cluster_is_a_clear_404(desk):
    draft = story("Unclustered")
    Article.objects.filter(pk=draft.pk).update(cluster=None)
    client = Client()
    client.force_login(desk)
    response = client.get(reverse("articles:preview", args=[draft.pk]))
    assert response.status_code == 404


# --- Decisions survive loads and re-clustering ------------------------------------------


def load(path):
    call_command("load_seeds", str(path), stdout=StringIO(), stderr=StringIO())


def test_reload_after_a_toggle_keeps_the_decision(seeds_dir, tmp_path):
    """End to end: a seed says published: false; an editor publishes; the file changes; reload."""
    chief = superuser()
    seeds = tmp_path / "seeds"
    shutil.copytree(seeds_dir, seeds)
    load(seeds)
    seed = next(path for path in sorted(seeds.iterdir()) if "published: false" in path.read_text())
    article = Article.objects.get(source_key=seed.name)
    assert article.published is False

    client = Client()
    client.force_login(chief)
    client.post(
        reverse("admin:articles_article_changelist") + "?status=all",
        {"action": "publish_selected", "index": 0, "_selected_action": [article.pk]},
    )
    article.refresh_from_db()
    assert article.published is True

    seed.write_text(seed.read_text().replace("quality: ", "quality: 1", 1))
    load(seeds)
    article.refresh_from_db()
    assert article.published is True
    assert article.file_published is False
    assert article.published_decided_by == chief
    assert str(article.quality).startswith("1")  # the reload did apply the file's change


def test_merge_and_split_survive_recluster(desk):
    """Both acts go through the admin, are logged, and hold after a rebuild from scratch."""
    harbour = story("Harbour expansion approved by council", "a.example", published=True)
    senate = story("Senate confirms new trade envoy", "b.example", published=True)
    glacier = story("Glacier melt speeds up, study finds", "c.example", published=True)
    assert len({harbour.cluster_id, senate.cluster_id, glacier.cluster_id}) == 3
    client = Client()
    client.force_login(desk)

    response = client.post(
        reverse("admin:articles_cluster_changelist"),
        {
            "action": "merge_selected",
            "index": 0,
            "_selected_action": [harbour.cluster_id, senate.cluster_id],
            "confirmed": "yes",
            "reason": "same council vote",
        },
    )
    assert response.status_code == 302
    harbour.refresh_from_db()
    senate.refresh_from_db()
    assert harbour.cluster_id == senate.cluster_id

    response = client.post(
        reverse("admin:articles_article_split", args=[senate.pk]), {"reason": "different vote"}
    )
    assert response.status_code == 302
    for article in (harbour, senate, glacier):
        article.refresh_from_db()
    assert senate.cluster_id != harbour.cluster_id

    merged_again = client.post(
        reverse("admin:articles_cluster_changelist"),
        {
            "action": "merge_selected",
            "index": 0,
            "_selected_action": [harbour.cluster_id, glacier.cluster_id],
            "confirmed": "yes",
        },
    )
    assert merged_again.status_code == 302
    before = clustering.partition()
    call_command("recluster", stdout=StringIO())
    assert clustering.partition() == before
    groups = {frozenset(group) for group in before}
    assert frozenset({harbour.pk, glacier.pk}) in groups
    assert frozenset({senate.pk}) in groups
    assert list(ModerationEvent.objects.order_by("pk").values_list("action", "reason")) == [
        ("merge", "same council vote"),
        ("split", "different vote"),
        ("merge", ""),
    ]
    assert ModerationEvent.objects.filter(actor=desk).count() == 3
    assert Cluster.objects.filter(pk=harbour.cluster_id).exists()


TOPIC_FILE = """taxonomy: topic
_id: glaciers
name: Glaciers
keywords:
  - {keyword}
description: {description}
"""
ORGANIZATION_FILE = """---
taxonomy: organization
_id: example.org
name: Example Gazette
domain: example.org
description: {description}
---
"""


def test_a_reload_of_changed_files_keeps_an_editors_descriptions(desk, tmp_path):
    from articles.models import Provider, Topic

    topic_file, org_file = tmp_path / "glaciers.yaml", tmp_path / "example.org.md"
    topic_file.write_text(TOPIC_FILE.format(keyword="ice", description="From the file."))
    org_file.write_text(ORGANIZATION_FILE.format(description="From the file."))
    call_command("load_seeds", str(tmp_path), verbosity=0)
    topic, provider = Topic.objects.get(name="Glaciers"), Provider.objects.get(domain="example.org")
    moderation.edit_description(topic, "Written by the desk.", desk)
    moderation.edit_description(provider, "Written by the desk.", desk)

    topic_file.write_text(TOPIC_FILE.format(keyword="glacier", description="Newer file text."))
    org_file.write_text(ORGANIZATION_FILE.format(description="Newer file text."))
    call_command("load_seeds", str(tmp_path), verbosity=0)

    topic.refresh_from_db()
    provider.refresh_from_db()
    assert topic.description == provider.description == "Written by the desk."
    assert topic.keywords == ["glacier"]  # the file's other fields still load
