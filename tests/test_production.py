"""Production behaviour in one process: headers, the anonymous response cache, /healthz,
login throttling, static files and the settings that refuse to start."""

import json
import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.db import OperationalError, connection
from django.http import HttpResponse
from django.templatetags.static import static
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date

from aggregator.middleware import (
    client_ip,
    conditional_response,
    is_cacheable_response,
)
from articles import clustering, versioning
from articles.models import Article, Provider, Topic

REPO = Path(__file__).resolve().parent.parent

# Nothing listens on port 1: the production cache backend with Redis down.
UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "aggregator.cache.FailSoftRedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
    }
}

SECURITY_HEADERS = {
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@pytest.fixture
def story(db):
    """One published story in its cluster on a topic page, as a load leaves it."""
    provider = Provider.objects.create(domain="example.com", name="Example News")
    topic = Topic.objects.create(name="Facial Recognition", slug="facial-recognition")
    article = Article.objects.create(
        canonical_url="https://example.com/a",
        slug="first-story",
        is_file_backed=True,
        title="First story",
        web_url="https://example.com/a",
        published=True,
        published_at=timezone.now() - timedelta(hours=1),
        provider=provider,
    )
    article.topics.add(topic)
    clustering.update_for_articles([article.pk])
    versioning.bump()
    article.refresh_from_db()
    return article


def public_urls(article):
    topic = article.topics.get()
    return [
        reverse("articles:home"),
        reverse("articles:topic", kwargs={"slug": topic.slug}),
        article.cluster.get_absolute_url(),
        reverse("articles:provider", kwargs={"domain": article.provider.domain}),
    ]


def feed_urls(article):
    topic = article.topics.get()
    return [
        reverse("articles:feed_all_rss"),
        reverse("articles:feed_topic_atom", kwargs={"slug": topic.slug}),
    ]


def test_anonymous_pages_carry_security_headers_and_no_cookies(client, story):
    for url in public_urls(story) + feed_urls(story):
        response = client.get(url)
        assert response.status_code == 200, url
        for header, value in SECURITY_HEADERS.items():
            assert response[header] == value, (url, header)
        csp = response["Content-Security-Policy"]
        assert "unsafe-inline" not in csp
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "camera=()" in response["Permissions-Policy"]
        assert not response.cookies, url
        assert "cookie" not in response.get("Vary", "").lower(), url


def test_pages_have_nothing_inline_for_the_policy_to_block(client, story):
    for url in public_urls(story):
        html = client.get(url).content.decode()
        # JSON-LD is a data block the browser never runs, so the policy allows it.
        inline_scripts = [
            tag
            for tag in re.findall(r"<script\b[^>]*>", html)
            if "src=" not in tag and "application/ld+json" not in tag
        ]
        assert not inline_scripts, url
        assert "<style" not in html, url
        assert not re.search(r"\sstyle\s*=", html), url
        assert not re.search(r"\son[a-z]+\s*=", html), url


def test_anonymous_pages_are_cached_until_the_content_version_moves(client, story):
    home = reverse("articles:home")
    assert "First story" in client.get(home).content.decode()

    # A change that nobody announced is not seen: the page comes from the cache.
    Article.objects.filter(pk=story.pk).update(title="Renamed story")
    assert "First story" in client.get(home).content.decode()

    versioning.bump()
    page = client.get(home).content.decode()
    assert "Renamed story" in page and "First story" not in page


@pytest.mark.parametrize("name", ["articles:home", "articles:topics"])
def test_a_page_reads_the_content_version_once(client, story, name):
    """The response cache and the view's fragment caches share one read of the version."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse(name)).status_code == 200
    reads = [q["sql"] for q in queries.captured_queries if "articles_contentversion" in q["sql"]]
    assert len(reads) == 1, reads


def test_editors_with_a_session_bypass_the_cache(client, story):
    home = reverse("articles:home")
    client.get(home)
    Article.objects.filter(pk=story.pk).update(title="Renamed story")

    editor = get_user_model().objects.create_user("editor", password="a long password 1")
    client.force_login(editor)
    assert "Renamed story" in client.get(home).content.decode()


def test_anonymous_feeds_are_cached_until_the_content_version_moves(client, story):
    feed = reverse("articles:feed_all_rss")
    assert "First story" in client.get(feed).content.decode()
    Article.objects.filter(pk=story.pk).update(title="Renamed story")
    assert "First story" in client.get(feed).content.decode()
    versioning.bump()
    assert "Renamed story" in client.get(feed).content.decode()


@pytest.mark.parametrize(
    ("headers", "cookie", "cacheable"),
    [
        ({}, None, True),
        ({"Cache-Control": "max-age=300, public"}, None, True),
        ({"Cache-Control": "max-age=0, no-cache, no-store, must-revalidate, private"}, None, False),
        ({"Cache-Control": "private"}, None, False),
        ({"Vary": "Accept-Encoding, Cookie"}, None, False),
        ({}, "csrftoken", False),
    ],
)
def test_which_responses_may_be_shared(headers, cookie, cacheable):
    response = HttpResponse("page", headers=headers)
    if cookie:
        response.set_cookie(cookie, "value")
    assert is_cacheable_response(response) is cacheable


def test_uncacheable_statuses_are_not_shared():
    assert not is_cacheable_response(HttpResponse("gone", status=404))
    assert not is_cacheable_response(HttpResponse("moved", status=301))


def test_a_cached_response_still_answers_conditional_requests():
    stored = HttpResponse("feed", headers={"ETag": '"v7"', "Last-Modified": http_date(0)})

    def status_for(etag):
        request = RequestFactory().get("/", HTTP_IF_NONE_MATCH=etag)
        return conditional_response(request, stored).status_code

    assert status_for('"v7"') == 304
    assert status_for('"v6"') == 200


@pytest.mark.parametrize(
    ("proxies", "forwarded_for", "expected"),
    [
        (0, "", "10.0.0.9"),
        (0, "203.0.113.5", "10.0.0.9"),
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "198.51.100.1, 203.0.113.5", "203.0.113.5"),
        (2, "198.51.100.1, 203.0.113.5", "198.51.100.1"),
        (2, "203.0.113.5", "10.0.0.9"),
    ],
)
def test_client_address_trusts_only_the_configured_proxies(
    settings, proxies, forwarded_for, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR=forwarded_for)
    assert client_ip(request) == expected


@pytest.mark.django_db
def test_sqlite_writers_wait_for_each_other_instead_of_failing():
    if connection.vendor != "sqlite":
        pytest.skip("the suite runs on another database")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 20_000


@pytest.mark.slow
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://app@db.internal:5432/news", {"CONN_MAX_AGE": 600, "CONN_HEALTH_CHECKS": True}),
        ("sqlite:///news.sqlite3", {"CONN_MAX_AGE": 600, "WAL": True, "timeout": 20}),
    ],
)
def test_database_url_gives_persistent_checked_connections(url, expected):
    code = (
        "import json; from django.conf import settings; db = settings.DATABASES['default']; "
        "print(json.dumps({'CONN_MAX_AGE': db['CONN_MAX_AGE'], "
        "'CONN_HEALTH_CHECKS': db['CONN_HEALTH_CHECKS'], "
        "'WAL': 'journal_mode=WAL' in db['OPTIONS'].get('init_command', ''), "
        "'timeout': db['OPTIONS'].get('timeout')}))"
    )
    result = run_manage("shell", "--no-imports", "-c", code, DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]).items() >= expected.items()


@pytest.mark.django_db
def test_healthz_reports_database_and_cache_without_a_session(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["database"]["vendor"]
    assert body["cache"]["ok"]
    assert "no-store" in response["Cache-Control"]
    assert not response.cookies
    assert "cookie" not in response.get("Vary", "").lower()


@pytest.mark.django_db
def test_healthz_says_which_service_is_down(client, settings):
    settings.CACHES = UNREACHABLE_REDIS
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"]["ok"] is True
    assert body["cache"] == {"ok": False, "error": "CacheUnavailable"}


def test_pages_are_served_when_the_cache_is_down(client, settings, story):
    settings.CACHES = UNREACHABLE_REDIS
    response = client.get(reverse("articles:home"))
    assert response.status_code == 200
    assert "First story" in response.content.decode()


def test_a_host_that_is_not_allowed_is_refused_before_the_cache(client):
    assert client.get(reverse("articles:robots"), HTTP_HOST="evil.example").status_code == 400


@pytest.mark.django_db
def test_pages_are_served_uncached_when_the_version_row_is_unreadable(client, monkeypatch):
    def unreadable():
        raise OperationalError("database is locked")

    monkeypatch.setattr(versioning, "current", unreadable)
    response = client.get(reverse("articles:robots"))
    assert response.status_code == 200
    assert response.content.startswith(b"User-agent")


def test_an_unreachable_redis_reads_as_misses_and_drops_writes(settings):
    settings.CACHES = UNREACHABLE_REDIS
    cache.set("key", "value")
    assert cache.get("key", "default") == "default"
    assert cache.get_or_set("key", lambda: "computed") == "computed"
    assert cache.get_many(["key"]) == {}
    assert cache.add("key", "value") is False
    assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
    assert cache.delete("key") is False


@pytest.mark.django_db
def test_admin_login_is_locked_after_repeated_failures(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
    get_user_model().objects.create_superuser("boss", password="the right password 9")
    client = Client()
    login = reverse("admin:login")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(login, {"username": "boss", "password": "guess"})
        assert response.status_code == 200  # the form again, with an error
    assert client.post(login, {"username": "boss", "password": "guess"}).status_code == 429
    locked = client.post(login, {"username": "boss", "password": "the right password 9"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session

    # Another user from the same address is not locked out by boss's failures.
    get_user_model().objects.create_superuser("other", password="the right password 8")
    welcome = Client().post(login, {"username": "other", "password": "the right password 8"})
    assert welcome.status_code == 302


@pytest.fixture
def collected_static(settings):
    """STATIC_ROOT as `make run` and `make test` leave it (collected here if they have not)."""
    if not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)


@pytest.mark.usefixtures("collected_static")
def test_hashed_static_files_are_immutable_and_precompressed():
    url = static("css/site.css")
    assert re.fullmatch(r"/static/css/site\.[0-9a-f]{12}\.css", url)
    response = Client().get(url, HTTP_ACCEPT_ENCODING="br, gzip")
    assert response.status_code == 200
    assert "immutable" in response["Cache-Control"]
    assert "max-age=315360000" in response["Cache-Control"]
    assert response["Content-Encoding"] == "br"
    assert Client().get(url, HTTP_ACCEPT_ENCODING="gzip")["Content-Encoding"] == "gzip"


def run_manage(*args, **env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def production_env(**overrides):
    return {
        "DJANGO_PRODUCTION": "1",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_ALLOWED_HOSTS": "news.example.org",
        "DJANGO_SECURE": "1",
        **overrides,
    }


@pytest.mark.slow
def test_deploy_check_is_clean_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_behind_a_tls_proxy_plain_http_is_redirected_except_the_health_check():
    code = (
        "from django.test import Client; c = Client(); home = c.get('/'); "
        "print(c.get('/healthz').status_code, home.status_code, home['Location'])"
    )
    result = run_manage(
        "shell", "--no-imports", "-c", code, DJANGO_SECURE="1", DATABASE_URL="sqlite://:memory:"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["200", "301", "https://testserver/"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DJANGO_DEBUG": "1"}, "DJANGO_DEBUG is on"),
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY is not set"),
        ({"DJANGO_SECRET_KEY": "short-key"}, "DJANGO_SECRET_KEY is too weak"),
    ],
)
def test_production_refuses_to_start_with_a_clear_message(overrides, message):
    result = run_manage("check", **production_env(**overrides))
    assert result.returncode == 1
    assert "Refusing to start with DJANGO_PRODUCTION=1" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_gunicorn_refuses_to_start_in_production_without_a_secret_key():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("gunicorn")), "--bind", "127.0.0.1:0"],
        cwd=REPO,
        env={**os.environ, **production_env(DJANGO_SECRET_KEY="")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("limit", ["1000", "40"])
def test_gunicorn_recycles_workers_far_apart(monkeypatch, limit):
    """Workers restarting together leave the box answering nothing for a moment."""
    import runpy

    monkeypatch.setenv("GUNICORN_MAX_REQUESTS", limit)
    config = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    assert config["max_requests"] == int(limit)
    assert config["max_requests_jitter"] >= config["max_requests"] / 3
