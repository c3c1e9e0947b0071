"""What the browser tests of each page section share: Chromium launched once a module, a page that
fails its test on any script error or Content-Security-Policy refusal, and signing in on /admin.

These are generators each module's own fixtures ``yield from`` (``tests/test_web_browser.py``'s
too), so a module can start its own server (its own settings).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.processes import Server, WalletFiles

CHROMIUM = os.environ.get("WALLET_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
DESKTOP_VIEWPORT = {"width": 1280, "height": 900}
ACTION_TIMEOUT_MS = 10_000

# /admin signs in here by pasting tokens: where the staff sign-in is an identity provider's, this
# development setting shows that form (a setting the service does not know is ignored).
TOKEN_FORM = {"WALLET_ADMIN_TOKEN_FORM": "true"}


def served(server: Server, files: WalletFiles) -> Iterator[Server]:
    """The module's ``wallet serve``, stopped cleanly at the end, its database then passing ``wallet check``."""
    running = server.start()
    yield running
    assert running.stop() == 0, running.log_tail()
    check = files.check()
    assert check.returncode == 0, check.stdout


def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `apt-get install -y chromium` (as .ci/run does)")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def checked_page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP_VIEWPORT, base_url=base_url, accept_downloads=True)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        # A refused inline script or style, or any script error, is a failure of the page.
        if message.type == "error":
            problems.append(message.text)

    context.on("console", console)
    context.on("weberror", lambda error: problems.append(f"page error: {error.error}"))
    yield context.new_page()
    context.close()
    refusals = [text for text in problems if "Content Security Policy" in text or "page error" in text]
    assert refusals == [], refusals


def admin_sign_in(page: Page, *, admin: str = "", finance: str = "") -> None:
    page.goto("/admin")
    page.get_by_label("Järjestäjän tunniste (admin)").fill(admin)
    page.get_by_label("Talouden tunniste (finance)").fill(finance)
    page.get_by_role("button", name="Kirjaudu", exact=True).click()
    expect(page.locator("#signed-in")).to_be_visible()
