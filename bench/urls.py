"""The site's URLs plus a trivial view: the floor every page is measured against."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.cache import never_cache

from aggregator.urls import urlpatterns as site_urlpatterns


@never_cache
def trivial(request):
    """No database, no template: what the stack costs before a page does any work.

    ``never_cache`` keeps the response cache from storing it, so every request
    reaches the view, as an uncached page would.
    """
    return HttpResponse("ok\n", content_type="text/plain")


urlpatterns = [path("bench/trivial/", trivial, name="bench-trivial"), *site_urlpatterns]
