"""The filters readers can put on a list: outlet, date range, minimum quality, sort.

State lives in the query string. An invalid value shows a form error and the
list as if unfiltered (``ListFilter.results``), never a server error.
"""

import datetime

import django_filters
from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Exists, OuterRef
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .models import Article, Provider

SORT_LATEST = "latest"
SORT_TOP = "top"
SORT_CHOICES = [(SORT_LATEST, "Latest"), (SORT_TOP, "Top")]

# Bounds keep every accepted value inside what the database and datetime can hold.
EARLIEST_DATE = datetime.date(1990, 1, 1)
LATEST_DATE = datetime.date(2099, 12, 31)
MAX_QUALITY = 10_000


class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class DateInput(forms.DateInput):
    """A native date picker that renders an unparseable value as empty (it cannot show one)."""

    input_type = "date"

    def format_value(self, value):
        if isinstance(value, str):
            try:
                datetime.date.fromisoformat(value)
            except ValueError:
                return None
        return super().format_value(value)


class OutletSelect(forms.Select):
    """The outlet list built in Python: Django renders a template per option, which cost
    more than the rest of a list page with a few dozen outlets."""

    def render(self, name, value, attrs=None, renderer=None):
        chosen = "" if value is None else str(value)
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (key, " selected" if str(key) == chosen else "", label)
                for key, label in self.choices
            ),
        )
        attrs = flatatt(self.build_attrs(self.attrs, attrs))
        return format_html('<select name="{}"{}>{}</select>', name, attrs, options)


class ListFilterForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            raise forms.ValidationError("“Since” must be on or before “Until”.")
        return cleaned


def date_input(label):
    return django_filters.DateFilter(
        label=label,
        method="filter_date",
        widget=DateInput,
        validators=[MinValueValidator(EARLIEST_DATE), MaxValueValidator(LATEST_DATE)],
    )


def start_of_day(day):
    """Midnight at the start of ``day`` in the site's time zone."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


class ListFilter(django_filters.FilterSet):
    """What every list shares. Subclasses name the fields their rows sort and filter on."""

    since = date_input("Since")
    until = date_input("Until")
    quality = IntegerFilter(
        label="Minimum quality",
        method="filter_quality",
        min_value=0,
        max_value=MAX_QUALITY,
        widget=forms.NumberInput(attrs={"min": 0, "max": MAX_QUALITY, "step": 1}),
    )
    sort = django_filters.ChoiceFilter(
        label="Sort", choices=SORT_CHOICES, empty_label=None, method="filter_nothing"
    )

    date_field = "published_at"
    quality_field = "quality"
    orderings = {
        SORT_LATEST: ("-published_at", "-pk"),
        SORT_TOP: ("-score", "-pk"),
    }

    class Meta:
        form = ListFilterForm

    def filter_date(self, queryset, name, value):
        if name == "since":
            return queryset.filter(**{f"{self.date_field}__gte": start_of_day(value)})
        next_day = start_of_day(value + datetime.timedelta(days=1))
        return queryset.filter(**{f"{self.date_field}__lt": next_day})

    def filter_quality(self, queryset, name, value):
        return queryset.filter(**{f"{self.quality_field}__gte": value})

    def filter_nothing(self, queryset, name, value):
        # Sorting happens in ``results`` so that it also applies to the unfiltered list.
        return queryset

    @property
    def chosen_sort(self):
        if self.is_bound and self.is_valid():
            return self.form.cleaned_data.get("sort") or SORT_LATEST
        return SORT_LATEST

    @property
    def active(self):
        """True when a valid, non-default filter narrows the list."""
        if not (self.is_bound and self.is_valid()):
            return False
        return any(
            value not in (None, "")
            for name, value in self.form.cleaned_data.items()
            if name != "sort"
        )

    def results(self):
        """The filtered, sorted rows; all rows in the default order when the form is invalid."""
        queryset = self.qs if self.is_valid() else self.queryset.all()
        return queryset.order_by(*self.orderings[self.chosen_sort])


class ClusterFilter(ListFilter):
    """Home page clusters. Also usable over ``ClusterTopic`` rows via ``cluster_path``."""

    provider = django_filters.ModelChoiceFilter(
        label="Outlet",
        queryset=Provider.objects.none(),
        to_field_name="domain",
        empty_label="All outlets",
        method="filter_provider",
        widget=OutletSelect,
    )

    cluster_path = ""
    cluster_key = "pk"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only outlets with visible coverage, so the list leaks nothing unpublished.
        visible = Article.objects.coverage_visible().filter(provider=OuterRef("pk"))
        self.filters["provider"].queryset = Provider.objects.filter(Exists(visible))
        self.form.fields["provider"].queryset = self.filters["provider"].queryset

    @property
    def quality_field(self):
        return f"{self.cluster_path}lead__quality"

    def filter_provider(self, queryset, name, value):
        covered = Article.objects.coverage_visible().filter(provider=value)
        return queryset.filter(**{f"{self.cluster_key}__in": covered.values("cluster_id")})


class TopicClusterFilter(ClusterFilter):
    """Topic page rows: ``ClusterTopic`` carries copies of the sort keys for one index scan."""

    cluster_path = "cluster__"
    cluster_key = "cluster_id"


class StoryFilter(ListFilter):
    """A provider's stories: top means the outlet's best-rated first."""

    orderings = {
        SORT_LATEST: ("-published_at", "-pk"),
        SORT_TOP: ("-quality", "-published_at", "-pk"),
    }
