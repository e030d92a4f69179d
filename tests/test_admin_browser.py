"""The editorial admin in a real browser: sign in, work the review queue, read a story's page.

Screenshots of the changelist and a change page go to ``ADMIN_SCREENSHOTS`` (a folder) when set,
else to the test's temporary folder.
"""

import os
from pathlib import Path

import pytest

from articles.models import ArticleImage, ModerationEvent

from .editorial_factories import PASSWORD, editor, join, story
from .test_browser import CHROMIUM, CHROMIUM_ARGS, browser_or_skip, route_local_only


@pytest.fixture
def desk_site(transactional_db, live_server, monkeypatch, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # live_server serves static files from the finders, which know no hashed manifest names.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # The test checks the database while playwright's event loop runs in this thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    lead = story(
        "Chip maker unveils a new AI accelerator for data centres",
        "techcrunch.com",
        ["AI", "Chips"],
        published=True,
        quality=88,
        heat=40,
    )
    draft = story(
        "Hands on with the chip maker's accelerator: fast, hungry, late",
        "theverge.com",
        ["AI"],
        quality=61,
        excerpt="We spent a week with the new accelerator.",
        secured="S3CRET-BLOB",
    )
    coverage = story(
        "Accelerator benchmarks leak ahead of launch", "anandtech.com", file_backed=False
    )
    join(lead, draft, coverage)
    ArticleImage.objects.create(
        article=draft, url=f"{live_server.url}/static/admin/img/icon-yes.svg"
    )
    editor("margaret", password=PASSWORD)
    return {"url": live_server.url, "draft": draft}


def shots_folder(tmp_path):
    folder = Path(os.environ.get("ADMIN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.browser
@pytest.mark.slow
def test_an_editor_publishes_from_the_review_queue(desk_site, tmp_path):
    sync_api = browser_or_skip()
    base, draft = desk_site["url"], desk_site["draft"]
    shots = shots_folder(tmp_path)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.route("**/*", route_local_only(base))
            page.goto(f"{base}/admin/")
            page.fill("#id_username", "margaret")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{base}/admin/")

            page.goto(f"{base}/admin/articles/article/")
            assert page.locator("#result_list tbody tr").count() == 1  # the review queue
            assert page.locator("#changelist-filter a", has_text="Awaiting review").count() == 1
            page.screenshot(path=shots / "admin-changelist.png", full_page=True)

            page.select_option("#id_form-0-published", "true")
            page.click("input[name=_save]")
            page.wait_for_selector(".messagelist")
            assert page.locator("#result_list tbody tr").count() == 0  # it left the queue

            page.goto(f"{base}/admin/articles/article/{draft.pk}/change/")
            assert "S3CRET-BLOB" not in page.content()
            assert page.locator("#moderation_events-group").inner_text().count("Published") >= 1
            page.screenshot(path=shots / "admin-change.png", full_page=True)

            page.goto(f"{base}/admin/articles/cluster/{draft.cluster_id}/change/")
            page.screenshot(path=shots / "admin-cluster.png", full_page=True)
        finally:
            browser.close()
    event = ModerationEvent.objects.get()
    assert (event.action, event.actor.username, event.article_id) == (
        "publish",
        "margaret",
        draft.pk,
    )
    assert (shots / "admin-changelist.png").stat().st_size > 10_000
