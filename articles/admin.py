"""The editorial admin: the review queue, cluster corrections and the moderation log.

Files own every imported field, so the admin shows them read-only; editors
decide ``published``, merge and split clusters and write descriptions. Every
such act goes through ``articles.moderation`` or ``articles.clustering`` and
leaves a ``ModerationEvent``.
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import F, Prefetch
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import Truncator

from . import clustering, moderation
from .models import (
    Article,
    ArticleImage,
    Cluster,
    ModerationEvent,
    Provider,
    RelatedListing,
    Topic,
)

admin.site.site_header = f"{settings.SITE_NAME} editorial"
admin.site.site_title = f"{settings.SITE_NAME} editorial"
admin.site.index_title = "Editorial desk"
# The review queue needs the width more than a second menu (breadcrumbs lead home).
admin.site.enable_nav_sidebar = False

# Actions over more rows than this ask for confirmation first.
BULK_CONFIRM_THRESHOLD = 50
THUMBNAIL_WIDTH = 96
REASON_MAX_LENGTH = 1000


def http_url(url):
    """The URL if it is http(s), else empty: nothing else is ever linked or loaded."""
    return url if url and url.lower().startswith(("http://", "https://")) else ""


def outbound_link(url, text=None):
    url = http_url(url)
    if not url:
        return "—"
    return format_html(
        '<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>', url, text or url
    )


def thumbnail(url):
    url = http_url(url)
    if not url:
        return "—"
    return format_html(
        '<img src="{}" alt="" width="{}" loading="lazy" referrerpolicy="no-referrer">',
        url,
        THUMBNAIL_WIDTH,
    )


def admin_link(obj, text=None):
    if obj is None:
        return "—"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text or obj)


def shown_publicly(article):
    """Whether readers see the story: visible coverage in a public cluster."""
    visible = article.published or (article.published is None and not article.is_file_backed)
    return bool(visible and article.cluster_id and article.cluster.is_public)


def public_url(article):
    """Where an editor sees a story as readers do, or its preview while it is not public."""
    if shown_publicly(article):
        return article.cluster.get_absolute_url()
    return reverse("articles:preview", args=[article.pk])


class PublishedSelect(forms.NullBooleanSelect):
    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", "Undecided"), ("true", "Published"), ("false", "Unpublished")]


class PublishedForm(forms.ModelForm):
    """The one story field editors change; saves go through ``moderation.set_published``."""

    class Meta:
        model = Article
        fields = ["published"]
        widgets = {"published": PublishedSelect}
        labels = {"published": "Published"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        article = self.instance
        if article.pk and not article.editor_decided and article.published is not None:
            # The file's value is no decision: show the story as undecided (saying what the
            # file set), so that choosing either value, even the file's, records a decision.
            self.initial["published"] = None
            self.fields["published"].widget.choices = [
                ("unknown", f"Undecided ({moderation.published_label(article.published)})"),
                *self.fields["published"].widget.choices[1:],
            ]

    def clean_published(self):
        value = self.cleaned_data["published"]
        if value is None and self.instance.editor_decided:
            raise forms.ValidationError("A decided story cannot go back to undecided.")
        return value


def reason_field(**options):
    """The optional "why" every editorial act can carry into the moderation log."""
    return forms.CharField(required=False, max_length=REASON_MAX_LENGTH, **options)


class ReasonMixin(forms.Form):
    reason = reason_field(
        help_text="Optional; shown in the moderation log.",
        widget=forms.TextInput(attrs={"size": 60}),
    )


class ArticleAdminForm(ReasonMixin, PublishedForm):
    pass


class DescriptionForm(ReasonMixin, forms.ModelForm):
    """Topics and providers: editors write the description; everything else comes from files."""

    class Meta:
        fields = ["description"]


class ModerationActionForm(helpers.ActionForm):
    reason = reason_field(
        label="Reason",
        widget=forms.TextInput(attrs={"placeholder": "optional, for the log", "size": 30}),
    )


class BaseAdmin(admin.ModelAdmin):
    """Choices every editorial admin shares."""

    list_per_page = 50
    # The filtered count is enough; the full-table COUNT(*) is a wasted query.
    show_full_result_count = False
    action_form = ModerationActionForm
    # Fields loads write: shown, never edited in the admin.
    imported_fields = ()

    def get_readonly_fields(self, request, obj=None):
        return (*self.imported_fields, *self.readonly_fields)

    def has_add_permission(self, request):
        # Stories, clusters, topics and providers come from files and the clustering.
        return False

    @staticmethod
    def action_reason(request):
        return request.POST.get("reason", "").strip()[:REASON_MAX_LENGTH]

    def confirmation_page(self, request, queryset, question, always=False):
        """Ask before acting on many rows (or always); None once the editor confirmed."""
        count = queryset.count()
        if request.POST.get("confirmed") or (count <= BULK_CONFIRM_THRESHOLD and not always):
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Are you sure?",
            "question": question,
            "opts": self.model._meta,
            "count": count,
            "sample": queryset[:20],
            "action": request.POST.get("action", ""),
            "select_across": request.POST.get("select_across", "0"),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "reason": self.action_reason(request),
            "reason_max_length": REASON_MAX_LENGTH,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/articles/confirm_action.html", context)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    classes = ["readonly-inline"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ArticleImageInline(ReadOnlyInline):
    model = ArticleImage
    fields = readonly_fields = ["preview", "link", "width", "height", "title"]

    @admin.display(description="image")
    def preview(self, image):
        return thumbnail(image.url)

    @admin.display(description="URL")
    def link(self, image):
        return outbound_link(image.url)


class RelatedListingInline(ReadOnlyInline):
    model = RelatedListing
    fk_name = "source"
    verbose_name = "related listing (as this file lists it)"
    fields = readonly_fields = [
        "preview",
        "title",
        "provider_name",
        "quality",
        "published_at",
        "story",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("target")

    @admin.display(description="image")
    def preview(self, listing):
        return thumbnail(next((image.get("url") for image in listing.images), ""))

    @admin.display(description="story")
    def story(self, listing):
        return admin_link(listing.target, "open")


class ShowsActor:
    """The editor's name as text: editors may not open user accounts, so no link."""

    @admin.display(description="who", ordering="actor__username")
    def actor_name(self, event):
        return event.actor.get_username() if event.actor else "—"


