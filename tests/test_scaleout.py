"""Scale-out proofs with real gunicorn servers.

- Two app servers sharing PostgreSQL and Redis: a publish through server A's
  admin is on server B's topic page and feeds on the very next request.
- One server on SQLite keeps answering while a large load writes (WAL and the
  busy timeout).
"""

import html
import json
import os
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit
from urllib.request import HTTPCookieProcessor, Request, build_opener

import feedparser
import psycopg
import pytest
import redis
from django.urls import reverse
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
SCALEOUT_DATABASE_URL = os.environ.get(
    "SCALEOUT_DATABASE_URL", "postgres://root@127.0.0.1:5432/aggregator_scaleout"
)
SCALEOUT_REDIS_URL = os.environ.get("SCALEOUT_REDIS_URL", "redis://127.0.0.1:6379/14")
PASSWORD = secrets.token_urlsafe(16)
LOADED_FILES = 250

pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def site_env(tmp_path, **overrides):
    """The environment every process of one deployment shares (servers and commands)."""
    return {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "scale-out-" + "k" * 50,
        "AGGREGATOR_VAR_DIR": str(tmp_path / "var"),
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESS_LOG": "",
        **overrides,
    }


def manage(env, *args, timeout=600):
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def start_load(env, *paths):
    """``manage.py load_seeds`` in the background, its output kept for the assertion message."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "load_seeds", *map(str, paths)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def prepare_site(env):
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    manage(env, "load_seeds", str(REPO / "seeds"))


class Browser:
    """A tiny HTTP client with a cookie jar: enough to log in and post admin forms."""

    def __init__(self, base):
        self.base = base
        self.opener = build_opener(HTTPCookieProcessor(CookieJar()))

    def request(self, path, data=None):
        body = urlencode(data, doseq=True).encode() if data is not None else None
        headers = {"Referer": self.base + path}
        try:
            with self.opener.open(Request(self.base + path, body, headers), timeout=30) as reply:
                return reply.status, reply.read().decode()
        except HTTPError as error:
            return error.code, error.read().decode()

    def get(self, path):
        return self.request(path)

    def post_form(self, path, data):
        """GET the page for its CSRF token, then POST the form."""
        status, page = self.get(path)
        assert status == 200, (path, status)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        return self.request(path, {**data, "csrfmiddlewaretoken": token})


@contextmanager
def gunicorn_server(env, log_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(GUNICORN), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_healthy(base, process, log_path)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_healthy(base, process, log_path, attempts=300):
    browser = Browser(base)
    for _ in range(attempts):
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            status, _ = browser.get("/healthz")
            if status == 200:
                return
        except (URLError, ConnectionError):
            pass
        time.sleep(0.1)  # polling for readiness, not waiting out a race
    pytest.fail(f"gunicorn at {base} never became healthy:\n{log_path.read_text()}")


def maintenance_connection():
    """A connection to the scale-out PostgreSQL server's ``postgres`` database."""
    parts = urlsplit(SCALEOUT_DATABASE_URL)
    return psycopg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        dbname="postgres",
        connect_timeout=3,
        autocommit=True,
    )


def skip_unless_shared_services_answer():
    try:
        maintenance_connection().close()
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL for the scale-out test is unreachable: {error}")
    try:
        redis.Redis.from_url(SCALEOUT_REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis at {SCALEOUT_REDIS_URL} is unreachable: {error}")


def recreate_database():
    name = sql.Identifier(urlsplit(SCALEOUT_DATABASE_URL).path.lstrip("/"))
    with maintenance_connection() as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(name))


PICK_STORY = """
import json
from articles.models import Article, Cluster

pairs = [
    (story, topic)
    for story in Article.objects.file_backed().filter(published=False).order_by("pk")
    for topic in story.topics.order_by("pk")
]
empty = [pair for pair in pairs if not Cluster.objects.public().filter(topics=pair[1]).exists()]
story, topic = (empty or pairs)[0]
# On a topic page that had no public cluster, the story's cluster entry is the story's doing.
cluster = [story.cluster.get_absolute_url()] if empty and story.cluster_id else []
print(json.dumps({
    "pk": story.pk,
    "topic": topic.slug,
    "feed_links": [story.link],
    "page_links": [story.link, *cluster],
}))
"""


def pick_unpublished_story(env):
    """An unpublished file-backed story and one of its topics, read through the models.

    Published, the story shows on the topic page as a headline, as a coverage
    line, or as its cluster's entry (coverage lines are capped); preferring a
    topic whose page has no public cluster yet makes the entry certain to appear.
    """
    return json.loads(manage(env, "shell", "--no-imports", "-c", PICK_STORY))


def mentions(text, links):
    text = html.unescape(text)
    return any(f'href="{link}"' in text for link in links)


def page_mentions(browser, path, links):
    status, body = browser.get(path)
    assert status == 200, (browser.base + path, status)
    return mentions(body, links)


def feed_mentions(browser, path, links):
    status, body = browser.get(path)
    assert status == 200, (browser.base + path, status)
    return any(
        entry.link in links or mentions(entry.get("summary", ""), links)
        for entry in feedparser.parse(body).entries
    )


def visible_on(browser, story, topic_page, feeds):
    """Is the story on the topic page, and in each feed? (One answer per surface.)"""
    return [
        page_mentions(browser, topic_page, story["page_links"]),
        *(feed_mentions(browser, feed, story["feed_links"]) for feed in feeds),
    ]


