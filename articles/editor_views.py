"""The public side of editing: the moderation log, and editors' previews of unpublished stories."""

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import cache_control

from .models import Article, ModerationEvent
from .pagination import paginate_ids
from .views import cluster_context

LOG_PER_PAGE = 50


def moderation_log(request):
    """Publish, unpublish, merge and split, newest first, as Lobsters shows its moderations.

    A story that is not public now is named only by its outlet: the log must not
    become a way around the editorial gate.
    """
    page = paginate_ids(
        ModerationEvent.objects.public().values_list("pk", flat=True),
        request.GET.get("page"),
        per_page=LOG_PER_PAGE,
    )
    by_id = ModerationEvent.objects.select_related(
        "actor", "article__provider", "article__cluster", "cluster"
    ).in_bulk(page.ids)
    visible = set(
        Article.objects.coverage_visible()
        .filter(pk__in=[event.article_id for event in by_id.values() if event.article_id])
        .values_list("pk", flat=True)
    )
    events = [by_id[pk] for pk in page.ids if pk in by_id]
    for event in events:
        if event.article_id:
            event.subject_is_public = event.article_id in visible
        else:
            event.subject_is_public = bool(event.cluster and event.cluster.is_public)
    return render(
        request,
        "articles/moderation.html",
        {
            "events": events,
            "page": page,
            "show_users": settings.MODERATION_LOG_SHOWS_USERS,
        },
    )


@staff_member_required
@permission_required("articles.view_article", raise_exception=True)
@cache_control(private=True, no_cache=True)
def preview(request, pk):
    """A story's cluster page as it would read with every member shown (editors only)."""
    article = get_object_or_404(Article.objects.select_related("cluster"), pk=pk)
    if article.cluster is None:
        raise Http404("This story has not been given a cluster yet; preview it after clustering.")
    context = cluster_context(article.cluster, members=Article.objects.all())
    lead = context["lead"]
    if not article.cluster.is_public and lead is not None and lead.pk != article.pk:
        # With no public lead the previewed story heads its page, as it would once published.
        previewed = next(s for s in context["coverage"] if s.pk == article.pk)
        context["coverage"] = [lead, *(s for s in context["coverage"] if s is not previewed)]
        context["lead"] = previewed
    response = render(request, "articles/preview.html", {**context, "previewed": article})
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
