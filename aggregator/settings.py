"""Settings for the aggregator site, read from the environment.

With no environment at all the site runs as the embedded default: SQLite (WAL)
under ``var/``, the local-memory cache, a generated secret key kept in ``var/``.
Operators scale out by setting ``DATABASE_URL`` and ``REDIS_URL``.
"""

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AGGREGATOR_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", default=False)
# The explicit switch for a public deployment: it refuses unsafe settings below.
PRODUCTION = env_bool("DJANGO_PRODUCTION", default=False)


def _secret_key():
    key = os.environ.get("DJANGO_SECRET_KEY", "").strip()
    if key:
        return key
    # A dev key that survives restarts, so sessions and signed values stay valid.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "django.contrib.humanize",
    "django_filters",
    "axes",
    "articles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # Feeds only (never pages with CSRF tokens); outside the response cache, which
    # keeps plain bodies for readers that do not accept gzip.
    "aggregator.middleware.FeedGZipMiddleware",
    # Outside sessions and auth, so a cache hit costs no session or user lookup.
    "aggregator.middleware.AnonymousCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First, so a locked-out client is refused before its password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "aggregator.urls"
WSGI_APPLICATION = "aggregator.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "articles.context_processors.site",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'aggregator.sqlite3'}",
        conn_max_age=600,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Connections persist here too: opening one and setting its pragmas costs
    # about 3 ms, more than a cached page takes to serve.
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run while a load writes; the busy timeout makes a
        # writer wait for another writer instead of failing.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        # Python keeps 128 prepared statements by default, and one with a
        # 1,000-item IN list takes about 100 KB of SQLite's heap: a long load
        # grew it by 10 MB. Pages repeat a few small queries, which still fit.
        "cached_statements": 32,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's Redis cache, except that an outage reads as misses (aggregator.cache).
            "BACKEND": "aggregator.cache.FailSoftRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "aggregator"),
            "TIMEOUT": 600,
            # A Redis that does not answer must not hold a request for long.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "aggregator",
            "TIMEOUT": 600,
        }
    }

# Anonymous pages and feeds are cached whole (aggregator.middleware); the shared
# content version in every key makes a publish visible on all app servers at
# once, so this only bounds how long unused entries occupy memory. 0 disables.
PAGE_CACHE_SECONDS = int(os.environ.get("PAGE_CACHE_SECONDS", 0 if DEBUG else 600))
# Rendered list entries (articles.views.cluster_entries), shared by every list that
# shows a cluster, under the same content version. Separate from the page cache:
# a site that turns whole pages off (or a page that misses after a publish) still
# renders each entry once per version. Entries carry relative times ("3 hours
# ago"), so they are not kept long. 0 disables.
ENTRY_CACHE_SECONDS = int(os.environ.get("ENTRY_CACHE_SECONDS", 0 if DEBUG else 600))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOGIN_URL = "admin:login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# Site-level choices.
SITE_NAME = os.environ.get("SITE_NAME", "Story Clusters")
SITE_DESCRIPTION = os.environ.get(
    "SITE_DESCRIPTION", "One entry per event, with every outlet's coverage beneath it."
)
# Absolute URLs in feeds and sitemaps when a request is not at hand (loads, commands).
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Largest news file the loader accepts; real files are a few KB.
LOADER_MAX_FILE_BYTES = int(os.environ.get("LOADER_MAX_FILE_BYTES", 2 * 1024 * 1024))
# Public moderation log shows editors' names only when the operator opts in.
MODERATION_LOG_SHOWS_USERS = env_bool("MODERATION_LOG_SHOWS_USERS", default=False)

# Security. The headers below go on every response; DJANGO_SECURE=1 adds what
# only makes sense behind a TLS-terminating proxy.
SECURE = env_bool("DJANGO_SECURE", default=False)
if SECURE:
    # The proxy terminates TLS and says so; it must strip this header from clients.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Load balancers probe over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", 60 * 60 * 24 * 365))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# No inline scripts or styles anywhere: pages use files under static/ only.
# Story images are hot-linked from the outlets, hence https: for images.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "https:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "frame-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
}

# Admin login throttling: a client (user name + address) is locked out after
# AXES_FAILURE_LIMIT failed logins for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", 15)))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "aggregator.middleware.client_ip"
# How many proxies append to X-Forwarded-For in front of the app servers; 0
# trusts only the socket address.
TRUSTED_PROXY_COUNT = int(os.environ.get("DJANGO_TRUSTED_PROXY_COUNT", 1 if SECURE else 0))


def _production_problems():
    problems = []
    if DEBUG:
        problems.append("DJANGO_DEBUG is on: it shows tracebacks and settings to visitors.")
    key = os.environ.get("DJANGO_SECRET_KEY", "").strip()
    if not key:
        problems.append(
            "DJANGO_SECRET_KEY is not set: give every app server the same long random key."
        )
    elif len(key) < 50 or len(set(key)) < 5:
        # Django's own bar for a key (check --deploy, security.W009).
        problems.append("DJANGO_SECRET_KEY is too weak: use at least 50 varied characters.")
    return problems


if PRODUCTION and (problems := _production_problems()):
    # A plain message and exit status 1 rather than a traceback.
    sys.exit(
        "Refusing to start with DJANGO_PRODUCTION=1:\n"
        + "\n".join(f"  - {problem}" for problem in problems)
    )
