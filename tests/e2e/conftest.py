"""Browser fixtures: Playwright driving the system Chromium against the live test server (never a download)."""

import pytest
from django.db import connections

from tests.e2e.browser import CHROMIUM, sync_api


@pytest.fixture(autouse=True)
def allow_sync_orm_next_to_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; Django would refuse the ORM calls the test
    # makes between browser steps. The live server answers in its own thread either way.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser_page(live_server):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-background-networking"]
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
        # English msgids, so the assertions do not depend on the state of the Chinese catalogue.
        context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
        page = context.new_page()
        page.set_default_timeout(10_000)
        # The pages run under the Content-Security-Policy; Chromium reports what it refused on the console.
        csp_violations = []
        page.on("console", lambda message: csp_violations.append(f"{message.text} at {message.location}")
                if "Content Security Policy" in message.text else None)
        try:
            yield page
            assert csp_violations == [], csp_violations
        finally:
            context.close()
            browser.close()
            # While Playwright's event loop runs, Django hands this thread's ORM calls a connection of their
            # own; close it here, or it outlives the test and the test database cannot be dropped.
            connections.close_all()
