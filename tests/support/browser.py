"""Debian's chromium driven by Playwright for Python (its own browser download is not
reachable here), and an axe-core accessibility check that needs no network."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = os.environ.get("MONITOR_CHROMIUM", "/usr/bin/chromium")
# No sandbox as root; no calls home to Google's hosts (the network reaches nothing else).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERIOUS = frozenset({"serious", "critical"})


def require_chromium() -> str:
    """The browser's path; skips (saying why) where it is missing, fails where CI needs it."""
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path is None:
        reason = f"Debian's chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("MONITOR_REQUIRE_BROWSER"):
            pytest.fail(f"MONITOR_REQUIRE_BROWSER is set but {reason}")
        pytest.skip(reason)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright for Python is not installed (pip install -e '.[test]')")
    return path


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A fresh browser page (1280 px wide); the browser closes after."""
    from playwright.sync_api import sync_playwright

    path = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            yield context.new_page()
        finally:
            browser.close()


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page, as 'rule: first target' lines."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']}: {v['help']} ({v['nodes'][0]['target'] if v['nodes'] else '?'})"
        for v in results.response["violations"]
        if v.get("impact") in SERIOUS
    ]
