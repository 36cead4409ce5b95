"""What the browser tests share: Debian's Chromium as this machine runs it, the timeouts,
screenshots, the sign-in form and the sandbox's shipping question (fixtures: conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What this machine's Chromium needs: no sandbox as root, no GPU, and no background networking
# (its connections to Google's hosts are refused by the closed network).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).parent / "screenshots"
SHIPPING = "How long does shipping take?"
SHIPPING_ANSWER = "We ship within 1-2 business days"
TIMEOUT_MS = 25_000
expect.set_options(timeout=TIMEOUT_MS)

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "SHIPPING", "SHIPPING_ANSWER", "TIMEOUT_MS", "expect",
           "fill_sign_in", "shot"]


def shot(page: Any, name: str) -> None:
    """Save a screenshot of `page` as tests/e2e/screenshots/<name>.png (git ignores them)."""
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def fill_sign_in(page: Any, identifier: str, password: str) -> None:
    """Fill and send the sign-in form on `page`."""
    page.get_by_label("Email or account name").fill(identifier)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
