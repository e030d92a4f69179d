"""The news data model: stories, their outlets and topics, clusters of coverage.

Visibility rules live in the QuerySets here and nowhere else: every page, feed,
sitemap and API goes through ``Article.objects.published()`` /
``Article.objects.coverage_visible()`` and ``Cluster.objects.public()``.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q, Value
from django.utils import timezone

from .links import object_url

URL_MAX_LENGTH = 2048
SLUG_MAX_LENGTH = 255


class Provider(models.Model):
    """An outlet, keyed by its domain (``techcrunch.com``)."""

    domain = models.CharField(max_length=253, unique=True)
    name = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name or self.domain

    def get_absolute_url(self):
        return object_url("articles:provider", "domain", self.domain)


class ProviderImage(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="images")
    url = models.URLField(max_length=URL_MAX_LENGTH)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["provider", "position"]

    def __str__(self):
        return self.url


class Topic(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=SLUG_MAX_LENGTH, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    shortname = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    keywords = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return object_url("articles:topic", "slug", self.slug)

    def descendant_ids(self):
        """This topic and every topic below it (parents include their children)."""
        ids, frontier = {self.pk}, [self.pk]
        while frontier:
            frontier = list(
                Topic.objects.filter(parent_id__in=frontier)
                .exclude(pk__in=ids)
                .values_list("pk", flat=True)
            )
            ids.update(frontier)
        return ids

    def ancestors(self):
        """Parents from the nearest up, guarding against cycles in topic files."""
        seen, node, chain = {self.pk}, self.parent, []
        while node is not None and node.pk not in seen:
            chain.append(node)
            seen.add(node.pk)
            node = node.parent
        return chain


def published_stories(path=""):
    """The rule of ``ArticleQuerySet.published()``; ``path`` reaches the story from
    other rows (``"source__"``), so the rule joins instead of listing every story."""
    return Q(**{f"{path}published": True, f"{path}is_file_backed": True})


def visible_coverage(path=""):
    """The rule of ``ArticleQuerySet.coverage_visible()``; ``path`` as in ``published_stories``."""
    return Q(**{f"{path}published": True}) | Q(
        **{f"{path}published__isnull": True, f"{path}is_file_backed": False}
    )


class ArticleQuerySet(models.QuerySet):
    def file_backed(self):
        return self.filter(is_file_backed=True)

    def related_only(self):
        return self.filter(is_file_backed=False)

    def published(self):
        """Stories that may be headlines: published file-backed stories."""
        return self.filter(published_stories())

    def coverage_visible(self):
        """Stories that may show as coverage lines: published, or related-only and not hidden.

        Related-only stories carry ``published=None`` until an editor decides;
        hiding one sets ``published=False``.
        """
        return self.filter(visible_coverage())

    def awaiting_review(self):
        """File-backed stories an editor has not decided on and that are not public."""
        return self.filter(is_file_backed=True, published_decided_at__isnull=True).exclude(
            published=True
        )


class Article(models.Model):
    """One story: one piece of coverage at one canonical URL.

    File-backed stories came as their own file; related-only stories are known
    only from other files' ``related`` lists.
    """

    TYPE_ARTICLE = "article"
    TYPE_VIDEO = "video"
    TYPE_CHOICES = [(TYPE_ARTICLE, "Article"), (TYPE_VIDEO, "Video")]

    canonical_url = models.CharField(max_length=URL_MAX_LENGTH, unique=True)
    slug = models.SlugField(max_length=SLUG_MAX_LENGTH, unique=True)
    # The first file that brought this story; every file is in SourceFile, whose
    # key is what loads look up, so this column needs no index of its own.
    source_key = models.CharField(max_length=1024, blank=True)
    is_file_backed = models.BooleanField(default=False)

    category = models.CharField(max_length=100, blank=True)
    title = models.TextField()
    excerpt = models.TextField(blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    web_url = models.URLField(max_length=URL_MAX_LENGTH, blank=True)
    original_url = models.URLField(max_length=URL_MAX_LENGTH, blank=True)
    amp_web_url = models.URLField(max_length=URL_MAX_LENGTH, blank=True)
    cdn_amp_web_url = models.URLField(max_length=URL_MAX_LENGTH, blank=True)
    type = models.CharField(max_length=20, choices=TYPE_CHOICES, default=TYPE_ARTICLE)
    quality = models.IntegerField(null=True, blank=True)
    # Null when the file says -1 (unknown).
    heat = models.IntegerField(null=True, blank=True)
    featured_content = models.TextField(blank=True)
    # Opaque blob from the source: stored, never shown.
    secured = models.TextField(blank=True)

    # The indexes of provider and cluster lead with them (see Meta): the plain ones
    # Django would add cost every write and serve no query the others can't.
    provider = models.ForeignKey(
        Provider,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="articles",
        db_index=False,
    )
    topics = models.ManyToManyField(
        Topic, through="ArticleTopic", related_name="articles", blank=True
    )
    cluster = models.ForeignKey(
        "Cluster",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="articles",
        db_index=False,
    )
    # A file-backed story's event before late copies and editors join events into
    # clusters (step 1 in articles/clustering.py): the id of its earliest story,
    # and this story's time as that grouping saw it. A load regroups from the
    # first day its stories touch until the groups agree with these again.
    event_first = models.BigIntegerField(null=True, blank=True, editable=False, db_index=True)
    grouped_at = models.DateTimeField(null=True, blank=True, editable=False)

    # The editorial gate. True/False as the file or an editor decided; None for
    # related-only stories nobody has decided on.
    published = models.BooleanField(null=True, blank=True)
    # The file's own value, recorded even when an editor's decision wins.
    file_published = models.BooleanField(null=True, blank=True)
    # Set when an editor decides; loads never overwrite ``published`` after that.
    published_decided_at = models.DateTimeField(null=True, blank=True)
    published_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    first_seen_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    # Hash of the cleaned data last stored, so unchanged files are skipped.
    content_hash = models.CharField(max_length=64, blank=True)

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-pk"]
        indexes = [
            models.Index(fields=["published", "-published_at"], name="article_pub_date"),
            models.Index(fields=["provider", "-published_at"], name="article_provider_date"),
            models.Index(fields=["cluster", "-published_at"], name="article_cluster_date"),
            models.Index(fields=["-updated_at"], name="article_updated"),
            # Clustering looks up each kind of story by time window.
            models.Index(fields=["published_at", "is_file_backed"], name="article_date_kind"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(type__in=["article", "video"]), name="article_type_known"
            ),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        """A story's public home is its cluster page."""
        if self.cluster_id:
            return self.cluster.get_absolute_url()
        return object_url("articles:provider", "domain", self.provider.domain)

    @property
    def link(self):
        """Where readers go: the article itself (videos without webUrl use originalUrl)."""
        return self.web_url or self.original_url

    @property
    def editor_decided(self):
        return self.published_decided_at is not None


