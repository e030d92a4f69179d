"""Conditional GET for feeds and the API: validators first, rendering only when needed.

Pollers repeat the same request every few minutes. The validators of a topic or
an outlet, whose stories grow with the site, come from the shared content
version row alone; those of a cluster come from aggregate queries over
``updated_at`` columns, computed once per content version and then read from
the cache. Either way a repeat that has not changed answers 304 without loading
a single item.

Stories and clusters that *left* a scope (unpublished, merged away) still count
towards its newest change: the aggregates run over every row that touches the
scope, not only the visible ones, and publishing refreshes the cluster's
``updated_at``. Otherwise ``Last-Modified`` could go backwards after an
unpublish and a client that sends only ``If-Modified-Since`` would keep a stale
copy.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import cache
from django.db.models import Max
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import http_date

from . import versioning
from .models import Article, Cluster

# How long shared caches and feed readers may reuse a response without asking.
MAX_AGE = 300
# Remembered validators only bound memory: a new content version never reads old ones.
VALIDATORS_SECONDS = 3600
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Validators:
    etag: str
    last_modified: datetime

    @classmethod
    def of(cls, key, moments, *extra):
        """Validators for the scope named ``key`` whose rows last changed at ``moments``.

        The ETag keeps microseconds (two changes within one second differ);
        ``extra`` carries anything else that must change it, such as a count.
        """
        moments = [moment for moment in moments if moment is not None]
        last_modified = max(moments, default=EPOCH)
        fingerprint = repr((key, [m.isoformat() for m in moments], extra))
        digest = hashlib.blake2b(fingerprint.encode(), digest_size=12).hexdigest()
        return cls(etag=f'"{digest}"', last_modified=last_modified)


def newest(queryset, *fields):
    """The newest value of each datetime field over a queryset, in one aggregate query."""
    row = queryset.aggregate(**{f"newest_{i}": Max(field) for i, field in enumerate(fields)})
    return list(row.values())


def site_validators():
    """Everything public: the shared content version plus the newest story and cluster."""
    version = versioning.current()
    moments = [version.changed_at]
    moments += newest(Cluster.objects.all(), "updated_at")
    moments += newest(Article.objects.all(), "updated_at")
    return Validators.of("site", moments, version.version)


def remembered(key, moments):
    """Validators for scope ``key`` from ``moments()``, computed once per content version.

    Every public change bumps the shared version, so validators computed under
    one version hold until the next. Feed readers always send validators, so
    their 304s never fill the whole-response cache; without this, each poll of
    a large topic would repeat its aggregate over every story in it.
    """
    cache_key = f"validators:v{versioning.current().version}:{key}"
    validators = cache.get(cache_key)
    if validators is None:
        validators = Validators.of(key, moments())
        cache.set(cache_key, validators, VALIDATORS_SECONDS)
    return validators


def versioned(key, row):
    """Validators for a scope that change with the shared content version.

    One primary-key read whatever the scope's size: every public change bumps
    the version (and moves ``changed_at`` forward), so a publish, an unpublish
    or a merge always changes them and ``Last-Modified`` never goes backwards.
    The price: a publish anywhere changes them, so a poller refetches a scope
    that may not have changed, at most once per publish.
    """
    version = versioning.current()
    return Validators.of(key, [version.changed_at, row.updated_at], version.version)


def topic_validators(topic):
    """A topic and its child topics. An aggregate over their stories grew with the
    topic and ran on every reader's first poll after each load."""
    return versioned(f"topic:{topic.pk}", topic)


def provider_validators(provider):
    """An outlet's stories: as topics, they grow with the site."""
    return versioned(f"provider:{provider.pk}", provider)


def cluster_validators(cluster):
    def moments():
        return [cluster.updated_at, *newest(Article.objects.filter(cluster=cluster), "updated_at")]

    return remembered(f"cluster:{cluster.pk}", moments)


def respond_conditionally(request, validators, render, max_age=MAX_AGE):
    """A 304 when the client's copy is current, else ``render()``; both carry the validators."""
    last_modified = int(validators.last_modified.timestamp())
    response = get_conditional_response(request, etag=validators.etag, last_modified=last_modified)
    if response is None:
        response = render()
    if response.status_code in (200, 304):
        response.headers["ETag"] = validators.etag
        response.headers["Last-Modified"] = http_date(last_modified)
        patch_cache_control(response, public=True, max_age=max_age)
    return response
