"""The three pages in headless Chromium against the real ``wallet serve``: what a provider, a
client and the organizer see and do. One server and one browser for the module; each test signs
in on its own page. Every page is checked with axe-core (no serious or critical violation) and
photographed at phone and desktop width into build/screenshots/.

Chromium is Debian's (``.ci/run`` installs it); Playwright drives it and downloads no browser.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import (
    IBAN,
    NATIONAL_ID,
    PHONE_AS_TYPED,
    PHONE_E164,
    Server,
    WalletFiles,
    current_month,
    seed,
)
from tests.test_reconciliation import finvoice

playwright_api = pytest.importorskip("playwright.sync_api", reason="install the test extra: pip install -e '.[test]'")
from playwright.sync_api import Browser, Page, expect

from tests.browser import ACTION_TIMEOUT_MS, CHROMIUM, DESKTOP_VIEWPORT, checked_page, chromium, served

pytestmark = [pytest.mark.slow, pytest.mark.browser]

AXE = (Path(__file__).parent / "fixtures" / "axe" / "axe.min.js").read_text(encoding="utf-8")
SCREENSHOTS = Path(__file__).parents[1] / "build" / "screenshots"
PHONE_VIEWPORT = {"width": 390, "height": 844}
LIVE_UPDATE_MS = 1_000  # the promise: a new balance shows within a second, without reload
MONTHLY = 50_000


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> WalletFiles:
    return WalletFiles(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def server(files: WalletFiles) -> Iterator[Server]:
    # The organizer's test signs in by pasting tokens: the development setting that shows that form.
    yield from served(Server(files, env={"WALLET_ADMIN_TOKEN_FORM": "true"}), files)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture(scope="module")
def world(files: WalletFiles, server: Server) -> dict[str, Any]:
    """A client with a budget credited this month, and an approved provider with credentials."""
    seeded = seed(files, server, MONTHLY)
    admin = server.api(files.token("admin"))
    credentials = admin.call("POST", f"/v1/providers/{seeded.provider_id}/credentials", expect=201)
    return {"seeded": seeded, "credentials": credentials, "admin": admin}


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    yield from checked_page(browser, server.base_url)


def audit(page: Page, name: str) -> None:
    """axe-core finds no serious or critical violation; nothing is kept in localStorage (tokens live in
    sessionStorage); screenshots at phone and desktop width."""
    assert page.evaluate("localStorage.length") == 0, name
    page.evaluate(AXE)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    serious = [
        f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']][:5]}"
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert serious == [], f"{name}: {serious}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for label, viewport in (("phone", PHONE_VIEWPORT), ("desktop", DESKTOP_VIEWPORT)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    if original:
        page.set_viewport_size(original)


def euros(cents: int) -> str:
    """As the pages print an amount in Finnish: 1 234,50 € (non-breaking spaces)."""
    whole = f"{cents // 100:,}".replace(",", "\u00a0")
    return f"{whole},{cents % 100:02d}\u00a0€"


def spaced(text: str) -> str:
    """A pattern for text as an accessible name has it: any space may have become a plain one."""
    return re.escape(text).replace("\u00a0", r"\s")


def available(world: dict[str, Any], server: Server) -> int:
    wallet = server.api(world["seeded"].client_token).call("GET", "/v1/me/wallet", expect=200)
    return int(wallet["available"])


def provider_sign_in(page: Page, credentials: dict[str, str]) -> None:
    page.goto("/provider")
    page.get_by_label("Asiakastunnus (client id)").fill(credentials["client_id"])
    page.get_by_label("Salainen avain (client secret)").fill(credentials["client_secret"])
    page.get_by_role("button", name="Kirjaudu", exact=True).click()
    expect(page.get_by_role("heading", name="Veloita asiakkaan budjetista")).to_be_visible()


def fill_charge(page: Page, amount: str, method: str, category: str = "home_care", phone: str = PHONE_AS_TYPED) -> None:
    page.get_by_label("Asiakkaan puhelinnumero").fill(phone)
    page.get_by_label("Summa euroina").fill(amount)
    page.get_by_label("Palvelu", exact=True).select_option(category)
    page.get_by_label(method).check()


# The point of service.


def test_a_provider_charges_by_national_id_and_by_sms_code(
    page: Page, world: dict[str, Any], files: WalletFiles, server: Server
) -> None:
    page.goto("/provider")
    audit(page, "provider-sign-in")
    provider_sign_in(page, world["credentials"])
    before = available(world, server)

    fill_charge(page, "12,50", "Henkilötunnus asiakkaan henkilökortista")
    page.get_by_label("Henkilötunnus", exact=True).fill(NATIONAL_ID)
    page.get_by_role("button", name="Veloita", exact=True).click()
    expect(page.locator("#outcome")).to_have_text(f"Veloitettu {euros(1250)}.")
    assert available(world, server) == before - 1250

    sms_before = len([m for m in files.sms() if m["to"] == PHONE_E164])
    fill_charge(page, "7,25", "Tekstiviestikoodi asiakkaan puhelimeen")
    page.get_by_role("button", name="Veloita", exact=True).click()
    expect(page.get_by_label("Asiakkaan koodi")).to_be_focused()
    code = files.code_sent_to(PHONE_E164, nth=sms_before + 1)
    page.get_by_label("Asiakkaan koodi").fill(code)
    page.get_by_role("button", name="Vahvista veloitus").click()
    expect(page.locator("#outcome")).to_have_text(f"Veloitettu {euros(725)}.")
    assert available(world, server) == before - 1250 - 725

    # Not enough on the line: said in plain words, and nothing is charged.
    fill_charge(page, "100000", "Henkilötunnus asiakkaan henkilökortista")
    page.get_by_label("Henkilötunnus", exact=True).fill(NATIONAL_ID)
    page.get_by_role("button", name="Veloita", exact=True).click()
    expect(page.locator("#outcome")).to_contain_text("Palvelussa ei ole tarpeeksi rahaa")
    # A wrong national id: the identity check failed.
    fill_charge(page, "1,00", "Henkilötunnus asiakkaan henkilökortista")
    page.get_by_label("Henkilötunnus", exact=True).fill("280264-051U")
    page.get_by_role("button", name="Veloita", exact=True).click()
    expect(page.locator("#outcome")).to_have_text("Henkilöllisyyden tarkistus epäonnistui.")
    assert available(world, server) == before - 1250 - 725

    # Today's charges: refund part of the first.
    row = page.locator("#today-table tbody tr").filter(has_text=euros(1250))
    row.get_by_label("Hyvitys euroina").fill("2,50")
    row.get_by_role("button", name=re.compile("^Hyvitä veloituksesta")).click()
    expect(page.locator("#today-message")).to_have_text(f"Hyvitetty {euros(250)} asiakkaan budjettiin.")
    assert available(world, server) == before - 1250 - 725 + 250
    audit(page, "provider")


def test_a_lost_answer_is_retried_with_the_same_key_and_charges_once(
    page: Page, world: dict[str, Any], server: Server
) -> None:
    provider_sign_in(page, world["credentials"])
    before = available(world, server)
    keys: list[str] = []

    def lose_the_first_answer(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            route.fetch()  # the server carries the charge out ...
            route.abort("connectionreset")  # ... and its answer is lost on the way back
        else:
            route.continue_()

    page.route("**/v1/charges", lose_the_first_answer)
    fill_charge(page, "3,33", "Henkilötunnus asiakkaan henkilökortista")
    page.get_by_label("Henkilötunnus", exact=True).fill(NATIONAL_ID)
    page.get_by_role("button", name="Veloita", exact=True).dblclick()  # a double tap, too
    expect(page.locator("#outcome")).to_have_text(f"Veloitettu {euros(333)}.")
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1], keys
    assert available(world, server) == before - 333  # once, not twice
    charges = server.api(world["seeded"].provider_token).call("GET", "/v1/charges?limit=200", expect=200)["data"]
    assert [c["amount"] for c in charges].count(333) == 1

    # The connection stays down through every automatic retry: the page says so, keeps the key,
    # and the provider's next press repeats the same request rather than charging again.
    page.unroute("**/v1/charges")
    keys.clear()
    down = {"attempts": 0}

    def connection_down(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        down["attempts"] += 1
        if down["attempts"] == 1:
            route.fetch()  # carried out; the answer lost
        route.abort("internetdisconnected")

    page.route("**/v1/charges", connection_down)
    fill_charge(page, "2,22", "Henkilötunnus asiakkaan henkilökortista")
    page.get_by_label("Henkilötunnus", exact=True).fill(NATIONAL_ID)
    page.get_by_role("button", name="Veloita", exact=True).click()
    expect(page.locator("#outcome")).to_contain_text("Yhteys katkesi", timeout=15_000)
    page.unroute("**/v1/charges")
    page.route(
        "**/v1/charges",
        lambda route: (keys.append(route.request.headers.get("idempotency-key", "")), route.continue_()),
    )
    page.get_by_role("button", name="Veloita", exact=True).click()
    expect(page.locator("#outcome")).to_have_text(f"Veloitettu {euros(222)}.")
    assert len(keys) >= 3 and len(set(keys)) == 1, keys
    assert available(world, server) == before - 333 - 222


def test_a_provider_requests_a_settlement_and_sees_its_reference_grouped(
    page: Page, world: dict[str, Any], server: Server
) -> None:
    provider_sign_in(page, world["credentials"])
    # An app charge waits in the list; the provider cancels it there.
    fill_charge(page, "4,00", "Hyväksyntä asiakkaan sovelluksessa")
    page.get_by_role("button", name="Veloita", exact=True).click()
    expect(page.locator("#outcome")).to_contain_text("Odotetaan asiakkaan hyväksyntää")
    page.get_by_role("button", name=re.compile(f"^Peru veloitus {spaced(euros(400))}")).click()
    expect(page.locator("#today-message")).to_have_text(f"Veloitus {euros(400)} peruttu.")

    charge = {
        "phone": PHONE_AS_TYPED,
        "amount": 900,
        "category": "home_care",
        "identity": {"method": "national_id", "national_id": NATIONAL_ID},
    }
    server.api(world["seeded"].provider_token).call("POST", "/v1/charges", charge, key="web-settle-1", expect=201)
    page.get_by_role("button", name="Pyydä tilitys").click()
    reference = page.locator("#settlement-reference")
    expect(reference).to_have_text(re.compile(r"^\d{1,5}( \d{5})*$"))  # in fives, as on a bank form
    settlements = server.api(world["seeded"].provider_token).call("GET", "/v1/settlements", expect=200)["data"]
    assert reference.inner_text() == settlements[0]["reference_printed"]
    expect(page.locator("#settlement-rf-reference")).to_have_text(settlements[0]["rf_reference_printed"])

    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Point of service", exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "en"
    page.get_by_role("button", name="Svenska").click()
    expect(page.get_by_role("heading", name="Debitera klientens budget")).to_be_visible()
    audit(page, "provider-settled-sv")


# The client.


def test_the_client_sees_a_new_balance_live_and_approves_an_app_charge(
    page: Page, world: dict[str, Any], files: WalletFiles, server: Server
) -> None:
    seeded = world["seeded"]
    page.set_viewport_size(PHONE_VIEWPORT)
    page.goto("/")
    audit(page, "client-login")
    sms_before = len([m for m in files.sms() if m["to"] == PHONE_E164])
    page.get_by_label("Puhelinnumerosi").fill(PHONE_AS_TYPED)
    page.get_by_role("button", name="Lähetä koodi").click()
    page.get_by_label("Tekstiviestin koodi").fill(files.code_sent_to(PHONE_E164, nth=sms_before + 1))
    page.get_by_role("button", name="Kirjaudu", exact=True).click()

    line = page.locator("li.line", has=page.get_by_role("heading", name="Kotihoito"))
    expect(line.locator("[data-role=available]")).to_have_text(euros(available(world, server)))
    expect(page.locator("#live")).to_have_text("Saldo päivittyy reaaliajassa.")
    page.evaluate("window.notReloaded = true")

    provider = server.api(seeded.provider_token)
    charge = {
        "phone": PHONE_AS_TYPED,
        "amount": 500,
        "category": "home_care",
        "identity": {"method": "national_id", "national_id": NATIONAL_ID},
    }
    provider.call("POST", "/v1/charges", charge, key="web-live-1", expect=201)
    expect(line.locator("[data-role=available]")).to_have_text(euros(available(world, server)), timeout=LIVE_UPDATE_MS)
    assert page.evaluate("window.notReloaded") is True

    # A charge to approve in the app appears by itself; the client approves it.
    asked = provider.call(
        "POST", "/v1/charges", {**charge, "amount": 650, "identity": {"method": "app"}}, key="web-app-1", expect=201
    )
    assert asked["status"] == "pending"
    card = page.locator(".pending-charge", has_text=euros(650))
    expect(card).to_contain_text("Hoiva Oy pyytää")
    audit(page, "client-approval")
    card.get_by_role("button", name=re.compile("^Hyväksy")).click()
    expect(page.locator("#flash")).to_have_text(f"Hyväksytty: {euros(650)} veloitettiin.")
    assert provider.call("GET", f"/v1/charges/{asked['id']}", expect=200)["status"] == "captured"
    expect(card).to_have_count(0)
    expect(page.locator("#history-table tbody tr").first).to_contain_text(f"\u2212{euros(650)}")

    page.get_by_role("button", name="Näytä ote").click()
    expect(page.locator("#statement-result dl")).to_contain_text("Saldo kuun lopussa")
    assert page.evaluate("window.notReloaded") is True
    audit(page, "client")


def test_a_representative_switches_between_the_clients_they_act_for(
    page: Page, world: dict[str, Any], files: WalletFiles, server: Server
) -> None:
    seeded, admin = world["seeded"], world["admin"]
    month = current_month()
    other = admin.call("POST", "/v1/clients", {"name": "Toini Toinen", "phone": "040 111 2222"}, expect=201)
    admin.call(
        "POST",
        f"/v1/clients/{other['id']}/budgets",
        {
            "start_month": month,
            "end_month": month,
            "unused": "expire",
            "lines": [{"category": "home_care", "monthly_amount": 20_000}],
        },
        expect=201,
    )
    admin.call("POST", "/v1/credit-runs", {"month": month}, key=f"web-reps-{month}")
    representative = {"phone": "040 999 8888", "name": "Raili Edustaja"}
    admin.call(
        "POST", f"/v1/clients/{seeded.client_id}/representatives", {**representative, "scope": "manage"}, expect=201
    )
    admin.call("POST", f"/v1/clients/{other['id']}/representatives", {**representative, "scope": "view"}, expect=201)
    provider = server.api(seeded.provider_token)
    asked = provider.call(
        "POST",
        "/v1/charges",
        {"phone": "0401112222", "amount": 1_500, "category": "home_care", "identity": {"method": "app"}},
        key="web-reps-app",
        expect=201,
    )

    # By keyboard alone: the skip link, typing, Enter; the code field takes the focus by itself.
    # The sign-in shows once the page has asked which sign-ins there are: keys pressed before would
    # find nothing to focus in the main content (a loaded machine's race, seen in CI).
    page.goto("/")
    expect(page.get_by_label("Puhelinnumerosi")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Siirry sisältöön")).to_be_focused()
    page.keyboard.press("Enter")  # to the main content, past the language buttons
    page.keyboard.press("Tab")
    expect(page.get_by_label("Puhelinnumerosi")).to_be_focused()
    page.keyboard.type(representative["phone"])
    page.keyboard.press("Enter")
    expect(page.get_by_label("Tekstiviestin koodi")).to_be_focused()
    page.keyboard.type(files.code_sent_to("+358409998888"))
    page.keyboard.press("Enter")

    switcher = page.get_by_label("Asioit asiakkaan puolesta")
    expect(switcher.locator("option")).to_have_text(["Aino Asiakas", "Toini Toinen"], use_inner_text=True)
    line = page.locator("li.line", has=page.get_by_role("heading", name="Kotihoito"))
    switcher.select_option(label="Toini Toinen")
    expect(line.locator("[data-role=available]")).to_have_text(euros(20_000 - 1_500))
    card = page.locator(".pending-charge", has_text=euros(1_500))
    expect(card).to_contain_text("Asiakas tai hänen valtuuttamansa voi hyväksyä tämän.")  # a view-only mandate
    expect(card.get_by_role("button")).to_have_count(0)
    expect(page.locator("#subject-switcher")).to_contain_text("Veloitusten hyväksyminen ei kuulu valtuuteesi.")
    audit(page, "client-representative")

    switcher.select_option(label="Aino Asiakas")
    expect(line.locator("[data-role=available]")).to_have_text(euros(available(world, server)))
    expect(page.locator(".pending-charge")).to_have_count(0)
    assert provider.call("GET", f"/v1/charges/{asked['id']}", expect=200)["status"] == "pending"


# The organizer and finance.


def test_the_organizer_creates_a_client_and_budget_runs_credits_and_reconciles(
    page: Page, world: dict[str, Any], files: WalletFiles, server: Server, tmp_path: Path
) -> None:
    page.goto("/admin")
    audit(page, "admin-sign-in")
    page.get_by_label("Järjestäjän tunniste (admin)").fill(files.token("admin"))
    page.get_by_label("Talouden tunniste (finance)").fill(files.token("finance"))
    page.get_by_role("button", name="Kirjaudu", exact=True).click()

    page.get_by_label("Tunnus (esim. home_care)").fill("respite_care")
    page.get_by_label("Nimi (esim. Kotihoito)").fill("Omaishoidon vapaa")
    page.get_by_role("button", name="Lisää palvelu", exact=True).click()
    expect(page.locator("#category-message")).to_have_text("Palvelu Omaishoidon vapaa lisätty.")

    clients = page.locator("#client-form")
    clients.get_by_label("Nimi").fill("Eino Esimerkki")
    clients.get_by_label("Puhelinnumero").fill("040 765 4321")
    clients.get_by_label("Henkilötunnus (vapaaehtoinen)").fill("280264-051U")
    page.get_by_role("button", name="Luo asiakas").click()
    expect(page.locator("#client-message")).to_contain_text("Asiakas Eino Esimerkki luotu")
    client_id = page.get_by_label("Asiakkaan tunnus", exact=True).input_value()
    assert client_id.startswith("cl_")

    # A relative gets a mandate to act for the client, and loses it again.
    client_row = page.locator("#client-table tbody tr", has_text="Eino Esimerkki")
    client_row.get_by_role("button", name="Lisää valtuutettu asioija asiakkaalle Eino Esimerkki").click()
    expect(page.get_by_label("Asioijan nimi")).to_be_focused()
    page.get_by_label("Asioijan nimi").fill("Elli Edustaja")
    page.get_by_label("Asioijan puhelinnumero").fill("040 222 3333")
    page.get_by_label("Valtuus", exact=True).select_option("manage")
    page.get_by_role("button", name="Anna valtuus").click()
    expect(page.locator("#rep-message")).to_have_text("Valtuus annettu: Elli Edustaja.")
    expect(client_row).to_contain_text("Elli Edustaja, +358402223333: Saa katsella ja hyväksyä veloituksia")
    client_row.get_by_role("button", name=re.compile("^Peru valtuus: Elli Edustaja")).click()
    expect(client_row).to_contain_text("(peruttu)")

    month = current_month()
    year, number = int(month[:4]), int(month[5:])
    page.get_by_label("Ensimmäinen kuukausi").fill(month)
    page.get_by_label("Viimeinen kuukausi").fill(f"{year + 1:04d}-{number:02d}" if number > 1 else f"{year:04d}-12")
    budget = page.locator("#budget-form")
    budget.get_by_label("Palvelu", exact=True).select_option("respite_care")
    budget.get_by_label("Kuukausisumma euroina").fill("300,00")
    page.get_by_role("button", name="Myönnä budjetti", exact=True).click()
    expect(page.locator("#budget-message")).to_contain_text(f"{euros(30000)} kuukaudessa")

    providers = page.locator("#provider-form")
    providers.get_by_label("Nimi").fill("Esimerkki Hoivapalvelut Oy")
    providers.get_by_label("Y-tunnus").fill("1234567-1")  # the seller in the Finvoice fixture
    providers.get_by_label("Tilinumero (IBAN)").fill(IBAN)
    providers.get_by_label("Omaishoidon vapaa").check()
    page.get_by_role("button", name="Lisää palveluntuottaja").click()
    row = page.locator("#provider-table tbody tr", has_text="Esimerkki Hoivapalvelut Oy")
    row.get_by_role("button", name=re.compile("^Hyväksy")).click()
    expect(row).to_contain_text("Hyväksytty")
    row.get_by_role("button", name=re.compile("^Anna tunnukset")).click()
    client_secret = page.locator("#issued-client-secret").inner_text()
    provider_client_id = page.locator("#issued-client-id").inner_text()

    page.get_by_role("button", name="Tee hyvitysajo").click()
    expect(page.locator("#credit-result")).to_contain_text(f"Hyvitysajo tehty kuukaudelle {month}.")
    expect(page.locator("#credit-now")).to_have_text("1")
    client_token = files.token("client", client_id=client_id)
    assert server.api(client_token).call("GET", "/v1/me/wallet", expect=200)["available"] == 30000

    # The new provider charges on its page, settles, and downloads its invoice (Finvoice 3.0) ...
    till = page.context.new_page()
    provider_sign_in(till, {"client_id": provider_client_id, "client_secret": client_secret})
    fill_charge(
        till, "123,45", "Henkilötunnus asiakkaan henkilökortista", category="respite_care", phone="040 765 4321"
    )
    till.get_by_label("Henkilötunnus", exact=True).fill("280264-051U")
    till.get_by_role("button", name="Veloita", exact=True).click()
    expect(till.locator("#outcome")).to_have_text(f"Veloitettu {euros(12345)}.")
    till.get_by_role("button", name="Pyydä tilitys").click()
    reference = till.locator("#settlement-reference").inner_text()
    with till.expect_download() as invoice_download:
        till.locator("#settlement-result").get_by_role("button", name=re.compile("^Lataa lasku")).click()
    invoice = tmp_path / invoice_download.value.suggested_filename
    invoice_download.value.save_as(invoice)
    assert invoice.name.endswith(".xml") and "<Finvoice" in invoice.read_text(encoding="utf-8")
    audit(till, "provider-invoice")
    till.close()

    # ... and finance reconciles it on the organizer's page (beside a batch of a provider this
    # session never opened, which the page names by looking it up).
    seeded_provider = server.api(world["seeded"].provider_token)
    seeded_provider.call(
        "POST",
        "/v1/charges",
        {
            "phone": PHONE_AS_TYPED,
            "amount": 100,
            "category": "home_care",
            "identity": {"method": "national_id", "national_id": NATIONAL_ID},
        },
        key="web-admin-2",
        expect=201,
    )
    seeded_provider.call("POST", "/v1/settlements", {}, key="web-admin-settle-2", expect=201)
    page.get_by_role("button", name="Päivitä").click()
    batch_row = page.locator("#settlement-table tbody tr", has_text=reference)
    expect(batch_row).to_contain_text("Avoin")
    expect(page.locator("#settlement-table tbody tr", has_text="Hoiva Oy")).not_to_have_count(0)  # met by its id only
    page.get_by_label("Laskutiedosto").set_input_files(str(invoice))
    page.get_by_role("button", name="Täsmäytä").click()
    outcome = page.locator("#reconcile-table tbody tr")
    expect(outcome).to_have_count(1)
    expect(outcome).to_have_attribute("data-outcome", "matched")
    expect(outcome).to_contain_text("Täsmää")
    expect(outcome).to_contain_text(euros(12345))
    expect(batch_row).to_contain_text("Laskutettu")

    # An invoice that does not add up is shown as such, and changes nothing.
    wrong = tmp_path / "wrong.xml"
    wrong.write_text(
        finvoice(reference.replace(" ", ""), amount="99,00", seller="1234567-1", number="X-1"), encoding="utf-8"
    )
    page.get_by_label("Laskutiedosto").set_input_files(str(wrong))
    page.get_by_role("button", name="Täsmäytä").click()
    expect(page.locator("#reconcile-table tbody tr")).to_have_attribute(
        "data-outcome", re.compile("amount_mismatch|duplicate")
    )

    # The organizer ends the client's budget with this month: the row shows its new end.
    budget_row = page.locator("#client-table tbody tr", has_text="Eino Esimerkki")
    budget_row.get_by_label(re.compile("^Viimeinen kuukausi")).fill(month)
    budget_row.get_by_role("button", name=re.compile("^Päätä budjetti")).click()
    expect(page.locator("#client-message")).to_contain_text(f"Asiakkaan Eino Esimerkki budjetti päättyy {month}.")
    expect(budget_row).to_contain_text(f"{month} – {month}: Omaishoidon vapaa")

    # The usage report: this month's use per client and provider.
    page.get_by_role("button", name="Näytä raportti").click()
    expect(page.locator("#usage-clients tbody tr", has_text="Eino Esimerkki")).to_contain_text(euros(12345))
    expect(page.locator("#usage-providers")).to_contain_text("Esimerkki Hoivapalvelut Oy")

    with page.expect_download() as download:
        page.get_by_role("button", name="Lataa tiedosto").click()
    exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert "capture" in exported and len(exported.splitlines()) > 2
    audit(page, "admin")
