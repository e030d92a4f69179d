"""``reverse()`` remembered per address: reader pages link dozens of objects each.

A list page links every entry's cluster and outlet and every topic in the menu;
resolving each through ``reverse()`` cost more than its query. The result only
depends on the URLconf, the script prefix and the arguments, all part of the key,
and the memory is cleared whenever a test swaps the URLconf.
"""

from functools import lru_cache

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

# Enough for every topic, outlet and the clusters of many pages; about 100 bytes each.
REMEMBERED = 20_000


@lru_cache(maxsize=REMEMBERED)
def _reverse(urlconf, prefix, name, kwargs):
    return reverse(name, urlconf=urlconf, kwargs=dict(kwargs))


def object_url(name, key, value):
    """``reverse(name, kwargs={key: value})``; raises ``NoReverseMatch`` as it does."""
    return _reverse(get_urlconf(), get_script_prefix(), name, ((key, value),))


def named_url(name, **kwargs):
    """``reverse(name, kwargs=kwargs)``, remembered; raises ``NoReverseMatch`` as it does."""
    return _reverse(get_urlconf(), get_script_prefix(), name, tuple(sorted(kwargs.items())))


def named_urls(names, **kwargs):
    """``named_url`` for each of ``names`` with the same arguments; empty where one
    cannot be formed. Reads the URLconf and script prefix once for all of them."""
    urlconf, prefix, key = get_urlconf(), get_script_prefix(), tuple(sorted(kwargs.items()))
    urls = []
    for name in names:
        try:
            urls.append(_reverse(urlconf, prefix, name, key))
        except NoReverseMatch:
            urls.append("")
    return tuple(urls)


@receiver(setting_changed)
def forget(*, setting, **kwargs):
    if setting == "ROOT_URLCONF":
        _reverse.cache_clear()
