"""Pagination by id without counting: fetch one row more than a page to know if another follows.

Lists paginate lightweight ids first and load only that page's rows afterwards,
so a deep page of a large topic costs one index range scan and no COUNT(*).
"""

from dataclasses import dataclass

from django.db import connections
from django.http import Http404

PER_PAGE = 20
# Compiled id lists kept per process: a few per topic, a few hundred bytes each.
COMPILED_LIMIT = 5_000
# Deeper pages than this are not worth an OFFSET scan; nobody reads page 5,000.
MAX_PAGE = 5_000


@dataclass(frozen=True)
class IdPage:
    number: int
    ids: list
    has_next: bool

    @property
    def has_previous(self):
        return self.number > 1

    @property
    def has_other_pages(self):
        return self.has_previous or self.has_next

    @property
    def previous_page_number(self):
        return self.number - 1

    @property
    def next_page_number(self):
        return self.number + 1


def page_number(value):
    """The requested page number; anything but a plain number in range is a missing page."""
    if value in (None, ""):
        return 1
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise Http404("There is no such page.")
    number = int(value)
    if not 1 <= number <= MAX_PAGE:
        raise Http404("There is no such page.")
    return number


def paginate_ids(ids, page_param, per_page=PER_PAGE):
    """One page of ``ids`` (a ``values_list(..., flat=True)`` queryset); 404 past the end."""
    number = page_number(page_param)
    start = (number - 1) * per_page
    window = list(ids[start : start + per_page + 1])
    if number > 1 and not window:
        raise Http404("That page is past the end of the list.")
    return IdPage(number=number, ids=window[:per_page], has_next=len(window) > per_page)


@dataclass(frozen=True)
class CompiledIds:
    """An id list's SQL, sliced like its queryset: ``ids[start:stop]`` is one query."""

    alias: str
    sql: str
    params: tuple

    def __getitem__(self, window):
        connection = connections[self.alias]
        limit = connection.ops.limit_offset_sql(window.start, window.stop)
        with connection.cursor() as cursor:
            cursor.execute(f"{self.sql} {limit}", self.params)
            return [row[0] for row in cursor.fetchall()]


_compiled = {}


def compiled_ids(key, ids):
    """``ids()`` (a ``values_list(..., flat=True)`` queryset) compiled once per process
    under ``key``, which must name everything its SQL depends on.

    Building and compiling a list's queryset cost several times running it; a
    list without filters is the same SQL on every request.
    """
    found = _compiled.get(key)
    if found is None:
        queryset = ids()
        sql, params = queryset.query.sql_with_params()
        if len(_compiled) >= COMPILED_LIMIT:
            _compiled.clear()
        found = _compiled[key] = CompiledIds(queryset.db, sql, tuple(params))
    return found
