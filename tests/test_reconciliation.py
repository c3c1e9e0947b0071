"""Invoice reconciliation: Finvoice 3.0 and CSV invoices against settlement batches."""

from __future__ import annotations

import asyncio
import csv
import http.client
import io
import json
import re
import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IBAN, World
from wallet.auth.tokens import Role
from wallet.invoices import parse_euros
from wallet.settings import Settings

FIXTURE = (Path(__file__).parent / "fixtures" / "finvoice30-invoice.xml").read_text(encoding="utf-8")
SELLER = "1234567-1"  # the fixture's seller
FIXTURE_AMOUNT_CENTS = 123_450  # its EpiInstructedAmount, 1234,50
MAX_BYTES = 200_000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, reconciliation_max_bytes=MAX_BYTES)


def finvoice(
    reference: str,
    *,
    amount: str = "1234,50",
    seller: str = SELLER,
    number: str = "2026000124",
    scheme: str = "SPY",
    declaration: bool = True,
) -> str:
    """The fixture with this invoice's reference, amount, seller and number."""
    document = FIXTURE
    document = re.sub(
        r'<EpiRemittanceInfoIdentifier IdentificationSchemeName="SPY">[^<]*<',
        f'<EpiRemittanceInfoIdentifier IdentificationSchemeName="{scheme}">{reference}<',
        document,
    )
    document = re.sub(r"(<EpiInstructedAmount [^>]*>)[^<]*<", rf"\g<1>{amount}<", document)
    document = re.sub(r"<SellerPartyIdentifier>[^<]*<", f"<SellerPartyIdentifier>{seller}<", document)
    document = re.sub(r"<InvoiceNumber>[^<]*<", f"<InvoiceNumber>{number}<", document)
    if not declaration:
        document = document.split("?>", 1)[1]
    return document


async def provider_and_batch(world: World, amount: int = FIXTURE_AMOUNT_CENTS) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fixture's seller as a provider, with one open batch of ``amount``."""
    client, _ = await world.funded(500_000)
    body = {"name": "Esimerkki Hoivapalvelut Oy", "business_id": SELLER, "iban": IBAN, "categories": ["home_care"]}
    _, provider = await world.call("POST", "/v1/providers", world.admin, body, expect=201)
    await world.call("POST", f"/v1/providers/{provider['id']}/approve", world.admin, expect=200)
    provider["token"] = world.token(Role.PROVIDER, provider_id=provider["id"])
    status, charge = await world.charge(provider, client, amount)
    assert status == 201, charge
    _, batch = await world.call("POST", "/v1/settlements", provider["token"], {}, expect=201)
    return provider, batch


async def reconcile(
    world: World, document: str | bytes, content_type: str = "application/xml", **headers: str
) -> tuple[int, Any]:
    data = document.encode() if isinstance(document, str) else document
    response = await world.http.post(
        "/v1/reconciliations", data=data, headers=world.auth(world.finance, **{"Content-Type": content_type}, **headers)
    )
    return response.status, await response.json(content_type=None)


async def outcomes(world: World, document: str, content_type: str = "application/xml") -> list[str]:
    status, body = await reconcile(world, document, content_type)
    assert status == 201, body
    return [invoice["outcome"] for invoice in body["invoices"]]


async def status_of(world: World, batch: dict[str, Any]) -> str:
    _, detail = await world.call("GET", f"/v1/settlements/{batch['id']}", world.finance, expect=200)
    return str(detail["status"])


def test_the_fixture_parses_as_it_reads() -> None:
    from wallet.invoices import read_finvoice

    (invoice,) = read_finvoice(FIXTURE.encode(), 10)
    assert invoice.invoice_number == "2026000124" and invoice.business_id == SELLER
    assert invoice.reference == "20260001243" and invoice.scheme is not None and invoice.scheme.value == "SPY"
    assert (invoice.amount, invoice.currency) == (FIXTURE_AMOUNT_CENTS, "EUR")


