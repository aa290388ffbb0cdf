"""Playwright driving Debian's Chromium (/usr/bin/chromium) against the live server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.a11y import Recorder, WatchedBrowser, watch

CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def playwright():
    """One Playwright for the session (its sync API cannot be started twice at once)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def axe_recorder():
    return Recorder()


@pytest.fixture(autouse=True)
def axe_every_page(request, axe_recorder):
    """axe-core checks every portal page the test opens (tests/browser/a11y.py); the test
    fails on any serious or critical violation."""
    base_url = None
    if "live_server" in request.fixturenames:
        base_url = request.getfixturevalue("live_server").url
    axe_recorder.reset(base_url)
    yield axe_recorder
    axe_recorder.check_open_pages()
    failures, axe_recorder.failures = axe_recorder.failures, []
    axe_recorder.reset(None)
    if failures:
        pytest.fail("accessibility (axe-core) violations:\n" + "\n".join(failures), pytrace=False)


@pytest.fixture(scope="session")
def browser(playwright, axe_recorder):
    """Chromium; its new contexts load axe-core and check every page (a11y.WatchedBrowser)."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield WatchedBrowser(browser, axe_recorder)
    browser.close()


def watch_context(context, recorder):
    """For a test launching its own browser: check that context's pages too."""
    return watch(context, recorder)


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
