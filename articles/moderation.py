"""Editorial acts on stories, topics and providers.

Each act is one transaction: the new value with who decided and when, one
``ModerationEvent`` per changed row, the touched clusters refreshed and the
content version bumped, so every public surface shows it on the next request.
Cluster merges and splits live in ``articles.clustering`` and log the same way.
"""

from django.db import transaction
from django.utils import timezone

from . import clustering, versioning
from .models import Article, ModerationEvent, Provider, Topic


def published_label(published, is_file_backed=True):
    """How the log words a value of ``Article.published``."""
    if published is None:
        return "undecided"
    if published:
        return "published"
    return "unpublished" if is_file_backed else "hidden"


@transaction.atomic
def set_published(articles, published, actor, reason=""):
    """Decide ``published`` for a QuerySet of stories; returns how many changed.

    A story already decided this way is left alone (no row, no bump). Deciding a
    story the file already set the same way still counts: it stamps the
    decision, so later loads keep it and it leaves the review queue.
    """
    now = timezone.now()
    locked = (
        Article.objects.filter(pk__in=articles.values("pk"))
        .select_for_update()
        .order_by("pk")
        .only("pk", "title", "published", "published_decided_at", "is_file_backed", "cluster_id")
    )
    events = []
    for article in locked:
        if article.published == published and article.editor_decided:
            continue
        if published:
            action = ModerationEvent.PUBLISH
        elif article.is_file_backed:
            action = ModerationEvent.UNPUBLISH
        else:
            action = ModerationEvent.HIDE
        events.append(
            ModerationEvent(
                created_at=now,
                actor=actor,
                action=action,
                article=article,
                cluster_id=article.cluster_id,
                subject=article.title,
                field="published",
                old_value=published_label(article.published, article.is_file_backed),
                new_value=published_label(published, article.is_file_backed),
                reason=reason,
            )
        )
    if not events:
        return 0
    Article.objects.filter(pk__in=[event.article.pk for event in events]).update(
        published=published,
        published_decided_at=now,
        published_decided_by=actor,
        updated_at=now,
    )
    ModerationEvent.objects.bulk_create(events)
    clustering.refresh_clusters({event.cluster_id for event in events if event.cluster_id})
    versioning.bump()
    return len(events)


def publish(articles, actor, reason=""):
    return set_published(articles, True, actor, reason)


def unpublish(articles, actor, reason=""):
    return set_published(articles, False, actor, reason)


def hide(articles, actor, reason=""):
    """Hide related-only stories from coverage lines; file-backed ones are unpublished instead."""
    return set_published(articles.related_only(), False, actor, reason)


@transaction.atomic
def edit_description(obj, description, actor, reason=""):
    """Change a topic's or provider's description and log it; returns whether it changed."""
    model = type(obj)
    old = model.objects.select_for_update().values_list("description", flat=True).get(pk=obj.pk)
    if old == description:
        return False
    now = timezone.now()
    model.objects.filter(pk=obj.pk).update(description=description, updated_at=now)
    obj.description, obj.updated_at = description, now
    ModerationEvent.objects.create(
        created_at=now,
        actor=actor,
        action=ModerationEvent.EDIT_DESCRIPTION,
        topic=obj if isinstance(obj, Topic) else None,
        provider=obj if isinstance(obj, Provider) else None,
        subject=str(obj),
        field="description",
        old_value=old,
        new_value=description,
        reason=reason,
    )
    versioning.bump()
    return True


def refresh_after_delete(cluster_ids):
    """A superuser deleted stories: their clusters pick new leads, pages change."""
    clustering.refresh_clusters({pk for pk in cluster_ids if pk})
    versioning.bump()
