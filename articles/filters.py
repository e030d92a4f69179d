"""The filters readers can put on a list: outlet, date range, minimum quality, sort.

State lives in the query string. An invalid value shows a form error and the
list as if unfiltered (``ListFilter.results``), never a server error.
"""

import datetime
import functools
import html
from collections import Counter

import django_filters
from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from .models import Article, Provider

SORT_LATEST = "latest"
SORT_TOP = "top"
SORT_CHOICES = [(SORT_LATEST, "Latest"), (SORT_TOP, "Top")]

# Bounds keep every accepted value inside what the database and datetime can hold.
EARLIEST_DATE = datetime.date(1990, 1, 1)
LATEST_DATE = datetime.date(2099, 12, 31)
MAX_QUALITY = 10_000

# The outlet menu offers the outlets with the most stories among a list's newest
# clusters, so its size and cost stay flat however many outlets the site holds.
OUTLET_SAMPLE_CLUSTERS = 200
MAX_OUTLET_CHOICES = 40


class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


def esc(value):
    """``conditional_escape()`` without its check for lazy arguments: these run per option."""
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


def plain_attrs(attrs):
    """HTML attributes in their given order, as Django's ``attrs.html`` renders them."""
    return "".join(
        f" {esc(name)}" if value is True else f' {esc(name)}="{esc(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


# The widgets and labels of the filter form are built in Python (every value passes
# through ``esc``), as Django's templates would render them: Django renders two
# templates per widget and one per option, which cost as much as the rest of a
# list page.


class PlainInput:
    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        value = widget["value"]
        shown = f' value="{esc(value)}"' if value is not None else ""
        return mark_safe(  # noqa: S308 - escaped above
            f'<input type="{esc(widget["type"])}" name="{esc(name)}"{shown}'
            f"{plain_attrs(widget['attrs'])}>"
        )


class NumberInput(PlainInput, forms.NumberInput):
    pass


class DateInput(PlainInput, forms.DateInput):
    """A native date picker that renders an unparseable value as empty (it cannot show one)."""

    input_type = "date"

    def format_value(self, value):
        if isinstance(value, str):
            try:
                datetime.date.fromisoformat(value)
            except ValueError:
                return None
        return super().format_value(value)


class PlainSelect(forms.Select):
    """``menu``, when set, is a function giving the options (called once per render)."""

    menu = None

    def options(self):
        return self.menu() if self.menu is not None else list(self.choices)

    def use_required_attribute(self, initial):
        # Select's own check iterates the choices; a menu is read once, in render().
        return False if self.menu is not None else super().use_required_attribute(initial)

    def render(self, name, value, attrs=None, renderer=None):
        chosen = "" if value is None else str(value)
        options = "".join(
            f'<option value="{esc(key)}"{" selected" if str(key) == chosen else ""}>'
            f"{esc(label)}</option>"
            for key, label in self.options()
        )
        attrs = plain_attrs(self.build_attrs(self.attrs, attrs))
        return mark_safe(f'<select name="{esc(name)}"{attrs}>{options}</select>')  # noqa: S308


class ListFilterForm(forms.Form):
    def render(self, template_name=None, context=None, renderer=None):
        if template_name == self.template_name_label and context is not None:
            if not context["use_tag"]:
                return conditional_escape(context["label"])
            tag = context["tag"]
            attrs = plain_attrs(context["attrs"] or {})
            return mark_safe(f"<{tag}{attrs}>{esc(context['label'])}</{tag}>")  # noqa: S308
        return super().render(template_name, context, renderer)

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
        widget=NumberInput(attrs={"min": 0, "max": MAX_QUALITY, "step": 1}),
    )
    sort = django_filters.ChoiceFilter(
        label="Sort",
        choices=SORT_CHOICES,
        empty_label=None,
        method="filter_nothing",
        widget=PlainSelect,
    )

    date_field = "published_at"
    quality_field = "quality"
    orderings = {
        SORT_LATEST: ("-published_at", "-pk"),
        SORT_TOP: ("-score", "-pk"),
    }

    # Set on ``Unfiltered`` lists: their form's fields, already rendered.
    fields_html = None

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