async def test_a_matching_invoice_makes_the_batch_invoiced(world: World) -> None:
    _, batch = await provider_and_batch(world)
    status, body = await reconcile(world, finvoice(batch["reference"]))
    assert status == 201
    (invoice,) = body["invoices"]
    assert (invoice["outcome"], invoice["settlement_id"], invoice["amount"]) == ("matched", batch["id"], 123_450)
    assert body["summary"]["matched"] == 1
    _, detail = await world.call("GET", f"/v1/settlements/{batch['id']}", world.finance, expect=200)
    assert detail["status"] == "invoiced"
    assert [(e["previous_status"], e["status"], e["actor"].split(":")[0]) for e in detail["events"]] == [
        (None, "open", "provider"),
        ("open", "invoiced", "finance"),
    ]
    assert "2026000124" in detail["events"][1]["note"]
    _, paid = await world.call("POST", f"/v1/settlements/{batch['id']}/paid", world.finance, expect=200)
    assert paid["status"] == "paid"


async def test_the_rf_form_and_printed_groups_match_too(world: World) -> None:
    _, batch = await provider_and_batch(world)
    assert await outcomes(world, finvoice(batch["rf_reference"], scheme="ISO")) == ["matched"]
    _, other = await provider_and_batch(world)
    assert await outcomes(world, finvoice(other["reference_printed"], number="2")) == ["matched"]


async def test_amount_mismatch_leaves_the_batch_open(world: World) -> None:
    _, batch = await provider_and_batch(world)
    status, body = await reconcile(world, finvoice(batch["reference"], amount="1234,05"))
    (invoice,) = body["invoices"]
    assert (status, invoice["outcome"], invoice["amount"], invoice["settlement_amount"]) == (
        201,
        "amount_mismatch",
        123_405,
        123_450,
    )
    assert await status_of(world, batch) == "open"
    # A corrected invoice with the same number then matches: only a match makes a duplicate.
    assert await outcomes(world, finvoice(batch["reference"])) == ["matched"]


async def test_unknown_and_invalid_references(world: World) -> None:
    _, batch = await provider_and_batch(world)
    reference = batch["reference"]
    wrong_check = reference[:-1] + str((int(reference[-1]) + 1) % 10)
    assert await outcomes(world, finvoice("20260001243")) == ["unknown_reference"]  # valid, but nobody's
    assert await outcomes(world, finvoice(wrong_check)) == ["unknown_reference"]
    assert await outcomes(world, finvoice("RF00" + reference, scheme="ISO")) == ["unknown_reference"]
    assert await outcomes(world, finvoice("")) == ["unknown_reference"]
    assert await status_of(world, batch) == "open"


async def test_another_seller_is_a_business_id_mismatch(world: World) -> None:
    _, batch = await provider_and_batch(world)
    assert await outcomes(world, finvoice(batch["reference"], seller="2077474-0")) == ["business_id_mismatch"]
    assert await outcomes(world, finvoice(batch["reference"], seller="")) == ["business_id_mismatch"]
    assert await outcomes(world, finvoice(batch["reference"], seller="FI12345671")) == ["matched"]


async def test_the_same_invoice_twice_is_a_duplicate(world: World) -> None:
    _, batch = await provider_and_batch(world)
    _, other = await provider_and_batch(world)
    assert await outcomes(world, finvoice(batch["reference"])) == ["matched"]
    assert await outcomes(world, finvoice(batch["reference"])) == ["duplicate"]
    # Another invoice for an invoiced batch, and the same invoice number for another batch.
    assert await outcomes(world, finvoice(batch["reference"], number="999")) == ["duplicate"]
    assert await outcomes(world, finvoice(other["reference"])) == ["duplicate"]
    assert await status_of(world, other) == "open"
    # A batch paid without an invoice is never invoiced (nor paid) again.
    await world.call("POST", f"/v1/settlements/{other['id']}/paid", world.finance, expect=200)
    assert await outcomes(world, finvoice(other["reference"], number="1000")) == ["duplicate"]


async def test_one_document_with_several_invoices(world: World) -> None:
    _, batch = await provider_and_batch(world)
    messages = [
        finvoice(batch["reference"], number="1", declaration=False),
        finvoice(batch["reference"], number="2", declaration=False),
        finvoice("20260001243", number="3", declaration=False),
        finvoice(batch["reference"], number="4", seller="2077474-0", declaration=False),
    ]
    document = '<?xml version="1.0" encoding="UTF-8"?>\n<Invoices>' + "".join(messages) + "</Invoices>"
    assert await outcomes(world, document) == ["matched", "duplicate", "unknown_reference", "business_id_mismatch"]


