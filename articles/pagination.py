"""Pagination by id without counting: fetch one row more than a page to know if another follows.

Lists paginate lightweight ids first and load only that page's rows afterwards,
so a deep page of a large topic costs one index range scan and no COUNT(*).
"""

from dataclasses import dataclass

from django.http import Http404

PER_PAGE = 20
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
