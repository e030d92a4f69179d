"""Django's Redis cache, failing soft: with Redis out of reach the site slows down, not fails.

Every use of the cache in the project is an optimisation (whole pages, page
fragments), so an unreachable Redis reads as a miss and drops writes, with one
warning per failed call. ``/healthz`` still reports the outage.
"""

import logging

import redis
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def fail_soft(fallback):
    """Wrap a cache method so an unreachable Redis returns ``fallback(*args)`` instead."""

    def decorate(method):
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except UNREACHABLE as error:
                logger.warning("cache %s failed, Redis unreachable: %s", method.__name__, error)
                return fallback(*args, **kwargs)

        wrapper.__name__ = method.__name__
        wrapper.__doc__ = method.__doc__
        return wrapper

    return decorate


def nothing(*args, **kwargs):
    return None


def false(*args, **kwargs):
    return False


class FailSoftRedisCache(RedisCache):
    @fail_soft(lambda key, default=None, version=None: default)
    def get(self, key, default=None, version=None):
        return super().get(key, default, version)

    @fail_soft(lambda keys, version=None: {})
    def get_many(self, keys, version=None):
        return super().get_many(keys, version)

    @fail_soft(false)
    def has_key(self, key, version=None):
        return super().has_key(key, version)

    @fail_soft(false)
    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return super().add(key, value, timeout, version)

    @fail_soft(nothing)
    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return super().set(key, value, timeout, version)

    @fail_soft(lambda data, timeout=DEFAULT_TIMEOUT, version=None: list(data))
    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return super().set_many(data, timeout, version)

    @fail_soft(false)
    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return super().touch(key, timeout, version)

    @fail_soft(false)
    def delete(self, key, version=None):
        return super().delete(key, version)

    @fail_soft(nothing)
    def delete_many(self, keys, version=None):
        return super().delete_many(keys, version)

    @fail_soft(false)
    def clear(self):
        return super().clear()