class EventInline(ShowsActor, ReadOnlyInline):
    """The moderation log of one story or cluster, newest first."""

    model = ModerationEvent
    verbose_name = "moderation log entry"
    verbose_name_plural = "moderation log"
    fields = readonly_fields = [
        "created_at",
        "actor_name",
        "action",
        "old_value",
        "new_value",
        "reason",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class ArticleEventInline(EventInline):
    fk_name = "article"


class ClusterEventInline(EventInline):
    fk_name = "cluster"
    fields = readonly_fields = ["created_at", "actor_name", "action", "subject", "reason"]


class StatusFilter(admin.SimpleListFilter):
    """The editorial state; with no choice made the changelist is the review queue."""

    title = "status"
    parameter_name = "status"
    DEFAULT = "review"
    STATES = {
        "review": ("Awaiting review", lambda qs: qs.awaiting_review()),
        "published": ("Published", lambda qs: qs.filter(published=True)),
        "unpublished": ("Unpublished", lambda qs: qs.file_backed().filter(published=False)),
        "hidden": ("Hidden (related-only)", lambda qs: qs.related_only().filter(published=False)),
        "related": ("Related-only", lambda qs: qs.related_only()),
        "all": ("All", lambda qs: qs),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.STATES.items()]

    def value(self):
        return super().value() or self.DEFAULT

    def choices(self, changelist):
        for key, label in self.lookup_choices:
            yield {
                "selected": self.value() == key,
                "query_string": changelist.get_query_string({self.parameter_name: key}),
                "display": label,
            }

    def queryset(self, request, queryset):
        if self.value() not in self.STATES:
            raise IncorrectLookupParameters(f"Unknown status {self.value()!r}")
        return self.STATES[self.value()][1](queryset)


class DropdownFilter(admin.RelatedOnlyFieldListFilter):
    """A related filter as one select: there are hundreds of outlets."""

    template = "admin/articles/dropdown_filter.html"


@admin.register(Article)
class ArticleAdmin(BaseAdmin):
    form = ArticleAdminForm
    list_display = [
        "title",
        "provider",
        "topic_names",
        "published",
        "quality",
        "heat",
        "published_at",
        "cluster_size",
        "links_out",
    ]
    list_display_links = ["title"]
    list_editable = ["published"]
    list_filter = [
        StatusFilter,
        ("topics", admin.RelatedOnlyFieldListFilter),
        ("provider", DropdownFilter),
        "type",
        "published_at",
    ]
    search_fields = [
        "title",
        "excerpt",
        "provider__name",
        "provider__domain",
        "canonical_url",
        "web_url",
    ]
    date_hierarchy = "published_at"
    list_select_related = ["provider", "cluster"]
    ordering = [F("published_at").desc(nulls_last=True), "-pk"]
    actions = ["publish_selected", "unpublish_selected", "hide_selected", "split_selected"]
    inlines = [ArticleImageInline, RelatedListingInline, ArticleEventInline]
    imported_fields = (
        "title",
        "excerpt",
        "provider",
        "category",
        "type",
        "quality",
        "heat",
        "published_at",
        "file_published",
        "is_file_backed",
        "source_key",
        "first_seen_at",
        "updated_at",
    )
    readonly_fields = ("topic_names", "links", "cluster_link", "decision")
    fieldsets = [
        ("Editorial decision", {"fields": ["published", "reason", "decision", "file_published"]}),
        (
            "Story (from its file)",
            {
                "fields": [
                    "title",
                    "excerpt",
                    "provider",
                    "topic_names",
                    "type",
                    "category",
                    "published_at",
                    ("quality", "heat"),
                    "links",
                ]
            },
        ),
        (
            "Source and cluster",
            {
                "fields": [
                    "cluster_link",
                    "is_file_backed",
                    "source_key",
                    ("first_seen_at", "updated_at"),
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("topics", queryset=Topic.objects.only("pk", "name")))
        )

    def changelist_view(self, request, extra_context=None):
        status = request.GET.get(StatusFilter.parameter_name) or StatusFilter.DEFAULT
        label = StatusFilter.STATES.get(status, ("all",))[0].lower()
        title = (
            "Review queue: stories awaiting a decision"
            if status == StatusFilter.DEFAULT
            else f"Stories: {label}"
        )
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=PublishedForm, **kwargs)

    def view_on_site(self, article):
        return public_url(article)

    def save_model(self, request, obj, form, change):
        # Only ``published`` is editable; it is decided, logged and published site-wide here.
        if "published" in form.changed_data:
            moderation.set_published(
                Article.objects.filter(pk=obj.pk),
                obj.published,
                request.user,
                form.cleaned_data.get("reason", ""),
            )

    def delete_queryset(self, request, queryset):
        cluster_ids = set(queryset.values_list("cluster_id", flat=True))
        super().delete_queryset(request, queryset)
        moderation.refresh_after_delete(cluster_ids)

    def delete_model(self, request, obj):
        cluster_id = obj.cluster_id
        super().delete_model(request, obj)
        moderation.refresh_after_delete({cluster_id})

    @admin.display(description="topics")
    def topic_names(self, article):
        return ", ".join(topic.name for topic in article.topics.all()) or "—"

    @admin.display(description="cluster size", ordering="cluster__story_count")
    def cluster_size(self, article):
        return article.cluster.story_count if article.cluster_id else "—"

    @admin.display(description="links")
    def links_out(self, article):
        label = "view" if shown_publicly(article) else "preview"
        public = format_html('<a href="{}" target="_blank">{}</a>', public_url(article), label)
        original = outbound_link(article.link, "original")
        return format_html("{}<br>{}", public, original)

    @admin.display(description="links")
    def links(self, article):
        rows = [
            ("Article", article.web_url),
            ("Original", article.original_url),
            ("AMP", article.amp_web_url),
            ("AMP cache", article.cdn_amp_web_url),
        ]
        return (
            format_html_join(
                "", "<div>{}: {}</div>", ((label, outbound_link(url)) for label, url in rows if url)
            )
            or "—"
        )

    @admin.display(description="cluster")
    def cluster_link(self, article):
        if not article.cluster_id:
            return "—"
        return format_html(
            "{} ({} shown publicly)", admin_link(article.cluster), article.cluster.story_count
        )

    @admin.display(description="decided")
    def decision(self, article):
        if not article.editor_decided:
            return "Not yet decided by an editor (the file's value applies until then)."
        who = article.published_decided_by or "a removed user"
        return f"By {who}, {timezone.localtime(article.published_decided_at):%Y-%m-%d %H:%M}"

    def moderate(self, request, queryset, act, done):
        page = self.confirmation_page(
            request, queryset, f"{done.capitalize()} {queryset.count()} stories?"
        )
        if page is not None:
            return page
        count = act(queryset, request.user, self.action_reason(request))
        self.message_user(request, f"{count} stories {done}; unchanged ones were left alone.")
        return None

    @admin.action(description="Publish selected stories", permissions=["change"])
    def publish_selected(self, request, queryset):
        return self.moderate(request, queryset, moderation.publish, "published")

    @admin.action(description="Unpublish selected stories", permissions=["change"])
    def unpublish_selected(self, request, queryset):
        return self.moderate(request, queryset, moderation.unpublish, "unpublished")

    @admin.action(description="Hide selected related-only stories", permissions=["change"])
    def hide_selected(self, request, queryset):
        return self.moderate(request, queryset, moderation.hide, "hidden")

    def has_split_permission(self, request):
        return request.user.has_perm("articles.change_cluster")

    @admin.action(description="Split selected stories out of their clusters", permissions=["split"])
    def split_selected(self, request, queryset):
        page = self.confirmation_page(request, queryset, "Split these stories out?")
        if page is not None:
            return page
        reason = self.action_reason(request)
        for article in queryset:
            clustering.split_article(article, request.user, reason)
        self.message_user(request, "Split out into clusters of their own.")
        return None

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/split/", wrap(self.split_view), name="articles_article_split"),
            path("<int:pk>/hide/", wrap(self.hide_view), name="articles_article_hide"),
            *super().get_urls(),
        ]

    def split_view(self, request, pk):
        """The change page's and cluster page's "split out" buttons."""
        return self.story_button(
            request,
            pk,
            self.has_split_permission(request),
            lambda article, reason: clustering.split_article(article, request.user, reason),
            "“{}” now stands in a cluster of its own.",
        )

    def hide_view(self, request, pk):
        """The cluster page's "hide" buttons for noisy related-only coverage lines."""
        return self.story_button(
            request,
            pk,
            self.has_change_permission(request),
            lambda article, reason: moderation.hide(
                Article.objects.filter(pk=article.pk), request.user, reason
            ),
            "“{}” no longer shows as a coverage line.",
        )

    def story_button(self, request, pk, allowed, act, done):
        """One story's button: POST only, permission checked, then back to where it was pressed."""
        if request.method != "POST":
            return redirect("admin:articles_article_change", pk)
        if not allowed:
            raise PermissionDenied
        article = get_object_or_404(Article, pk=pk)
        act(article, self.action_reason(request))
        self.message_user(request, done.format(article))
        next_url = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
            next_url = reverse("admin:articles_article_change", args=[pk])
        return redirect(next_url)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Splitting needs company: a story alone in its cluster has nothing to leave.
        can_split = self.has_split_permission(request) and (
            Article.objects.filter(cluster__articles=object_id).exclude(pk=object_id).exists()
            if str(object_id).isdigit()
            else False
        )
        extra_context = {**(extra_context or {}), "can_split": can_split}
        return super().change_view(request, object_id, form_url, extra_context)


class ClusterMemberInline(ReadOnlyInline):
    model = Article
    fk_name = "cluster"
    verbose_name = "member"
    verbose_name_plural = "members"
    fields = readonly_fields = [
        "story",
        "provider",
        "published",
        "is_file_backed",
        "quality",
        "heat",
        "published_at",
        "actions_for",
    ]
    ordering = [F("quality").desc(nulls_last=True), "published_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("provider")

    @admin.display(description="story")
    def story(self, article):
        return admin_link(article, Truncator(article.title).chars(90))

    @admin.display(description="")
    def actions_for(self, article):
        here = reverse("admin:articles_cluster_change", args=[article.cluster_id])
        buttons = [("split", "Split out")]
        if not article.is_file_backed and article.published is not False:
            buttons.insert(0, ("hide", "Hide"))
        return format_html_join(
            " ",
            '<button type="submit" class="button" formaction="{}" name="next" value="{}">'
            "{}</button>",
            (
                (reverse(f"admin:articles_article_{name}", args=[article.pk]), here, label)
                for name, label in buttons
            ),
        )


@admin.register(Cluster)
class ClusterAdmin(BaseAdmin):
    list_display = [
        "lead_title",
        "story_count",
        "outlet_count",
        "topic_names",
        "rounded_score",
        "is_public",
        "published_at",
    ]
    list_filter = ["is_public", ("topics", admin.RelatedOnlyFieldListFilter), "published_at"]
    search_fields = ["slug", "lead__title"]
    date_hierarchy = "published_at"
    list_select_related = ["lead", "lead__provider"]
    ordering = [F("published_at").desc(nulls_last=True), "-pk"]
    actions = ["merge_selected"]
    inlines = [ClusterMemberInline, ClusterEventInline]
    readonly_fields = (
        "lead_link",
        "public_link",
        "slug",
        "is_public",
        "story_count",
        "outlet_count",
        "rounded_score",
        "topic_names",
        "published_at",
        "first_seen_at",
        "updated_at",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("lead", "lead__provider")
            .prefetch_related(Prefetch("topics", queryset=Topic.objects.only("pk", "name")))
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Nothing on a cluster is typed in; members are split out with their buttons.
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="lead", ordering="lead__title")
    def lead_title(self, cluster):
        if cluster.lead_id is None:
            return f"(no published lead) {cluster.slug}"
        return f"{Truncator(cluster.lead.title).chars(100)} — {cluster.lead.provider or ''}"

    @admin.display(description="lead")
    def lead_link(self, cluster):
        return admin_link(cluster.lead)

    @admin.display(description="public page")
    def public_link(self, cluster):
        if not cluster.is_public:
            return "Not public (no published lead)."
        return format_html('<a href="{0}" target="_blank">{0}</a>', cluster.get_absolute_url())

    @admin.display(description="topics")
    def topic_names(self, cluster):
        return ", ".join(topic.name for topic in cluster.topics.all()) or "—"

    @admin.display(description="score", ordering="score")
    def rounded_score(self, cluster):
        return f"{cluster.score:.2f}"

    @admin.action(description="Merge selected clusters", permissions=["change"])
    def merge_selected(self, request, queryset):
        clusters = list(queryset.select_related("lead").order_by("-is_public", "-score", "pk"))
        if len(clusters) < 2:
            self.message_user(request, "Select at least two clusters to merge.", messages.WARNING)
            return None
        target, *others = clusters
        page = self.confirmation_page(
            request,
            queryset,
            f"Merge {len(clusters)} clusters into “{target}”?",
            always=True,
        )
        if page is not None:
            return page
        reason = self.action_reason(request)
        for other in others:
            # A merge may rename or replace the surviving row: carry on with what it returns.
            target = clustering.merge_clusters(target, other, request.user, reason)
        self.message_user(request, f"Merged {len(others)} clusters into “{target}”.")
        return None


class DescribedAdmin(BaseAdmin):
    """Topics and providers: files own everything but the description, which editors write."""

    form = DescriptionForm

    def save_model(self, request, obj, form, change):
        moderation.edit_description(
            obj, form.cleaned_data["description"], request.user, form.cleaned_data["reason"]
        )

    @admin.display(description="description")
    def short_description(self, obj):
        return Truncator(obj.description).chars(80) or "—"


@admin.register(Topic)
class TopicAdmin(DescribedAdmin):
    list_display = ["name", "parent", "shortname", "short_description"]
    list_filter = [("parent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "shortname", "description"]
    list_select_related = ["parent"]
    imported_fields = ("name", "slug", "parent", "shortname", "keywords", "updated_at")
    fields = ["name", "slug", "parent", "shortname", "keywords", "description", "reason"]


@admin.register(Provider)
class ProviderAdmin(DescribedAdmin):
    list_display = ["name", "domain", "short_description"]
    search_fields = ["name", "domain", "description"]
    imported_fields = ("name", "domain", "updated_at")
    fields = ["name", "domain", "description", "reason"]


@admin.register(ModerationEvent)
class ModerationEventAdmin(ShowsActor, BaseAdmin):
    """The log itself: read by everyone on the desk, written only by the acts it records."""

    list_display = ["created_at", "actor_name", "action", "subject_link", "change", "reason"]
    list_filter = ["action", ("actor", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["subject", "reason", "actor__username"]
    date_hierarchy = "created_at"
    list_select_related = ["actor"]
    actions = None
    fields = readonly_fields = [
        "created_at",
        "actor_name",
        "action",
        "subject_link",
        "field",
        "old_value",
        "new_value",
        "reason",
    ]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {"title": "Moderation log", **(extra_context or {})}
        )

    @admin.display(description="subject")
    def subject_link(self, event):
        target_id, model = next(
            (
                (pk, name)
                for pk, name in [
                    (event.article_id, "article"),
                    (event.cluster_id, "cluster"),
                    (event.topic_id, "topic"),
                    (event.provider_id, "provider"),
                ]
                if pk
            ),
            (None, None),
        )
        text = Truncator(event.subject).chars(100) or "—"
        if target_id is None:
            return text
        url = reverse(f"admin:articles_{model}_change", args=[target_id])
        return format_html('<a href="{}">{}</a>', url, text)

    @admin.display(description="change")
    def change(self, event):
        if not (event.old_value or event.new_value):
            return "—"
        return f"{Truncator(event.old_value).chars(40)} → {Truncator(event.new_value).chars(40)}"