class ArticleTopic(models.Model):
    # The unique constraint and the index below lead with these: no index of their own.
    article = models.ForeignKey(Article, on_delete=models.CASCADE, db_index=False)
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["article", "topic"], name="article_topic_unique")
        ]
        indexes = [models.Index(fields=["topic", "article"], name="articletopic_topic")]

    def __str__(self):
        return f"{self.article_id} in {self.topic_id}"


class ArticleImage(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="images")
    url = models.URLField(max_length=URL_MAX_LENGTH)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    is_cached = models.BooleanField(null=True, blank=True)
    title = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["article", "position"]

    def __str__(self):
        return self.url


class RelatedListing(models.Model):
    """One entry of a file's ``related`` list, as that file lists it.

    Listings of one story disagree in real data (titles, quality), so each keeps
    its own snapshot; ``target`` is the story it points to.
    """

    # The unique constraint and the index below lead with these: no index of their own.
    source = models.ForeignKey(
        Article, on_delete=models.CASCADE, related_name="listings", db_index=False
    )
    target = models.ForeignKey(
        Article, on_delete=models.CASCADE, related_name="listed_in", db_index=False
    )
    position = models.PositiveSmallIntegerField()
    title = models.TextField()
    excerpt = models.TextField(blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    web_url = models.URLField(max_length=URL_MAX_LENGTH)
    amp_web_url = models.URLField(max_length=URL_MAX_LENGTH, blank=True)
    cdn_amp_web_url = models.URLField(max_length=URL_MAX_LENGTH, blank=True)
    type = models.CharField(max_length=20, blank=True)
    quality = models.IntegerField(null=True, blank=True)
    provider_name = models.CharField(max_length=300, blank=True)
    provider_domain = models.CharField(max_length=253, blank=True)
    # [{"url", "width", "height", "isCached", "title"}] exactly as the file lists them.
    images = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["source", "position"]
        constraints = [
            models.UniqueConstraint(fields=["source", "position"], name="listing_position_unique")
        ]
        indexes = [models.Index(fields=["target"], name="listing_target")]

    def __str__(self):
        return self.title


class SourceFile(models.Model):
    """A loaded file, keyed by its path relative to the folder it was loaded from."""

    KIND_NEWS = "news"
    KIND_TOPIC = "topic"
    KIND_ORGANIZATION = "organization"
    KIND_CHOICES = [
        (KIND_NEWS, "News"),
        (KIND_TOPIC, "Topic"),
        (KIND_ORGANIZATION, "Organization"),
    ]

    key = models.CharField(max_length=1024, unique=True)
    kind = models.CharField(max_length=20, choices=KIND_CHOICES)
    article = models.ForeignKey(
        Article, null=True, blank=True, on_delete=models.SET_NULL, related_name="source_files"
    )
    # Hash of the raw bytes: an unchanged file is skipped without parsing.
    raw_hash = models.CharField(max_length=64)
    loaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.key


def public_clusters(path=""):
    """The rule for public clusters: a published file-backed lead. ``path`` reaches the
    cluster from other rows (``"cluster__"``)."""
    # Compared with a parameter, not the bare column Django writes for ``=True``:
    # SQLite uses the (is_public, ...) indexes only for a comparison.
    return Q(**{f"{path}is_public": Value(True), f"{path}lead__isnull": False})


class ClusterQuerySet(models.QuerySet):
    def public(self):
        """Clusters with a published file-backed lead."""
        return self.filter(public_clusters())

    def latest(self):
        return self.order_by("-published_at", "-pk")

    def top(self):
        return self.order_by("-score", "-pk")


class Cluster(models.Model):
    """Coverage of one event: a lead story and more coverage from other outlets."""

    slug = models.SlugField(max_length=SLUG_MAX_LENGTH, unique=True)
    lead = models.ForeignKey(
        Article, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # True when the cluster has a published file-backed member (its lead).
    is_public = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    # The lead's publication time: the "latest" ordering.
    published_at = models.DateTimeField(null=True, blank=True)
    story_count = models.PositiveIntegerField(default=0)
    outlet_count = models.PositiveIntegerField(default=0)
    # Stored ranking score (points + time / constant): no decay job needed.
    score = models.FloatField(default=0)
    topics = models.ManyToManyField(
        Topic, through="ClusterTopic", related_name="clusters", blank=True
    )

    objects = ClusterQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-pk"]
        indexes = [
            models.Index(fields=["is_public", "-published_at"], name="cluster_public_latest"),
            models.Index(fields=["is_public", "-score"], name="cluster_public_top"),
            models.Index(fields=["-updated_at"], name="cluster_updated"),
        ]

    def __str__(self):
        return self.lead.title if self.lead_id else self.slug

    def get_absolute_url(self):
        return object_url("articles:cluster", "slug", self.slug)


class ClusterTopicQuerySet(models.QuerySet):
    def public(self):
        """Rows of public clusters, by a join: walking a topic's index then stops after a
        page, where ``cluster__in=Cluster.objects.public()`` first lists every public cluster."""
        return self.filter(public_clusters("cluster__"))


class ClusterTopic(models.Model):
    """A topic page entry: the cluster carries the topic (or a child of it) on a published member.

    The sort keys are copied here so a topic page is one index range scan.
    """

    # The unique constraint and the indexes below lead with these: no index of their own.
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, db_index=False)
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, db_index=False)
    published_at = models.DateTimeField(null=True, blank=True)
    score = models.FloatField(default=0)

    objects = ClusterTopicQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "topic"], name="cluster_topic_unique")
        ]
        indexes = [
            models.Index(fields=["topic", "-published_at"], name="clustertopic_latest"),
            models.Index(fields=["topic", "-score"], name="clustertopic_top"),
        ]

    def __str__(self):
        return f"{self.cluster_id} in {self.topic_id}"


