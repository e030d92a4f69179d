"""A read-only JSON API shaped like the Smartable news API the source files came from.

``/api/news/<topic>/page<N>/index.json`` answers ``{"page", "value", "nextPage"}``
with one value per published story, newest first, in the files' own field names,
so clients written for Smartable can point here. Each value adds ``cluster``:
our permalink for the story's full coverage. Errors are JSON too, never a page.
"""

from functools import wraps

from django.conf import settings
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import translation
from django.views.decorators.http import require_safe

from .conditional import respond_conditionally, site_validators, topic_validators
from .feeds import NEWEST_FIRST, with_story_details
from .models import Article, ArticleTopic, Topic

PAGE_SIZE = 20
# Keys the source files leave out when they have no value; clients expect that.
OPTIONAL_KEYS = ("ampWebUrl", "cdnAmpWebUrl", "originalUrl", "publishedDateTime", "provider")


def json_errors(view):
    """A missing topic or page is a JSON 404 with a message, like every other answer here."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except Http404 as error:
            return JsonResponse({"error": str(error) or "Not found."}, status=404)

    return wrapped


def locale():
    return translation.to_locale(settings.LANGUAGE_CODE).replace("_", "-")


def iso(moment):
    return moment and moment.isoformat().replace("+00:00", "Z")


def image_json(image, **fields):
    """``url``, ``width``, ``height`` and ``fields`` ({json name: attribute}); no unknowns."""
    data = {"url": image.url, "width": image.width, "height": image.height}
    data.update({name: getattr(image, attribute) for name, attribute in fields.items()})
    return {key: value for key, value in data.items() if value not in (None, "")}


def story_json(request, story):
    """One story in the Smartable shape; optional keys without a value are left out."""
    provider = story.provider
    data = {
        "title": story.title,
        "excerpt": story.excerpt,
        "webUrl": story.link,
        "ampWebUrl": story.amp_web_url,
        "cdnAmpWebUrl": story.cdn_amp_web_url,
        "originalUrl": story.original_url,
        "publishedDateTime": iso(story.published_at),
        "heat": story.heat if story.heat is not None else -1,
        "images": [
            image_json(image, isCached="is_cached", title="title") for image in story.images.all()
        ],
        "provider": provider
        and {
            "name": provider.name,
            "domain": provider.domain,
            "images": [image_json(image) for image in provider.images.all()],
        },
        "topics": [topic.name for topic in story.topics.all()],
        "type": story.type,
        "locale": locale(),
        "categories": [story.category] if story.category else [],
        "cluster": request.build_absolute_uri(story.get_absolute_url()),
    }
    return {key: value for key, value in data.items() if value or key not in OPTIONAL_KEYS}


def check_page(page):
    if page < 1:
        raise Http404(f"There is no page {page}; pages start at 1.")


def page_json(request, stories, page):
    start = (page - 1) * PAGE_SIZE
    window = list(
        with_story_details(stories)
        .prefetch_related("provider__images")
        .order_by(*NEWEST_FIRST)[start : start + PAGE_SIZE + 1]
    )
    if page > 1 and not window:
        raise Http404(f"There is no page {page}; the list ends before it.")
    has_next = len(window) > PAGE_SIZE
    return JsonResponse(
        {
            "page": page,
            "value": [story_json(request, story) for story in window[:PAGE_SIZE]],
            "nextPage": page + 1 if has_next else None,
        },
        json_dumps_params={"ensure_ascii": False},
    )


def topic_stories(topic):
    """Published stories carrying the topic or one of its children."""
    tagged = ArticleTopic.objects.filter(topic_id__in=topic.descendant_ids())
    return Article.objects.published().filter(pk__in=tagged.values("article_id"))


@json_errors
@require_safe
def topic_news(request, slug, page):
    check_page(page)
    topic = get_object_or_404(Topic, slug=slug)
    return respond_conditionally(
        request, topic_validators(topic), lambda: page_json(request, topic_stories(topic), page)
    )


@json_errors
@require_safe
def all_news(request, page):
    check_page(page)
    return respond_conditionally(
        request, site_validators(), lambda: page_json(request, Article.objects.published(), page)
    )


@json_errors
def not_found(request, path=""):
    raise Http404("No such API address. Try /api/news/<topic-slug>/page1/index.json.")
