"""Small stories, clusters and topics built with the ORM, the way a load leaves them."""

from datetime import timedelta
from itertools import count

from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from articles import clustering, versioning
from articles.models import Article, ArticleImage, Cluster, ContentVersion, Provider, Topic

_serial = count(1)


def provider(domain, name=None):
    return Provider.objects.get_or_create(domain=domain, defaults={"name": name or domain})[0]


def topic(name, parent=None):
    return Topic.objects.create(name=name, slug=slugify(name), parent=parent)


def story(
    title,
    outlet,
    *,
    topics=(),
    published=True,
    file_backed=True,
    hours_ago=1,
    quality=80,
    image=True,
):
    """A story at its own URL; related-only stories are ``file_backed=False`` and undecided."""
    serial = next(_serial)
    slug = f"{slugify(title)[:60]}-{serial}"
    url = f"https://{outlet.domain}/news/{slug}?p={serial}"
    article = Article.objects.create(
        canonical_url=url,
        slug=slug,
        is_file_backed=file_backed,
        title=title,
        excerpt=f"What happened in {title}.",
        published_at=timezone.now() - timedelta(hours=hours_ago),
        web_url=url,
        provider=outlet,
        quality=quality,
        heat=quality,
        published=published if file_backed else None,
    )
    article.topics.set(topics)
    if image:
        ArticleImage.objects.create(
            article=article, url=f"https://{outlet.domain}/img/{serial}.jpg", width=640, height=360
        )
    return article


def cluster_of(*stories):
    """Put the stories in one cluster (the first one's slug) and refresh it, as clustering does."""
    cluster = Cluster.objects.create(slug=stories[0].slug)
    Article.objects.filter(pk__in=[s.pk for s in stories]).update(cluster=cluster)
    for member in stories:
        member.cluster = cluster
    clustering.refresh_clusters([cluster.pk])
    versioning.bump()
    cluster.refresh_from_db()
    return cluster


def set_published(article, value):
    """What an editor's publish/unpublish does: the flag, the cluster refresh, the version."""
    Article.objects.filter(pk=article.pk).update(published=value, updated_at=timezone.now())
    article.refresh_from_db()
    clustering.refresh_clusters([article.cluster_id])
    versioning.bump()


def age_everything(hours=1):
    """Move every change time into the past, so the next change is a later HTTP date."""
    delta = timedelta(hours=hours)
    for model in (Article, Cluster, Topic, Provider):
        model.objects.update(updated_at=F("updated_at") - delta)
    ContentVersion.objects.update(changed_at=F("changed_at") - delta)


def newsroom():
    """Two topics (a parent and a child), three outlets, public and unpublished clusters.

    - ``ibm``: published lead on the child topic with two coverage lines (one related-only).
    - ``waymo``: published lead on the parent topic alone.
    - ``secret``: a cluster whose only file-backed story is unpublished.
    """
    ai = topic("Artificial Intelligence")
    vision = topic("Computer Vision", parent=ai)
    tc, verge, wired = (
        provider("techcrunch.com", "TechCrunch"),
        provider("theverge.com", "The Verge"),
        provider("wired.com", "Wired"),
    )
    lead = story("IBM quits facial recognition", tc, topics=[vision], hours_ago=2, quality=90)
    more = story("IBM exits face recognition business", verge, topics=[vision], hours_ago=3)
    related = story("IBM drops facial recognition", wired, file_backed=False, hours_ago=4)
    ibm = cluster_of(lead, more, related)
    waymo_lead = story("Waymo expands robotaxi service", verge, topics=[ai], hours_ago=5)
    waymo = cluster_of(waymo_lead)
    hidden = story("Secret embargoed launch", wired, topics=[ai, vision], published=False)
    secret = cluster_of(hidden)
    return {
        "ai": ai,
        "vision": vision,
        "tc": tc,
        "verge": verge,
        "wired": wired,
        "lead": lead,
        "more": more,
        "related": related,
        "ibm": ibm,
        "waymo_lead": waymo_lead,
        "waymo": waymo,
        "hidden": hidden,
        "secret": secret,
    }
