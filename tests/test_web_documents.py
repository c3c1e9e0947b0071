"""The client's page lists the decisions on their budgets and downloads each one's PDF as issued,
and the month's statement as a PDF (issue 23, item 5): in headless Chromium at phone width, checked
with axe, the downloads read back with pypdf."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pypdf
import pytest

from tests.processes import PHONE_AS_TYPED, PHONE_E164, Server, WalletFiles, current_month
from tests.test_web_browser import PHONE_VIEWPORT, audit, browser, files, page, server, world

playwright_api = pytest.importorskip("playwright.sync_api", reason="install the test extra: pip install -e '.[test]'")
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.slow, pytest.mark.browser]
__all__ = ["browser", "files", "page", "server", "world"]  # the fixtures, shared with test_web_browser


def pdf_text(path: Path) -> str:
    reader = pypdf.PdfReader(str(path))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def test_the_client_downloads_a_decision_and_a_statement_as_pdf(
    page: Page, world: dict[str, Any], files: WalletFiles, server: Server
) -> None:
    seeded = world["seeded"]
    decisions = server.api(seeded.client_token).call("GET", "/v1/me/decisions", expect=200)["data"]
    assert len(decisions) == 1
    decision = decisions[0]
    page.set_viewport_size(PHONE_VIEWPORT)
    page.goto("/")
    sms_before = len([m for m in files.sms() if m["to"] == PHONE_E164])
    page.get_by_label("Puhelinnumerosi").fill(PHONE_AS_TYPED)
    page.get_by_role("button", name="Lähetä koodi").click()
    page.get_by_label("Tekstiviestin koodi").fill(files.code_sent_to(PHONE_E164, nth=sms_before + 1))
    page.get_by_role("button", name="Kirjaudu", exact=True).click()

    listed = page.locator("#decisions-list li")
    expect(listed).to_have_count(1)
    month = current_month()
    expect(listed).to_contain_text(f"Budjetti {int(month[5:])}/{month[:4]} alkaen")
    expect(listed).to_contain_text(decision["number"])
    audit(page, "client-decisions")
    with page.expect_download() as started:
        listed.get_by_role("button", name=f"Lataa päätös (PDF): {decision['number']}").click()
    saved = started.value
    assert saved.suggested_filename == f"{decision['number']}.pdf"
    text = pdf_text(Path(saved.path()))
    assert "Päätös henkilökohtaisesta budjetista" in text and decision["number"] in text

    page.locator("#statement-month").fill(month)
    with page.expect_download() as started:
        page.get_by_role("button", name="Lataa ote (PDF)").click()
    text = pdf_text(Path(started.value.path()))
    assert f"Tiliote {int(month[5:])}/{month[:4]}" in text and "Aino Asiakas" in text

    page.get_by_role("button", name="Svenska").click()  # the section follows the page's language
    expect(page.locator("#decisions-heading")).to_have_text("Beslut")
    with page.expect_download() as started:
        page.get_by_role("button", name="Ladda ner utdraget (PDF)").click()
    assert "Kontoutdrag" in pdf_text(Path(started.value.path()))
    audit(page, "client-decisions-sv")
