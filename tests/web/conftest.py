"""Web chat tests: the real stack from tests/e2e plus one headless Debian Chromium driven by Playwright
(never a downloaded browser)."""
from __future__ import annotations

import pytest

# Every fixture of the e2e suite (live_stack, chat and whatever live_stack itself depends on).
from tests.e2e.conftest import *  # noqa: F401,F403

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")  # not session: Playwright's sync API keeps an event loop running meanwhile,
def browser():                  # which would break asyncio.run() in every later test module
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(browser):
    """Pages in fresh contexts (own localStorage = own visitor); closed after the test."""
    contexts = []

    def make(**context_options):
        context = browser.new_context(**context_options)
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
