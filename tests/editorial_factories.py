"""Small newsrooms built with the ORM for the admin and moderation tests."""

import itertools
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from articles import clustering
from articles.models import Article, ArticleTopic, Provider, Topic

PASSWORD = "correct horse battery staple"
_serial = itertools.count(1)


def provider(domain):
    return Provider.objects.get_or_create(domain=domain, defaults={"name": domain.title()})[0]


def topic(name, parent=None):
    slug = name.lower().replace(" ", "-")
    return Topic.objects.get_or_create(name=name, defaults={"slug": slug, "parent": parent})[0]


def unsaved_story(title, outlet, published=False, file_backed=True, **fields):
    n = next(_serial)
    url = f"https://{outlet}/news/{n}"
    return Article(
        canonical_url=url,
        web_url=url,
        slug=f"story-{n}",
        title=title,
        provider=provider(outlet),
        is_file_backed=file_backed,
        published=published if file_backed else None,
        file_published=published if file_backed else None,
        published_at=fields.pop("published_at", timezone.now() - timedelta(hours=n)),
        source_key=f"news/{n}.md" if file_backed else "",
        **fields,
    )


def story(title, outlet="example.com", topics=(), published=False, file_backed=True, **fields):
    """One story, clustered as the loader leaves a new story."""
    article = unsaved_story(title, outlet, published, file_backed, **fields)
    article.save()
    for name in topics:
        ArticleTopic.objects.create(article=article, topic=topic(name))
    clustering.update_for_articles([article.pk])
    article.refresh_from_db()
    return article


def many_stories(count, title, outlet="wire.example", topics=(), **fields):
    """``count`` stories saved and clustered at once, each headline its own event."""
    articles = Article.objects.bulk_create(
        unsaved_story(f"{title} {n}: {SUBJECTS[n % len(SUBJECTS)]} {n * 7919}", outlet, **fields)
        for n in range(count)
    )
    ArticleTopic.objects.bulk_create(
        ArticleTopic(article=article, topic=topic(name)) for article in articles for name in topics
    )
    clustering.update_for_articles([article.pk for article in articles])
    return articles


SUBJECTS = ["harbour", "senate", "vaccine", "satellite", "orchestra", "glacier", "tariff"]


def join(lead, *others):
    """Put ``others`` in ``lead``'s cluster, as clustering would for one event."""
    Article.objects.filter(pk__in=[o.pk for o in others]).update(cluster=lead.cluster)
    clustering.refresh_clusters([lead.cluster_id, *(o.cluster_id for o in others)])
    for article in (lead, *others):
        article.refresh_from_db()


def editor(username="editor", password=None):
    """A staff user in the Editors group; without a password (tests log in with force_login)."""
    user = get_user_model().objects.create_user(username, password=password, is_staff=True)
    user.groups.add(Group.objects.get(name="Editors"))
    return user


def superuser(username="chief"):
    return get_user_model().objects.create_superuser(username, email="", password=None)
