"""A feed reader's view: subscribe to a running server, poll with validators, see a new story."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

import feedparser
import pytest

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")

NEW_STORY = """---
category: news
title: "Robotaxis reach a new city"
excerpt: "A driverless service opens to the public."
publishedDateTime: 2020-06-10T09:00:00Z
webUrl: "https://news.example.org/2020/06/10/robotaxis-new-city"
type: article
quality: 90
heat: 90
published: true
provider:
  name: Example News
  domain: news.example.org
topics:
  - AI
---

"""


def free_port():
    """A free port in this suite's range (8150-8199), so parallel suites never collide."""
    for port in range(8150, 8200):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    pytest.fail("no free port in 8150-8199")


@pytest.fixture
def site(tmp_path, seeds_dir):
    """gunicorn serving the seeds from its own SQLite file; yields (base URL, environment)."""
    env = {
        key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        DJANGO_DEBUG="0",
        AGGREGATOR_VAR_DIR=str(tmp_path / "var"),
        GUNICORN_WORKERS="1",
        GUNICORN_ACCESS_LOG="",
    )
    commands = [
        ["migrate", "--noinput", "--verbosity", "0"],
        ["collectstatic", "--noinput", "--verbosity", "0"],
        ["load_seeds", str(seeds_dir)],
    ]
    for command in commands:
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True, timeout=300
        )
    port = free_port()
    server = subprocess.Popen(
        [str(GUNICORN), "--bind", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "gunicorn.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urlopen(f"{base}/robots.txt", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield base, env
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_reader_discovers_subscribes_and_polls(site, tmp_path):
    base, env = site
    home = urlopen(base + "/", timeout=10).read().decode()
    assert 'type="application/atom+xml"' in home and "/feeds/all.atom" in home

    feed = feedparser.parse(base + "/feeds/all.atom")
    assert feed.status == 200 and feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10" and feed.entries
    guids = [entry.id for entry in feed.entries]

    repeat = feedparser.parse(base + "/feeds/all.atom", etag=feed.etag)
    assert repeat.status == 304 and not repeat.entries
    repeat = feedparser.parse(base + "/feeds/all.atom", modified=feed.modified)
    assert repeat.status == 304

    news = tmp_path / "more-news"
    news.mkdir()
    (news / "robotaxis.md").write_text(NEW_STORY)
    subprocess.run(
        [sys.executable, "manage.py", "load_seeds", str(news)],
        cwd=REPO,
        env=env,
        check=True,
        timeout=300,
    )
    updated = feedparser.parse(base + "/feeds/all.atom", etag=feed.etag, modified=feed.modified)
    assert updated.status == 200 and updated.bozo == 0
    titles = [entry.title for entry in updated.entries]
    assert "Robotaxis reach a new city" in titles
    assert set(guids) <= {entry.id for entry in updated.entries}
