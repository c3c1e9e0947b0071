"""The marketplace on the three pages in headless Chromium against the real ``wallet serve``: the
organizer's catalog and every offer on /admin, a provider's own offers and a charge by offer and
quantity on /provider (the price, the budget's part and the own share shown before confirming,
and what lands in the ledger), and the client's comparison ("Palvelut") on /."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="install the test extra: pip install -e '.[test]'")
from playwright.sync_api import Browser, Page, expect

from tests.browser import TOKEN_FORM, admin_sign_in, checked_page, chromium, served
from tests.processes import NATIONAL_ID, PHONE_AS_TYPED, PHONE_E164, Server, WalletFiles, organizer_today, seed
from tests.test_web_browser import PHONE_VIEWPORT, audit, euros, provider_sign_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]

MONTHLY = 50_000


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> WalletFiles:
    return WalletFiles(tmp_path_factory.mktemp("web-market"), extra_env=TOKEN_FORM)


@pytest.fixture(scope="module")
def server(files: WalletFiles) -> Iterator[Server]:
    yield from served(Server(files), files)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    yield from checked_page(browser, server.base_url)


@pytest.fixture(scope="module")
def world(files: WalletFiles, server: Server) -> dict[str, Any]:
    seeded = seed(files, server, MONTHLY)
    admin = server.api(files.token("admin"))
    credentials = admin.call("POST", f"/v1/providers/{seeded.provider_id}/credentials", expect=201)
    return {"seeded": seeded, "credentials": credentials, "admin": admin}


def available(server: Server, world: dict[str, Any]) -> int:
    return int(server.api(world["seeded"].client_token).call("GET", "/v1/me/wallet", expect=200)["available"])


def per_hour(cents: int, unit: str = "tunti") -> str:
    return f"{euros(cents)} / {unit}"


def test_the_organizer_keeps_the_catalog_a_provider_offers_and_charges_by_quantity_and_the_client_compares(
    page: Page, world: dict[str, Any], files: WalletFiles, server: Server
) -> None:
    seeded = world["seeded"]
    # Three tabs of one checked context (each tab its own sessionStorage, so its own sign-in).
    admin_page, till, phone = page, page.context.new_page(), page.context.new_page()

    # The organizer adds a service, and raises its unit value from tomorrow on (today's stays).
    admin_sign_in(admin_page, admin=files.token("admin"))
    catalog = admin_page.locator("#catalog")
    expect(catalog.get_by_role("heading", name="Palveluluettelo ja tarjoukset")).to_be_visible()
    catalog.get_by_label("Tunnus (esim. home_help)").fill("home_help")
    catalog.get_by_label("Budjetin palvelu").select_option("home_care")
    catalog.get_by_label("Nimi suomeksi").fill("Kotipalvelu")
    catalog.get_by_label("Nimi ruotsiksi").fill("Hemservice")
    catalog.get_by_label("Yksikkö", exact=True).select_option("hour")
    catalog.get_by_label("Yksikköarvo euroina").fill("30,00")
    catalog.get_by_role("button", name="Lisää luetteloon").click()
    expect(admin_page.locator("#catalog-message")).to_have_text("Palvelu Kotipalvelu lisätty luetteloon.")
    row = admin_page.locator("#service-table tbody tr", has_text="home_help")
    expect(row).to_contain_text(euros(3000))
    tomorrow = (organizer_today() + timedelta(days=1)).isoformat()
    row.get_by_label("Uusi yksikköarvo euroina: Kotipalvelu").fill("32,00")
    row.get_by_label("Voimassa alkaen: Kotipalvelu").fill(tomorrow)
    row.get_by_role("button", name="Muuta yksikköarvo").click()
    expect(admin_page.locator("#catalog-message")).to_contain_text(f"{euros(3200)}")
    expect(row).to_contain_text(euros(3200))
    services = server.api(seeded.client_token).call("GET", "/v1/services", expect=200)["data"]
    assert [(s["code"], s["unit_value"], len(s["unit_values"])) for s in services] == [("home_help", 3000, 2)]
    audit(admin_page, "admin-catalog")

    # The provider offers it in Kajaani and Sotkamo, in Finnish and Swedish, then lowers its price.
    provider_sign_in(till, world["credentials"])
    offers = till.locator("#offers")
    expect(till.locator("#item-no-offers")).to_be_visible()
    offers.get_by_label("Palvelu luettelosta").select_option("home_help")
    offers.get_by_label("Hinta euroina yksiköltä").fill("35,00")
    offers.get_by_label("Kunnat, joissa palvelet").select_option(["205", "765"])
    offers.get_by_label("suomi").check()
    offers.get_by_label("ruotsi").check()
    offers.get_by_label("Toimipaikan osoite (vapaaehtoinen)").fill("Kauppakatu 1, Kajaani")
    offers.get_by_role("button", name="Lisää tarjous").click()
    expect(till.locator("#offers-message")).to_have_text(f"Tarjous Kotipalvelu lisätty hintaan {euros(3500)}.")
    offer_row = till.locator("#offer-table tbody tr", has_text="Kotipalvelu")
    expect(offer_row).to_contain_text(per_hour(3500))
    expect(offer_row).to_contain_text("Kajaani, Sotkamo")
    offer_row.get_by_label("Uusi hinta euroina: Kotipalvelu").fill("33,00")
    offer_row.get_by_role("button", name="Muuta hinta: Kotipalvelu").click()
    expect(till.locator("#offers-message")).to_have_text(f"Tarjouksen Kotipalvelu hinta on nyt {euros(3300)}.")
    expect(offer_row.locator("td").nth(3)).to_have_text(euros(300))  # own share per unit
    offers_now = server.api(seeded.provider_token).call("GET", f"/v1/providers/{seeded.provider_id}/offers", expect=200)
    assert [(o["unit_price"], [p["unit_price"] for p in o["unit_prices"]]) for o in offers_now["data"]] == [
        (3300, [3500, 3300])
    ]

    # A charge of 1,5 hours: the parts before confirming, the budget's part charged, the own share not.
    charge = till.locator("#item-charge")
    before = available(server, world)
    charge.get_by_label("Asiakkaan puhelin", exact=True).fill(PHONE_AS_TYPED)
    charge.get_by_label("Palvelu (oma tarjous)").select_option(label=f"Kotipalvelu, {per_hour(3300)}")
    charge.get_by_label("Määrä").fill("1,5")
    expect(till.locator("#item-price")).to_have_text(euros(4950))
    expect(till.locator("#item-budget")).to_have_text(euros(4500))
    expect(till.locator("#item-own-share")).to_have_text(euros(450))
    charge.get_by_label("Asiakkaan henkilötunnus").fill(NATIONAL_ID)
    charge.get_by_role("button", name="Vahvista ja veloita").click()
    expect(till.locator("#item-outcome")).to_have_text(
        f"Veloitettu budjetista {euros(4500)}.Peri asiakkaalta omavastuu {euros(450)}."
    )
    assert available(server, world) == before - 4500
    latest = server.api(seeded.provider_token).call("GET", "/v1/charges?limit=1", expect=200)["data"][0]
    assert (latest["amount"], latest["own_share"], latest["status"]) == (4500, 450, "captured")
    assert [(i["service"], i["quantity"], i["amount"], i["own_share"]) for i in latest["items"]] == [
        ("home_help", "1.5", 4500, 450)
    ]
    expect(till.locator("#today-table tbody tr").first).to_contain_text(euros(4500))

    # Rounding as the service does it: 0,33 h at 33,00 € is 10,89 €, of which the budget pays 9,90 €.
    charge.get_by_label("Määrä").fill("0,33")
    expect(till.locator("#item-price")).to_have_text(euros(1089))
    expect(till.locator("#item-budget")).to_have_text(euros(990))
    expect(till.locator("#item-own-share")).to_have_text(euros(99))
    charge.get_by_label("Asiakkaan henkilötunnus").fill(NATIONAL_ID)
    charge.get_by_role("button", name="Vahvista ja veloita").click()
    expect(till.locator("#item-outcome")).to_contain_text(f"Veloitettu budjetista {euros(990)}.")
    assert available(server, world) == before - 4500 - 990
    # Three decimals: refused on the page, nothing sent.
    charge.get_by_label("Määrä").fill("1,555")
    expect(till.locator("#item-price")).to_have_count(0)
    charge.get_by_role("button", name="Vahvista ja veloita").click()
    expect(till.locator("#item-outcome")).to_have_text("Kirjoita määrä, esimerkiksi 1,5.")
    assert available(server, world) == before - 4500 - 990
    audit(till, "provider-offers")

    # The organizer sees every offer.
    admin_page.reload()
    expect(admin_page.locator("#all-offers-table tbody tr", has_text="Hoiva Oy")).to_contain_text(per_hour(3300))

    # The client compares, on a phone.
    phone.set_viewport_size(PHONE_VIEWPORT)
    phone.goto("/")
    sms_before = len([m for m in files.sms() if m["to"] == PHONE_E164])
    phone.get_by_label("Puhelinnumerosi").fill(PHONE_AS_TYPED)
    phone.get_by_role("button", name="Lähetä koodi").click()
    phone.get_by_label("Tekstiviestin koodi").fill(files.code_sent_to(PHONE_E164, nth=sms_before + 1))
    phone.get_by_role("button", name="Kirjaudu", exact=True).click()
    compare = phone.locator("#services-compare")
    expect(compare.get_by_role("heading", name="Palvelut", exact=True)).to_be_visible()
    compare.get_by_label("Palvelu", exact=True).select_option(label="Kotipalvelu")
    compare.get_by_label("Kunta").select_option(label="Kajaani")
    compare.get_by_role("button", name="Näytä tarjoukset").click()
    card = phone.locator("li.offer", has=phone.get_by_role("heading", name="Hoiva Oy"))
    expect(card.locator("[data-role=price]")).to_have_text(per_hour(3300))
    expect(card.locator("[data-role=budget]")).to_have_text(per_hour(3000))
    expect(card.locator("[data-role=own-share]")).to_have_text(per_hour(300))
    expect(card.locator("[data-role=where]")).to_have_text("Kajaani, Sotkamo")
    compared = server.api(seeded.client_token).call("GET", "/v1/offers?service=home_help", expect=200)["data"][0]
    if "units_left" in compared:  # where the server tells how many units the line still buys
        expect(card.locator("[data-role=units-left]")).to_have_text(f"{compared['units_left']} × tunti")
    else:
        expect(card.locator("[data-role=units-left]")).to_have_count(0)
    audit(phone, "client-services")
    compare.get_by_label("Kunta").select_option(label="Kuhmo")
    compare.get_by_role("button", name="Näytä tarjoukset").click()
    expect(phone.locator("#compare-result")).to_contain_text("Ei tarjouksia näillä valinnoilla.")

    # The provider withdraws the offer: the client no longer finds it.
    till.locator("#offer-table").get_by_role("button", name="Peru tarjous: Kotipalvelu").click()
    expect(till.locator("#offers-message")).to_have_text("Tarjous Kotipalvelu peruttu.")
    expect(till.locator("#item-no-offers")).to_be_visible()
    compare.get_by_label("Kunta").select_option(label="Kajaani")
    compare.get_by_role("button", name="Näytä tarjoukset").click()
    expect(phone.locator("#compare-result")).to_contain_text("Ei tarjouksia näillä valinnoilla.")

    phone.get_by_role("button", name="Svenska").click()
    expect(phone.get_by_role("heading", name="Tjänster", exact=True)).to_be_visible()
    phone.get_by_role("button", name="English").click()
    expect(phone.get_by_role("button", name="Show the offers")).to_be_visible()
    audit(phone, "client-services-en")
