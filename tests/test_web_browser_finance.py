"""Finance's payments on /admin in headless Chromium against the real ``wallet serve``: the
settlements by status with their age, a payment batch made from the page and its pain.001 file
downloaded (valid against the published schema, carrying each settlement), a batch cancelled, and
the bank's camt.054 uploaded: exactly the settlements it pays become paid, and the same file
again changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="install the test extra: pip install -e '.[test]'")
import sepaxml
import xmlschema
from playwright.sync_api import Browser, Page, expect

from tests.browser import TOKEN_FORM, admin_sign_in, checked_page, chromium, served
from tests.camt import PAYER_IBAN, Entry, notification
from tests.processes import IBAN, NATIONAL_ID, PHONE_AS_TYPED, Server, WalletFiles, seed
from tests.test_finvoice_channel import CHANNEL_FILE, INVOICES, SENDER
from tests.test_reconciliation import SELLER
from tests.test_web_browser import PHONE_VIEWPORT, audit, euros

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SCHEMA = xmlschema.XMLSchema(Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd")
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
PAYER = {
    "WALLET_PAYER_NAME": "Kainuun hyvinvointialue",
    "WALLET_PAYER_IBAN": PAYER_IBAN,
    "WALLET_PAYER_BIC": "NDEAFIHH",
}
AMOUNTS = (*(to_pay for _, to_pay, _ in INVOICES), 450)  # the channel file's three invoices, and one more


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> WalletFiles:
    return WalletFiles(tmp_path_factory.mktemp("web-finance"), extra_env={**PAYER, **TOKEN_FORM})


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
def settlements(files: WalletFiles, server: Server) -> list[dict[str, Any]]:
    """Four settlements of the channel file's seller, oldest first: the first three are the ones its
    invoices name (references 1, 2, 3; amounts to pay as in the file), the last stays open."""
    seeded = seed(files, server, 300_000)
    admin = server.api(files.token("admin"))
    body = {"name": "Esimerkki Hoivapalvelut Oy", "business_id": SELLER, "iban": IBAN, "categories": ["home_care"]}
    seller = admin.call("POST", "/v1/providers", body, expect=201)
    admin.call("POST", f"/v1/providers/{seller['id']}/approve", expect=200)
    provider = server.api(files.token("provider", provider_id=seller["id"]))
    made = []
    for number, amount in enumerate(AMOUNTS):
        charge = {
            "phone": PHONE_AS_TYPED,
            "amount": amount,
            "category": seeded.category,
            "identity": {"method": "national_id", "national_id": NATIONAL_ID},
        }
        provider.call("POST", "/v1/charges", charge, key=f"finance-charge-{number}", expect=201)
        made.append(provider.call("POST", "/v1/settlements", {}, key=f"finance-settle-{number}", expect=201))
    assert [int(settlement["reference"][2:-1]) for settlement in made] == [1, 2, 3, 4]
    return made


def listed(server: Server, files: WalletFiles) -> dict[str, dict[str, Any]]:
    page = server.api(files.token("finance")).call("GET", "/v1/settlements?limit=200", expect=200)
    return {settlement["id"]: settlement for settlement in page["data"]}


def status_row(page: Page, name: str) -> Any:
    return page.locator("#payment-status-table tbody tr", has=page.get_by_role("rowheader", name=name, exact=True))


def expect_counts(page: Page, counts: dict[str, tuple[int, int]]) -> None:
    """The by-status table: each status's count and total."""
    for name, (count, cents) in counts.items():
        row = status_row(page, name)
        expect(row.locator("[data-role=count]")).to_have_text(str(count))
        expect(row.locator("[data-role=sum]")).to_have_text(euros(cents))


def download_batch_file(page: Page, message_id: str, tmp_path: Path) -> ElementTree.Element:
    with page.expect_download() as download:
        page.get_by_role("button", name=f"Lataa maksutiedosto {message_id}").click()
    assert download.value.suggested_filename == f"{message_id}.xml"
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    document = saved.read_bytes()
    SCHEMA.validate(document.decode())  # raises with the first breach of the published schema
    root = ElementTree.fromstring(document)
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId", namespaces=NS) == message_id
    return root