class ClusterAlias(models.Model):
    """An old cluster slug that now lives in another cluster (after a merge), for redirects."""

    slug = models.SlugField(max_length=SLUG_MAX_LENGTH, unique=True)
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="aliases")

    def __str__(self):
        return self.slug


class ClusterOverride(models.Model):
    """An editor's correction that loads and re-clustering respect.

    ``merge``: ``article`` and ``other_article`` belong together.
    ``split``: ``article`` stands in a cluster of its own.
    """

    KIND_MERGE = "merge"
    KIND_SPLIT = "split"
    KIND_CHOICES = [(KIND_MERGE, "Merge"), (KIND_SPLIT, "Split")]

    kind = models.CharField(max_length=10, choices=KIND_CHOICES)
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="+")
    other_article = models.ForeignKey(
        Article, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="split", other_article__isnull=True)
                | Q(kind="merge", other_article__isnull=False),
                name="override_shape",
            )
        ]

    def __str__(self):
        return f"{self.kind} #{self.article_id}"


class ModerationEventQuerySet(models.QuerySet):
    def public(self):
        return self.filter(action__in=ModerationEvent.PUBLIC_ACTIONS)


class ModerationEvent(models.Model):
    """One editorial act. Rows are written once and never edited."""

    PUBLISH = "publish"
    UNPUBLISH = "unpublish"
    HIDE = "hide"
    MERGE = "merge"
    SPLIT = "split"
    EDIT_DESCRIPTION = "edit_description"
    ACTION_CHOICES = [
        (PUBLISH, "Published"),
        (UNPUBLISH, "Unpublished"),
        (HIDE, "Hidden"),
        (MERGE, "Merged clusters"),
        (SPLIT, "Split out of cluster"),
        (EDIT_DESCRIPTION, "Edited description"),
    ]
    PUBLIC_ACTIONS = [PUBLISH, UNPUBLISH, MERGE, SPLIT]

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=30, choices=ACTION_CHOICES)
    article = models.ForeignKey(
        Article, null=True, blank=True, on_delete=models.SET_NULL, related_name="moderation_events"
    )
    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="moderation_events"
    )
    topic = models.ForeignKey(
        Topic, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the act was about, as it read then (the target may change later).
    subject = models.TextField(blank=True)
    field = models.CharField(max_length=100, blank=True)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    reason = models.TextField(blank=True)

    objects = ModerationEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.get_action_display()}: {self.subject}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("Moderation events are never edited.")
        super().save(*args, **kwargs)


class ContentVersion(models.Model):
    """A single row bumped on every public content change.

    It is the cache version shared by every process (app servers, loads run
    from the shell), and the site-wide Last-Modified.
    """

    version = models.PositiveBigIntegerField(default=1)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"v{self.version} at {self.changed_at:%Y-%m-%d %H:%M:%S}"
