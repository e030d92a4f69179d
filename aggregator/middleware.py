"""Whole-response caching for anonymous readers, and the client address behind proxies.

Every public page and feed is the same for every anonymous reader until content
changes, so the whole rendered response is cached under a key that carries the
shared content version (``articles.versioning``). A publish bumps the version,
every app server's next request misses, and old entries simply expire: no
server can serve a page older than the last change it can see in the database.
"""

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.middleware.gzip import GZipMiddleware
from django.utils.cache import cc_delim_re, get_conditional_response, has_vary_header
from django.utils.http import parse_http_date_safe

from articles import versioning

logger = logging.getLogger(__name__)

# Responses marked with any of these are personal or deliberately fresh.
UNCACHEABLE_DIRECTIVES = {"private", "no-cache", "no-store"}


class AnonymousCacheMiddleware:
    """Serve anonymous GETs from the shared cache; editors (any session cookie) bypass it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_cacheable_request(request):
            return self.get_response(request)
        # Outside the try: a Host that is not allowed is the usual 400.
        url = request.build_absolute_uri()
        try:
            key = response_cache_key(url, versioning.for_request(request).version)
        except DatabaseError as error:
            # Caching is an optimisation: with the version row out of reach,
            # serve uncached and let the view (and /healthz) meet the problem.
            logger.warning("content version unavailable, serving uncached: %r", error)
            return self.get_response(request)
        cached = cache.get(key)
        if cached is not None:
            return conditional_response(request, cached)
        response = self.get_response(request)
        if is_cacheable_response(response):
            cache.set(key, response, settings.PAGE_CACHE_SECONDS)
        return response


def is_anonymous_read(request):
    """A GET without a session: the same for every reader, so shareable from a cache."""
    return request.method == "GET" and settings.SESSION_COOKIE_NAME not in request.COOKIES


def is_cacheable_request(request):
    return settings.PAGE_CACHE_SECONDS > 0 and is_anonymous_read(request)


def is_cacheable_response(response):
    cache_control = {
        directive.split("=", 1)[0].strip().lower()
        for directive in cc_delim_re.split(response.get("Cache-Control", ""))
    }
    return (
        response.status_code == 200
        and not response.streaming
        and not response.cookies
        # A page that read the session or a CSRF token differs per visitor.
        and not has_vary_header(response, "Cookie")
        and not cache_control & UNCACHEABLE_DIRECTIVES
    )


def response_cache_key(url, version):
    digest = hashlib.sha256(url.encode()).hexdigest()
    return f"response:v{version}:{digest}"


def conditional_response(request, response):
    """A 304 when the reader already has this version, as the view itself would answer."""
    return get_conditional_response(
        request,
        etag=response.get("ETag"),
        last_modified=parse_http_date_safe(response.get("Last-Modified", "")),
        response=response,
    )


# Feeds, sitemaps, OPML and the JSON API: public documents that carry no CSRF token,
# session data or other secret, so compressing them gives BREACH nothing to recover.
COMPRESSED_TYPES = {
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/xml",
    "text/xml",
    "text/x-opml",
}


class FeedGZipMiddleware(GZipMiddleware):
    """gzip for feeds and other public documents only; HTML pages are never compressed.

    A feed larger than one loopback segment (64 KB) waited for the client's
    delayed ACK, about 40 ms per response; compressed it is a fraction of that
    size. Placed outside the response cache, which keeps the plain body: readers
    that do not accept gzip get it unchanged.
    """

    def process_response(self, request, response):
        content_type = response.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type not in COMPRESSED_TYPES:
            return response
        return super().process_response(request, response)


def client_ip(request):
    """The reader's address, taken through TRUSTED_PROXY_COUNT proxies' X-Forwarded-For.

    Each proxy appends the address it was reached from, so the entry that many
    places from the end is the last one a trusted proxy wrote; anything to its
    left came from the client and may be forged.
    """
    forwarded = [
        address.strip()
        for address in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if address.strip()
    ]
    if settings.TRUSTED_PROXY_COUNT and len(forwarded) >= settings.TRUSTED_PROXY_COUNT:
        return forwarded[-settings.TRUSTED_PROXY_COUNT]
    return request.META.get("REMOTE_ADDR")
