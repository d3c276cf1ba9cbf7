"""Browser tests: Debian's headless Chromium, driven by Playwright, against pytest-django's
live_server (a threaded server on a transactional database).

Chromium is never downloaded: without /usr/bin/chromium (`apt-get install chromium`; .ci/run
installs it) every browser test is skipped with that reason."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from providers.fakes.omnitron import DEFAULT_TOKEN, OmnitronFake, demo_catalog

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This network is closed: Chromium's own background connections would only be refused.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOT_DIR = Path(os.environ.get("STORNO_SCREENSHOT_DIR") or "var/screenshots")


@pytest.fixture(scope="package")
def browser():
    """One Chromium for all the browser tests, closed when they are done.

    Playwright's sync API keeps an event loop running in the test thread for as long as it
    lives, so Django's async-safety check would refuse every ORM call the tests make: it is
    switched off for exactly that time. Not for the whole session, where it would reach other
    tests (and `manage.py check --deploy` in their subprocesses) and a still-running loop would
    trip the tests that come after these."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM}: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=10_000)  # two slow cores in CI
    with pytest.MonkeyPatch.context() as patch, sync_api.sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser, live_server):
    """A fresh browser profile per test (no cookies), in English, on the live server. Reduced
    motion: charts are drawn without animation, so screenshots show them finished."""
    context = browser.new_context(
        base_url=live_server.url,
        viewport=VIEWPORT,
        locale="en-US",
        timezone_id="UTC",
        reduced_motion="reduce",
    )
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def sign_in(context, live_server):
    """sign_in(user): give the browser a session of `user` without the login form (test_login
    goes through the form); the cookie is made as Django's test client makes it."""

    def sign_in(user) -> None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])

    return sign_in


@pytest.fixture
def agent_page(page, sign_in, agent):
    """A page signed in as the customer-service agent of tests/conftest.py."""
    sign_in(agent)
    return page


@pytest.fixture
def screenshot():
    """screenshot(page, name): a full-page PNG for the docs (issue #7) in $STORNO_SCREENSHOT_DIR
    (default var/screenshots, relative to the project)."""
    folder = SCREENSHOT_DIR if SCREENSHOT_DIR.is_absolute() else settings.BASE_DIR / SCREENSHOT_DIR

    def screenshot(page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        # After a full-page shot Chromium's scroll state is stale: the next click's mouseup
        # lands on another element and the click is lost. A fresh scroll puts it right.
        page.evaluate("window.scrollTo(0, 0)")
        return path

    return screenshot


@pytest.fixture
def omnitron(settings):
    """The fake Omnitron on an ephemeral port with the twelve demo reasons, and Storno (the live
    server runs in this process, so it sees these settings) configured to pull from it."""
    with OmnitronFake(catalog=demo_catalog(), page_size=5) as fake:
        settings.OMNITRON_BASE_URL = fake.url
        settings.OMNITRON_TOKEN = DEFAULT_TOKEN
        settings.OMNITRON_TIMEOUT = 2
        yield fake
