"""``/healthz`` for load balancers: can this app server reach its database and cache?"""

import secrets

from django.core.cache import caches
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe


class CacheUnavailable(Exception):
    pass


@never_cache
@require_safe
def healthz(request):
    checks = {"database": probe(check_database), "cache": probe(check_cache)}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )


def probe(check):
    try:
        return {"ok": True, **check()}
    except Exception as error:
        # The class name says enough to act on without publishing hosts or credentials.
        return {"ok": False, "error": type(error).__name__}


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def check_cache():
    # A key per probe: concurrent probes from other workers must not race.
    token = secrets.token_hex(8)
    key = f"healthz:{token}"
    cache = caches["default"]
    cache.set(key, token, 10)
    stored = cache.get(key)
    cache.delete(key)
    if stored != token:
        raise CacheUnavailable("the cache did not return what was stored")
    return {"backend": type(cache).__name__}