class Unfiltered:
    """A list whose query string names none of ``filter_class``'s filters, answered as its
    FilterSet would answer (bound, valid and empty when there is any query string; unbound
    otherwise) without building one: django-filter deep-copies every filter and form field
    per instance, which cost more than the list's query. Anything else is asked of a
    FilterSet built on first use. ``fields`` gives the form's rendered fields (the same for
    every such request until content changes, so the views cache them). ``rows`` gives
    the list's queryset, built only when needed.
    """

    active = False
    chosen_outlet = None
    chosen_sort = SORT_LATEST

    def __init__(self, filter_class, data, rows, fields, **kwargs):
        self.filter_class, self.data, self.is_bound = filter_class, data, bool(data)
        self._rows, self._fields, self._kwargs = rows, fields, kwargs

    @functools.cached_property
    def queryset(self):
        return self._rows()

    @staticmethod
    def applies(filter_class, data):
        return not any(name in data for name in filter_class.base_filters)

    def is_valid(self):
        return self.is_bound

    @property
    def errors(self):
        return {}

    def results(self):
        # A FilterSet skips filters without a value, so its rows are these.
        return self.queryset.all().order_by(*self.filter_class.orderings[SORT_LATEST])

    @functools.cached_property
    def fields_html(self):
        return self._fields()

    @functools.cached_property
    def filterset(self):
        return self.filter_class(self.data or None, queryset=self.queryset, **self._kwargs)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.filterset, name)


@functools.cache
def _visible_outlets():
    visible = Article.objects.coverage_visible().filter(provider=OuterRef("pk"))
    return Provider.objects.filter(Exists(visible))


def visible_outlets():
    """Outlets with visible coverage, so a filter leaks nothing unpublished.

    Built once per process (building it cost more than running it); each
    caller gets its own copy.
    """
    return _visible_outlets().all()


class ClusterFilter(ListFilter):
    """Home page clusters. Also usable over ``ClusterTopic`` rows via ``cluster_path``.

    Any outlet with visible coverage is a valid choice (one indexed lookup when
    chosen), but the menu lists only ``outlet_choices()``: the outlets most
    present in this list's newest clusters, by name. ``outlets``, a function,
    supplies them instead (the views cache them per content version); it runs
    only when the form is rendered. A chosen outlet outside them is added so the
    form still shows what is applied.
    """

    provider = django_filters.ModelChoiceFilter(
        label="Outlet",
        queryset=Provider.objects.none(),
        to_field_name="domain",
        empty_label="All outlets",
        method="filter_provider",
        widget=PlainSelect,
    )

    cluster_path = ""
    cluster_key = "pk"

    def __init__(self, *args, outlets=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["provider"].queryset = visible_outlets()
        field = self.form.fields["provider"]
        field.queryset = self.filters["provider"].queryset
        self._outlets, self._outlet_list = outlets, None
        # The menu replaces the queryset's choices (every outlet) when the form is rendered.
        field.widget.menu = self.outlet_menu

    @classmethod
    def outlet_choices(cls, queryset):
        """[(domain, name)] of the outlets with the most visible stories in the newest
        ``OUTLET_SAMPLE_CLUSTERS`` clusters of ``queryset``, at most ``MAX_OUTLET_CHOICES``,
        sorted by name. One query, bounded by the sample whatever the list's length."""
        newest = queryset.order_by(*cls.orderings[SORT_LATEST]).values(cls.cluster_key)[
            :OUTLET_SAMPLE_CLUSTERS
        ]
        # Counted here rather than by the database: the sample is small, and list
        # queries stay free of COUNT (pages never count their rows).
        counts = Counter(
            Article.objects.coverage_visible()
            .filter(cluster_id__in=newest, provider__isnull=False)
            .values_list("provider__domain", "provider__name")
        )
        top = sorted(counts.items(), key=lambda item: (-item[1], item[0][0]))
        outlets = [outlet for outlet, _ in top[:MAX_OUTLET_CHOICES]]
        return sorted(outlets, key=lambda o: ((o[1] or o[0]).casefold(), o[0]))

    def outlet_menu(self):
        # Called lazily (only a rendered form needs it) and possibly more than once.
        if self._outlet_list is None:
            find = self._outlets or (lambda: self.outlet_choices(self.queryset))
            self._outlet_list = find()
        choices = [(domain, name or domain) for domain, name in self._outlet_list]
        chosen = self.chosen_outlet
        if chosen is not None and chosen.domain not in {domain for domain, _ in choices}:
            choices.append((chosen.domain, str(chosen)))
            choices.sort(key=lambda o: (o[1].casefold(), o[0]))
        return [("", self.filters["provider"].extra.get("empty_label", "All outlets")), *choices]

    @property
    def chosen_outlet(self):
        if self.is_bound and self.is_valid():
            return self.form.cleaned_data.get("provider")
        return None

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
