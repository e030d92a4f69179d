"""The site-wide content version: one database row every process can read.

Loads run from the shell and app servers on other boxes must all see a publish
at once, so the version lives in the database (one indexed read), not in any
one process's memory. Caches put it in their keys; feeds use ``changed_at``.
"""

import functools

from django.db import connections, router
from django.db.models import F
from django.utils import timezone

from .models import ContentVersion

ROW_ID = 1


def bump():
    """Record that public content changed; returns nothing, costs one UPDATE."""
    now = timezone.now()
    updated = ContentVersion.objects.filter(pk=ROW_ID).update(
        version=F("version") + 1, changed_at=now
    )
    if not updated:
        ContentVersion.objects.get_or_create(pk=ROW_ID, defaults={"changed_at": now})


def hold():
    """Keep the content version row locked until the transaction ends.

    Loads, rebuilds and editors' merges regroup clusters; two side by side would
    both claim the same permalinks or undo each other's moves. SQLite's IMMEDIATE
    transactions already take turns; on PostgreSQL this row lock makes them.
    """
    list(ContentVersion.objects.select_for_update().filter(pk=ROW_ID).values_list("pk"))


def current():
    """The current ``ContentVersion`` row."""
    alias = router.db_for_read(ContentVersion)
    sql, params = _row_sql(alias)
    row = next(iter(ContentVersion.objects.raw(sql, params, using=alias)), None)
    if row is None:
        row, _ = ContentVersion.objects.get_or_create(pk=ROW_ID)
    return row


@functools.cache
def _row_sql(alias, fields=()):
    """The row's query (only ``fields``, when given), compiled once per process: every
    request reads the row, and building and compiling the query cost four times running it."""
    query = ContentVersion.objects.using(alias).filter(pk=ROW_ID)
    if fields:
        query = query.values_list(*fields)
    return query.query.sql_with_params()


def for_request(request):
    """The version this request is served under: read once, shared by every cache key it builds.

    The response cache reads it first; the view's fragment keys then agree with
    the page key even if a publish lands mid-request. Only ``version`` is read;
    ``changed_at`` loads if asked for.
    """
    version = getattr(request, "content_version", None)
    if version is None:
        version = request.content_version = _version_only()
    return version


_VERSION_FIELDS = ("id", "version")


def _version_only():
    # Cache keys need only the number: an integer, so the row needs no field
    # converters, and the request skips building a model query (raw() costs three
    # times a plain cursor).
    alias = router.db_for_read(ContentVersion)
    sql, params = _row_sql(alias, _VERSION_FIELDS)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    if found is None:
        return current()
    return ContentVersion.from_db(alias, _VERSION_FIELDS, found)