async def test_a_document_larger_than_a_json_body_is_read(world: World) -> None:
    _, batch = await provider_and_batch(world)
    messages = [finvoice(batch["reference"], number=str(n), declaration=False) for n in range(40)]
    document = "<Invoices>" + "".join(messages) + "</Invoices>"
    assert world.service.settings.max_body_bytes < len(document.encode()) < MAX_BYTES
    assert await outcomes(world, document) == ["matched"] + ["duplicate"] * 39


async def test_csv_of_received_invoices(world: World) -> None:
    _, batch = await provider_and_batch(world)
    _, other = await provider_and_batch(world, amount=5_000)
    _, third = await provider_and_batch(world, amount=7_700)
    document = "\ufeff" + "\r\n".join(
        [
            "Reference;Amount;Business_ID;Invoice_Number",
            f"{batch['reference_printed']};1234,50;{SELLER};A-1",
            f"{other['rf_reference']};49,99;{SELLER};A-2",
            f"{third['reference']};77;2077474-0;A-3",
            "1234561;10,00;1234567-1;A-4",
            f"{batch['reference']};1234,50;{SELLER};A-5",
            "",
        ]
    )
    assert await outcomes(world, document, "text/csv") == [
        "matched",
        "amount_mismatch",
        "business_id_mismatch",
        "unknown_reference",
        "duplicate",
    ]
    comma = f"reference,amount,business_id,invoice_number\n{third['reference']},77.00,{SELLER},B-1\n"
    assert await outcomes(world, comma, "text/csv") == ["matched"]
    status, problem = await reconcile(world, "reference;amount\n1234561;1,00\n", "text/csv")
    assert (status, problem["code"]) == (422, "unreadable_document")


async def test_racing_reconciliations_match_an_invoice_once(world: World) -> None:
    _, batch = await provider_and_batch(world)
    results = await asyncio.gather(*(reconcile(world, finvoice(batch["reference"], number=str(n))) for n in range(6)))
    found = sorted(body["invoices"][0]["outcome"] for _, body in results)
    assert found == ["duplicate"] * 5 + ["matched"]


async def test_idempotency_key_replays_the_first_answer(world: World) -> None:
    _, batch = await provider_and_batch(world)
    document = finvoice(batch["reference"])
    first = await reconcile(world, document, **{"Idempotency-Key": "r-1"})
    again = await reconcile(world, document, **{"Idempotency-Key": "r-1"})
    assert first == again and first[1]["invoices"][0]["outcome"] == "matched"
    status, problem = await reconcile(world, finvoice(batch["reference"], number="x"), **{"Idempotency-Key": "r-1"})
    assert (status, problem["code"]) == (422, "idempotency_key_reuse")


XXE = """<?xml version="1.0"?>
<!DOCTYPE Finvoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Finvoice Version="3.0"><InvoiceDetails><InvoiceNumber>&xxe;</InvoiceNumber></InvoiceDetails></Finvoice>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Finvoice Version="3.0"><InvoiceDetails><InvoiceNumber>&lol9;</InvoiceNumber></InvoiceDetails></Finvoice>"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE Finvoice SYSTEM "http://127.0.0.1:1/Finvoice.dtd">
<Finvoice Version="3.0"/>"""


@pytest.mark.parametrize("document", [XXE, BILLION_LAUGHS, EXTERNAL_DTD], ids=["xxe", "billion-laughs", "external-dtd"])
async def test_unsafe_xml_is_refused(world: World, document: str) -> None:
    status, problem = await reconcile(world, document)
    assert (status, problem["code"]) == (400, "unsafe_document")


