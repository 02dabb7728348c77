"""What the browser tests share: where the system Chromium is, and Playwright's sync API (or a skip)."""

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the `playwright` Python package")
# Every browser test: slow, and skipped with the reason when the system Chromium is missing.
BROWSER_MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs the system Chromium (/usr/bin/chromium, Debian package "
                       "`chromium`); Playwright never downloads a browser here"),
]
