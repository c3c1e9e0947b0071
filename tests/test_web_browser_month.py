"""The month at a glance in headless Chromium against the real ``wallet serve``: on the client's
page each line's spent, held and left against the days left, as an SVG chart with the figures in a
table (checked against the ledger, and again after a live change), money staged for next month;
on /admin the usage report as a chart beside its table."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="install the test extra: pip install -e '.[test]'")
from playwright.sync_api import Browser, Page, expect

from tests.browser import TOKEN_FORM, admin_sign_in, checked_page, chromium, served
from tests.processes import (
    BUSINESS_ID,
    IBAN,
    NATIONAL_ID,
    PHONE_AS_TYPED,
    PHONE_E164,
    Server,
    WalletFiles,
    current_month,
    free_port,
)
from tests.test_web_browser import PHONE_VIEWPORT, audit, euros

pytestmark = [pytest.mark.slow, pytest.mark.browser]

HOME_CARE, TRANSPORT = 50_000, 10_000
LIVE_MS = 3_000


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> WalletFiles:
    return WalletFiles(tmp_path_factory.mktemp("web-month"), extra_env=TOKEN_FORM)


@pytest.fixture(scope="module")
def server(files: WalletFiles) -> Iterator[Server]:
    yield from served(Server(files, port=free_port()), files)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    yield from checked_page(browser, server.base_url)


def next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


@pytest.fixture(scope="module")
def world(files: WalletFiles, server: Server) -> dict[str, Any]:
    """A client with two lines credited this month and next month's credit staged; a provider's
    capture and a held (pending) charge on home care."""
    admin = server.api(files.token("admin"))
    month = current_month()
    admin.call("POST", "/v1/categories", {"code": "home_care", "name": "Kotihoito"}, expect=201)
    admin.call("POST", "/v1/categories", {"code": "transport", "name": "Kuljetus"}, expect=201)
    client = admin.call(
        "POST", "/v1/clients", {"name": "Aino Asiakas", "phone": PHONE_AS_TYPED, "national_id": NATIONAL_ID}, expect=201
    )
    lines = [
        {"category": "home_care", "monthly_amount": HOME_CARE},
        {"category": "transport", "monthly_amount": TRANSPORT},
    ]
    budget = {"start_month": month, "end_month": next_month(month), "unused": "expire", "lines": lines}
    admin.call("POST", f"/v1/clients/{client['id']}/budgets", budget, expect=201)
    admin.call("POST", "/v1/credit-runs", {"month": month}, key=f"month-{month}")
    admin.call("POST", "/v1/credit-runs", {"month": next_month(month)}, key=f"month-{next_month(month)}")
    body = {"name": "Hoiva Oy", "business_id": BUSINESS_ID, "iban": IBAN, "categories": ["home_care"]}
    provider = admin.call("POST", "/v1/providers", body, expect=201)
    admin.call("POST", f"/v1/providers/{provider['id']}/approve", expect=200)
    till = server.api(files.token("provider", provider_id=provider["id"]))
    charge = {
        "phone": PHONE_AS_TYPED,
        "category": "home_care",
        "identity": {"method": "national_id", "national_id": NATIONAL_ID},
    }
    till.call("POST", "/v1/charges", {**charge, "amount": 12_345}, key="month-charge-1", expect=201)
    till.call(
        "POST", "/v1/charges", {**charge, "amount": 1_000, "identity": {"method": "app"}}, key="month-held", expect=201
    )
    return {"client": client, "till": till, "charge": charge, "month": month}


def days_left() -> int:
    today = datetime.now(ZoneInfo("Europe/Helsinki")).date()
    return calendar.monthrange(today.year, today.month)[1] - today.day + 1


def sign_in_client(page: Page, files: WalletFiles) -> None:
    page.goto("/")
    sms_before = len([m for m in files.sms() if m["to"] == PHONE_E164])
    page.get_by_label("Puhelinnumerosi").fill(PHONE_AS_TYPED)
    page.get_by_role("button", name="Lähetä koodi").click()
    page.get_by_label("Tekstiviestin koodi").fill(files.code_sent_to(PHONE_E164, nth=sms_before + 1))
    page.get_by_role("button", name="Kirjaudu", exact=True).click()


def expect_line(page: Page, category: str, figures: dict[str, str]) -> None:
    row = page.locator(f"#month-table tbody tr[data-category={category}]")
    for role, text in figures.items():
        expect(row.locator(f"[data-role={role}]")).to_have_text(text, timeout=LIVE_MS)


def expect_bar(page: Page, category: str, values: dict[str, int]) -> None:
    bar = page.locator(f"#month svg.chart g[data-row={category}]")
    for part, cents in values.items():
        selector = f"rect[data-part=chart-{part}]"
        if cents:
            expect(bar.locator(selector)).to_have_attribute("data-value", str(cents), timeout=LIVE_MS)
        else:
            expect(bar.locator(selector)).to_have_count(0, timeout=LIVE_MS)


def test_the_client_sees_the_month_as_a_chart_and_a_table_and_the_money_staged_ahead(
    page: Page, world: dict[str, Any], files: WalletFiles, server: Server
) -> None:
    page.set_viewport_size(PHONE_VIEWPORT)
    sign_in_client(page, files)
    month = page.locator("#month")
    expect(month.get_by_role("heading", name="Kuukausi yhdellä silmäyksellä")).to_be_visible()
    left = days_left()
    home_left = HOME_CARE - 12_345 - 1_000
    expect_line(
        page,
        "home_care",
        {
            "money": euros(HOME_CARE),
            "spent": euros(12_345),
            "held": euros(1_000),
            "left": euros(home_left),
            "days-left": str(left),
            "per-day": euros(home_left // left),
        },
    )
    expect_line(page, "transport", {"money": euros(TRANSPORT), "spent": euros(0), "left": euros(TRANSPORT)})
    expect_bar(page, "home_care", {"spent": 12_345, "held": 1_000, "left": home_left})
    expect_bar(page, "transport", {"spent": 0, "held": 0, "left": TRANSPORT})
    # The picture is one named image; the table is what a screen reader reads.
    expect(
        month.get_by_role("img", name="Kaavio: käytetty, varattu ja jäljellä oleva raha palveluittain")
    ).to_have_count(1)
    wallet = server.api(files.token("client", client_id=world["client"]["id"])).call("GET", "/v1/me/wallet", expect=200)
    assert [line["available"] for line in wallet["lines"]] == [home_left, TRANSPORT]

    # Next month's money, staged: shown, not counted as spendable.
    (staged,) = wallet["upcoming"]
    assert staged["amount"] == HOME_CARE + TRANSPORT
    expect(page.locator("#upcoming-list li")).to_have_count(1)
    expect(page.locator("#upcoming-list li")).to_contain_text(euros(HOME_CARE + TRANSPORT))
    expect(page.locator("#total")).to_contain_text(euros(home_left + TRANSPORT))
    audit(page, "client-month")

    # A new charge: the table and the chart follow without a reload.
    page.evaluate("window.notReloaded = true")
    world["till"].call("POST", "/v1/charges", {**world["charge"], "amount": 2_000}, key="month-charge-2", expect=201)
    expect_line(page, "home_care", {"spent": euros(14_345), "left": euros(home_left - 2_000)})
    expect_bar(page, "home_care", {"spent": 14_345, "left": home_left - 2_000})
    assert page.evaluate("window.notReloaded") is True

    page.get_by_role("button", name="Svenska").click()
    expect(page.get_by_role("heading", name="Månaden i en blick")).to_be_visible()
    expect(page.locator("#month-table caption")).to_contain_text(f"{left} dagar kvar")
    page.get_by_role("button", name="English").click()
    expect(page.locator("#month-table thead")).to_contain_text("Days left")
    audit(page, "client-month-en")


def test_the_usage_report_is_a_chart_beside_its_table(
    page: Page, world: dict[str, Any], files: WalletFiles, server: Server
) -> None:
    admin_sign_in(page, admin=files.token("admin"))
    page.get_by_role("button", name="Näytä raportti").click()
    report = server.api(files.token("admin")).call("GET", f"/v1/reports/usage?month={world['month']}", expect=200)
    (client,) = report["data"]
    row = page.locator("#usage-clients tbody tr", has_text="Aino Asiakas")
    expect(row).to_contain_text(euros(client["used"]))
    chart = page.locator("#usage-chart")
    bar = chart.locator(f"g[data-row={client['client_id']}]")
    expect(bar.locator("rect[data-part=chart-spent]")).to_have_attribute("data-value", str(client["used"]))
    expect(bar.locator("rect[data-part=chart-left]")).to_have_attribute("data-value", str(client["left"]))
    totals = chart.locator("g[data-row=totals]")
    expect(totals.locator("rect[data-part=chart-spent]")).to_have_attribute("data-value", str(report["totals"]["used"]))
    assert client["used"] >= 12_345
    audit(page, "admin-usage-chart")