def test_two_app_servers_sharing_postgresql_and_redis_agree_after_every_publish(tmp_path):
    skip_unless_shared_services_answer()
    recreate_database()
    env = site_env(
        tmp_path,
        DATABASE_URL=SCALEOUT_DATABASE_URL,
        REDIS_URL=SCALEOUT_REDIS_URL,
        # A fresh namespace in the shared Redis: nothing from an earlier run can answer.
        CACHE_KEY_PREFIX=f"scaleout-{uuid.uuid4().hex}",
    )
    prepare_site(env)
    manage(
        {**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        "createsuperuser", "--noinput", "--username", "chief", "--email", "chief@example.org",
    )  # fmt: skip
    story = pick_unpublished_story(env)
    topic_page = reverse("articles:topic", kwargs={"slug": story["topic"]})
    feeds = [
        reverse("articles:feed_topic_rss", kwargs={"slug": story["topic"]}),
        reverse("articles:feed_all_rss"),
    ]
    changelist = reverse("admin:articles_article_changelist")
    # The changelist defaults to the review queue; actions apply within the shown filter.
    every_story = changelist + "?status=all"
    action = {"_selected_action": [story["pk"]], "index": "0", "select_across": "0"}

    with (
        gunicorn_server(env, tmp_path / "a.log") as server_a,
        gunicorn_server(env, tmp_path / "b.log") as server_b,
    ):
        editor, reader = Browser(server_a), Browser(server_b)
        # The reader's first visits put the current pages into the shared cache.
        assert visible_on(reader, story, topic_page, feeds) == [False, False, False]

        status, _ = editor.post_form(
            reverse("admin:login") + "?next=" + changelist,
            {"username": "chief", "password": PASSWORD},
        )
        assert status == 200

        status, _ = editor.post_form(every_story, {**action, "action": "publish_selected"})
        assert status == 200
        assert visible_on(reader, story, topic_page, feeds) == [True, True, True]

        status, _ = editor.post_form(every_story, {**action, "action": "unpublish_selected"})
        assert status == 200
        assert visible_on(reader, story, topic_page, feeds) == [False, False, False]


def test_pages_keep_answering_on_sqlite_while_a_large_load_writes(tmp_path, corpus):
    database = tmp_path / "site.sqlite3"
    env = site_env(
        tmp_path,
        DATABASE_URL=f"sqlite:///{database}",
        REDIS_URL="",
        # Every request reads the database: the point is readers beside a writer.
        PAGE_CACHE_SECONDS="0",
        ENTRY_CACHE_SECONDS="0",
        GUNICORN_THREADS="2",
    )
    prepare_site(env)
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    # Enough real files for a load of several seconds, few enough to keep the suite quick.
    news_files = sorted((corpus / "news").glob("*.md"))[:LOADED_FILES]
    paths = [reverse("articles:home"), reverse("articles:feed_all_rss"), "/healthz"]
    failures, answered = [], []
    with gunicorn_server(env, tmp_path / "server.log") as base:
        load = start_load(env, *news_files)

        def read_pages():
            browser = Browser(base)
            while load.poll() is None:
                for path in paths:
                    try:
                        status, _ = browser.get(path)
                    except (URLError, ConnectionError) as error:
                        failures.append((path, repr(error)))
                        continue
                    (answered if status == 200 else failures).append((path, status))

        readers = [threading.Thread(target=read_pages) for _ in range(4)]
        for reader in readers:
            reader.start()
        output, _ = load.communicate(timeout=900)
        for reader in readers:
            reader.join()

    assert load.returncode == 0, output
    assert not failures, failures[:10]
    # The readers really overlapped the load (a load too quick to overlap proves nothing).
    assert len(answered) >= 20, (len(answered), output)


WAITING_FOR_THE_ROW = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
  AND query LIKE 'SELECT %%articles_contentversion%%FOR UPDATE%%'
"""
# A load that had written stories would hold this lock on their table.
WROTE_STORIES = """
SELECT count(*) FROM pg_locks JOIN pg_class ON pg_class.oid = pg_locks.relation
WHERE pg_locks.pid = %s AND pg_class.relname = 'articles_article'
  AND pg_locks.mode = 'RowExclusiveLock'
"""


def test_loads_on_postgresql_take_turns_instead_of_racing(tmp_path, corpus):
    """Two loads regrouping at once would claim the same cluster permalinks."""
    skip_unless_shared_services_answer()
    recreate_database()
    env = site_env(tmp_path, DATABASE_URL=SCALEOUT_DATABASE_URL, REDIS_URL=SCALEOUT_REDIS_URL)
    prepare_site(env)

    # An editor's merge (or another load) holds the row: a load waits for it before writing.
    with psycopg.connect(SCALEOUT_DATABASE_URL, autocommit=False) as editor:
        editor.execute("SELECT id FROM articles_contentversion FOR UPDATE")
        load = start_load(env, corpus / "news-ai")
        with psycopg.connect(SCALEOUT_DATABASE_URL, autocommit=True) as watcher:
            waiting = []
            for _ in range(600):
                waiting = watcher.execute(WAITING_FOR_THE_ROW, ()).fetchall()
                if waiting or load.poll() is not None:
                    break
                time.sleep(0.1)
            assert load.poll() is None, load.communicate()[0]
            assert len(waiting) == 1
            assert watcher.execute(WROTE_STORIES, waiting[0]).fetchone()[0] == 0
        editor.rollback()
    output, _ = load.communicate(timeout=600)
    assert load.returncode == 0, output

    # Two loads of overlapping files at once: both succeed, and the clusters are a rebuild's.
    first = start_load(env, corpus / "news-ai", REPO / "seeds")
    second = start_load(env, REPO / "seeds", corpus / "news-ai")
    for process in (first, second):
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output
    assert "0 changed membership" in manage(env, "recluster")
