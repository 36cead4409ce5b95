"""Fixtures of the browser tests: one headless Chromium per module, a fresh context per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Sandbox
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Any, sandbox: Sandbox) -> Iterator[Any]:
    sandbox.reset()
    made = browser.new_context(viewport={"width": 1280, "height": 860})
    made.set_default_timeout(TIMEOUT_MS)
    yield made
    made.close()