def transfers(root: ElementTree.Element) -> list[tuple[str, int]]:
    found = []
    for transfer in root.findall("p:CstmrCdtTrfInitn/p:PmtInf/p:CdtTrfTxInf", NS):
        reference = transfer.findtext("p:RmtInf/p:Strd/p:CdtrRefInf/p:Ref", namespaces=NS) or ""
        amount = Decimal(transfer.findtext("p:Amt/p:InstdAmt", namespaces=NS) or "") * 100
        found.append((reference, int(amount)))
    return found


def test_finance_pays_settlements_by_a_payment_file_and_reads_the_bank_statement(
    page: Page, settlements: list[dict[str, Any]], files: WalletFiles, server: Server, tmp_path: Path
) -> None:
    first, second, third, fourth = settlements
    admin_sign_in(page, admin=files.token("admin"), finance=files.token("finance"))
    section = page.locator("#payments")
    expect(section.get_by_role("heading", name="Maksut ja pankkitiedostot")).to_be_visible()
    expect_counts(page, {"Avoin": (4, sum(AMOUNTS)), "Laskutettu": (0, 0), "Maksuerässä": (0, 0), "Maksettu": (0, 0)})
    expect(status_row(page, "Avoin")).to_contain_text("0 pv")  # made today: the oldest is 0 days old

    # The providers' invoices arrive as the bank's channel delivers them: three framed invoices in
    # ISO-8859-15, one partly prepaid; each matched, with its sender from the frame.
    channel = tmp_path / "finvoice-channel.xml"
    channel.write_bytes(CHANNEL_FILE)
    page.get_by_label("Laskutiedosto").set_input_files(str(channel))
    page.get_by_role("button", name="Täsmäytä").click()
    invoices = page.locator("#reconcile-table tbody tr")
    expect(invoices).to_have_count(3)
    assert [row.get_attribute("data-outcome") for row in invoices.all()] == ["matched"] * 3
    for row, (number, to_pay, _) in zip(invoices.all(), INVOICES, strict=True):
        expect(row).to_contain_text(number)
        expect(row).to_contain_text(euros(to_pay))
        expect(row.locator("[data-role=sender]")).to_have_text(f" (lähettäjä {SENDER})")
    expect(invoices.nth(1).locator("[data-role=total]")).to_have_text(f" (laskun loppusumma {euros(INVOICES[1][2])})")
    invoiced_sum = sum(AMOUNTS[:3])
    expect_counts(page, {"Avoin": (1, AMOUNTS[3]), "Laskutettu": (3, invoiced_sum)})  # refreshed by itself

    # A batch of the two picked.
    section.get_by_label(f"Valitse maksuerään: {first['reference_printed']}").check()
    section.get_by_label(f"Valitse maksuerään: {second['reference_printed']}").check()
    page.get_by_role("button", name="Luo maksuerä").click()
    message = page.locator("#payment-message")
    expect(message).to_contain_text(f"2 maksua, yhteensä {euros(AMOUNTS[0] + AMOUNTS[1])}")
    expect_counts(page, {"Laskutettu": (1, AMOUNTS[2]), "Maksuerässä": (2, AMOUNTS[0] + AMOUNTS[1])})
    now = listed(server, files)
    batch_id = now[first["id"]]["payment_batch_id"]
    assert (
        batch_id and now[second["id"]]["payment_batch_id"] == batch_id and now[third["id"]]["payment_batch_id"] is None
    )
    batch = server.api(files.token("finance")).call("GET", f"/v1/payment-batches/{batch_id}", expect=200)
    root = download_batch_file(page, batch["message_id"], tmp_path)
    assert sorted(transfers(root)) == [(first["reference"], AMOUNTS[0]), (second["reference"], AMOUNTS[1])]
    assert (
        root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS)
        == f"{(AMOUNTS[0] + AMOUNTS[1]) / 100:.2f}"
    )
    expect(message).to_have_text(f"Maksutiedosto {batch['message_id']}.xml ladattu.")

    # Cancelled: free again, and then every invoiced one goes in the default batch.
    page.get_by_role("button", name=f"Peru maksuerä {batch['message_id']}").click()
    expect(message).to_contain_text(f"Maksuerä {batch['message_id']} peruttu")
    expect_counts(page, {"Laskutettu": (3, invoiced_sum), "Maksuerässä": (0, 0)})
    assert (
        server.api(files.token("finance")).call("GET", f"/v1/payment-batches/{batch_id}", expect=200)["status"]
        == "cancelled"
    )
    page.get_by_role("button", name="Luo maksuerä").click()
    expect(message).to_contain_text(f"3 maksua, yhteensä {euros(invoiced_sum)}")
    expect_counts(page, {"Avoin": (1, AMOUNTS[3]), "Laskutettu": (0, 0), "Maksuerässä": (3, invoiced_sum)})
    again = server.api(files.token("finance")).call(
        "GET", f"/v1/payment-batches/{listed(server, files)[first['id']]['payment_batch_id']}", expect=200
    )
    assert again["id"] != batch_id
    paid_file = download_batch_file(page, again["message_id"], tmp_path)
    paying = transfers(paid_file)
    assert sorted(paying) == sorted((s["reference"], s["amount"]) for s in settlements[:3])
    audit(page, "admin-payments")

    # The bank's debit notification pays two of them; an entry of another reference is reported.
    entries = [
        Entry(amount, reference=reference, end_to_end_id=reference, entry_reference=f"WEB-{n}")
        for n, (reference, amount) in enumerate(paying[:2])
    ]
    statement = tmp_path / "camt054.xml"
    statement.write_bytes(
        notification([*entries, Entry(777, reference="1234561", entry_reference="WEB-X")], "NTF-WEB-1")
    )
    page.get_by_label("Tiliotetiedosto (camt.054 tai camt.053)").set_input_files(str(statement))
    page.get_by_role("button", name="Lue tiliote").click()
    outcome_rows = page.locator("#statement-table tbody tr")
    expect(outcome_rows).to_have_count(3)
    assert [row.get_attribute("data-outcome") for row in outcome_rows.all()] == ["paid", "paid", "unknown_reference"]
    expect(outcome_rows.nth(0)).to_contain_text("Maksettu")
    expect(outcome_rows.nth(2)).to_contain_text("Tuntematon viite")
    paid_references = {reference for reference, _ in paying[:2]}
    paid_sum = sum(amount for _, amount in paying[:2])
    expect_counts(page, {"Maksuerässä": (1, invoiced_sum - paid_sum), "Maksettu": (2, paid_sum)})
    statuses = {s["reference"]: s["status"] for s in listed(server, files).values()}
    assert {reference for reference, status in statuses.items() if status == "paid"} == paid_references
    page.get_by_label("Näytä tilitykset").select_option(label="Maksettu")
    expect(page.locator("#payment-settlements tbody tr")).to_have_count(2)

    # The same file again: said so, and nothing changes.
    page.get_by_role("button", name="Lue tiliote").click()
    expect(page.locator("#statement-outcome")).to_have_text("Tämä tiliote on jo luettu; mitään ei muutettu.")
    assert {s["reference"]: s["status"] for s in listed(server, files).values()} == statuses

    # In Swedish and English; at phone width, each row a card.
    page.get_by_role("button", name="Svenska").click()
    expect(page.get_by_role("heading", name="Betalningar och bankfiler")).to_be_visible()
    expect(status_row(page, "I betalningsomgång").locator("[data-role=count]")).to_have_text("1")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("button", name=f"Download the payment file {again['message_id']}")).to_be_visible()
    page.set_viewport_size(PHONE_VIEWPORT)
    audit(page, "admin-payments-en")
    assert fourth["id"] in listed(server, files)