async def test_what_is_not_an_invoice_document_is_refused(world: World) -> None:
    client, provider = await world.funded()
    status, problem = await reconcile(world, "<Finvoice><unclosed></Finvoice>")
    assert (status, problem["code"]) == (422, "unreadable_document")
    status, problem = await reconcile(world, "<Invoices><Other/></Invoices>")
    assert (status, problem["code"]) == (422, "unreadable_document")
    status, problem = await reconcile(world, "{}", "application/json")
    assert (status, problem["code"]) == (415, "unsupported_media_type")
    status, problem = await reconcile(world, "<Finvoice>" + " " * MAX_BYTES + "</Finvoice>")
    assert (status, problem["code"]) == (413, "payload_too_large")
    for token in (provider["token"], world.admin, client["token"]):
        response = await world.http.post(
            "/v1/reconciliations", data=FIXTURE, headers=world.auth(token, **{"Content-Type": "application/xml"})
        )
        assert response.status == 403


@pytest.mark.parametrize(
    ("text", "cents"),
    [("1234,50", 123_450), ("1234.5", 123_450), ("0,01", 1), ("-12,00", -1_200), ("7", 700), ("1 234,50", 123_450)],
)
def test_euro_amounts_are_read_exactly(text: str, cents: int) -> None:
    assert parse_euros(text) == cents


@pytest.mark.parametrize("text", ["", "12,345", "1e3", "12,5€", "abc", "1.000,00", "99999999999"])
def test_what_is_not_an_amount_is_not_read(text: str) -> None:
    assert parse_euros(text) is None


# From outside: the real ``wallet serve`` and CLI, the loop this issue is done by.


def raw_request(
    port: int, method: str, path: str, token: str, body: bytes | None = None, content_type: str | None = None
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.slow
def test_settle_export_and_reconcile_against_the_real_server(tmp_path: Path) -> None:
    from tests.processes import BUSINESS_ID, Server, WalletFiles, charge_body, seed
    from wallet.exports import euros
    from wallet.ledger.reference import is_valid_finnish_reference

    files = WalletFiles(tmp_path)
    server = Server(files).start()
    try:
        seeded = seed(files, server, 200_000)
        provider = server.api(seeded.provider_token)
        first = provider.call("POST", "/v1/charges", charge_body(seeded, 12_345), expect=201, key="c-1")
        provider.call("POST", "/v1/charges", charge_body(seeded, 4_000), expect=201, key="c-2")
        provider.call("POST", f"/v1/charges/{first['id']}/refunds", {"amount": 345}, expect=201, key="r-1")
        batch = provider.call("POST", "/v1/settlements", {}, expect=201, key="s-1")
        assert (batch["amount"], batch["count"]) == (16_000, 3) and is_valid_finnish_reference(batch["reference"])

        finance = files.token("finance")
        status, body = raw_request(server.port, "GET", "/v1/exports/transactions?format=csv-fi", finance)
        assert status == 200, body
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
        moved: dict[str, int] = {}
        for row in rows:
            moved[row["to_account"]] = moved.get(row["to_account"], 0) + int(row["amount"])
            moved[row["from_account"]] = moved.get(row["from_account"], 0) - int(row["amount"])
        with closing(sqlite3.connect(f"file:{files.db}?mode=ro", uri=True)) as connection:
            balances = dict(connection.execute("SELECT id, balance FROM accounts WHERE balance <> 0").fetchall())
        assert {account: amount for account, amount in moved.items() if amount} == balances
        assert balances[f"settled:{seeded.provider_id}"] == 16_000
        exported = files.cli("export", "transactions", "--format", "csv-fi", "--output", str(tmp_path / "t.csv"))
        assert exported.returncode == 0, exported.stderr
        assert (tmp_path / "t.csv").read_bytes() == body

        invoice = finvoice(batch["reference"], amount=euros(batch["amount"]), seller=BUSINESS_ID)
        status, body = raw_request(
            server.port, "POST", "/v1/reconciliations", finance, invoice.encode(), "application/xml"
        )
        assert status == 201, body
        assert [item["outcome"] for item in json.loads(body)["invoices"]] == ["matched"]
        assert server.api(finance).call("GET", f"/v1/settlements/{batch['id']}", expect=200)["status"] == "invoiced"
        assert server.api(finance).call("POST", f"/v1/settlements/{batch['id']}/paid", expect=200)["status"] == "paid"
    finally:
        server.stop()
    checked = files.check()
    assert checked.returncode == 0, checked.stdout + checked.stderr
