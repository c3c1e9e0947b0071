"""Payment batches: the pain.001.001.09 file that pays settlements, and the bank's camt.054 back."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import sepaxml
import xmlschema

from tests.camt import Entry, notification
from tests.conftest import World
from tests.test_bank_statements import upload
from tests.test_reconciliation import finvoice, outcomes, provider_and_batch, status_of
from wallet.settings import Settings, SettingsError

SCHEMA = xmlschema.XMLSchema(Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd")
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
PAYER = {"payer_name": "Keski-Suomen hyvinvointialue", "payer_iban": "FI4819503000000010", "payer_bic": "NDEAFIHH"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, **PAYER)


async def invoiced(world: World, amount: int) -> dict[str, Any]:
    _, batch = await provider_and_batch(world, amount=amount)
    euros = f"{amount // 100},{amount % 100:02d}"
    assert await outcomes(world, finvoice(batch["reference"], amount=euros, number=batch["id"][-12:])) == ["matched"]
    return batch


async def payment_file(world: World, batch_id: str) -> bytes:
    response = await world.http.get(f"/v1/payment-batches/{batch_id}/file", headers=world.auth(world.finance))
    assert response.status == 200 and response.content_type == "application/xml"
    document = await response.read()
    SCHEMA.validate(document.decode())  # raises with the first breach of the published schema
    return document


async def test_a_payment_file_validates_and_a_camt054_from_it_pays_exactly_those(world: World) -> None:
    settlements = [await invoiced(world, amount) for amount in (123_450, 60_000)]
    left_out = await invoiced(world, 7_000)
    _, open_one = await provider_and_batch(world, amount=1_000)  # not invoiced: not in the default batch
    status, made = await world.call(
        "POST", "/v1/payment-batches", world.finance, {"settlement_ids": [s["id"] for s in settlements]}
    )
    assert status == 201, made
    assert (made["count"], made["amount"], made["status"]) == (2, 183_450, "created")
    document = await payment_file(world, made["id"])
    root = ElementTree.fromstring(document)
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "1834.50"
    assert root.findtext("p:CstmrCdtTrfInitn/p:PmtInf/p:CtrlSum", namespaces=NS) == "1834.50"
    assert root.findtext("p:CstmrCdtTrfInitn/p:PmtInf/p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == PAYER["payer_iban"]
    transfers = root.findall("p:CstmrCdtTrfInitn/p:PmtInf/p:CdtTrfTxInf", NS)
    found = [
        (
            transfer.findtext("p:RmtInf/p:Strd/p:CdtrRefInf/p:Ref", namespaces=NS),
            Decimal(transfer.findtext("p:Amt/p:InstdAmt", namespaces=NS) or ""),
            transfer.findtext("p:PmtId/p:EndToEndId", namespaces=NS),
        )
        for transfer in transfers
    ]
    assert found == [(s["reference"], Decimal(s["amount"]) / 100, s["reference"]) for s in settlements]
    # Already in a batch: not again.
    status, problem = await world.call(
        "POST", "/v1/payment-batches", world.finance, {"settlement_ids": [settlements[0]["id"]]}
    )
    assert (status, problem["code"]) == (409, "conflict")

    # The bank's debit notification, built from the file: exactly those are paid, again nothing.
    entries = [
        Entry(int(amount * 100), reference=reference, end_to_end_id=e2e, entry_reference=f"B-{n}")
        for n, (reference, amount, e2e) in enumerate(found)
    ]
    status, body = await upload(world, notification(entries))
    assert [e["outcome"] for e in body["entries"]] == ["paid", "paid"]
    assert [await status_of(world, s) for s in (*settlements, left_out, open_one)] == [
        "paid",
        "paid",
        "invoiced",
        "open",
    ]
    assert (await upload(world, notification(entries)))[0] == 409
    # Paid: the batch cannot be cancelled any more.
    status, problem = await world.call("POST", f"/v1/payment-batches/{made['id']}/cancel", world.finance)
    assert (status, problem["code"]) == (409, "conflict")


async def test_a_file_about_another_account_pays_nothing(world: World) -> None:
    batch = await invoiced(world, 5_000)
    entry = Entry(5_000, reference=batch["reference"])
    status, problem = await upload(world, notification([entry], account="FI2112345600000785"))
    assert (status, problem["code"], problem["accounts"]) == (409, "conflict", ["FI2112345600000785"])
    assert await status_of(world, batch) == "invoiced"
    assert world.sql("SELECT COUNT(*) FROM bank_statements") == [(0,)]
    status, body = await upload(world, notification([entry]))
    assert (status, body["entries"][0]["outcome"]) == (201, "paid")


async def test_the_default_batch_cancel_and_a_new_batch(world: World) -> None:
    first = await invoiced(world, 5_000)
    second = await invoiced(world, 6_000)
    status, made = await world.call("POST", "/v1/payment-batches", world.finance, key="pb-1")
    assert status == 201 and [s["settlement_id"] for s in made["settlements"]] == [first["id"], second["id"]]
    assert (await world.call("POST", "/v1/payment-batches", world.finance, key="pb-1"))[1] == made  # replayed
    status, problem = await world.call("POST", "/v1/payment-batches", world.finance)
    assert (status, problem["code"]) == (409, "conflict")  # nothing left to pay
    status, cancelled = await world.call("POST", f"/v1/payment-batches/{made['id']}/cancel", world.finance)
    assert (status, cancelled["status"]) == (200, "cancelled")
    status, again = await world.call("POST", "/v1/payment-batches", world.finance)
    assert status == 201 and again["count"] == 2 and again["id"] != made["id"]
    await payment_file(world, again["id"])
    status, problem = await world.call("POST", f"/v1/payment-batches/{made['id']}/cancel", world.finance)
    assert (status, problem["code"]) == (409, "conflict")


async def test_bad_requests_change_nothing(world: World) -> None:
    batch = await invoiced(world, 5_000)
    for body in ({"settlement_ids": []}, {"settlement_ids": [batch["id"], batch["id"]]}, {"settlement_ids": "x"}):
        status, problem = await world.call("POST", "/v1/payment-batches", world.finance, body)
        assert status == 422, (body, problem)
    status, problem = await world.call("POST", "/v1/payment-batches", world.finance, {"settlement_ids": ["se_nope"]})
    assert status == 404
    provider = (await provider_and_batch(world, amount=100))[0]
    for token in (world.admin, provider["token"]):
        assert (await world.call("POST", "/v1/payment-batches", token))[0] == 403
    assert (await world.call("GET", "/v1/payment-batches/pb_nope/file", world.finance))[0] == 404
    assert world.sql("SELECT COUNT(*) FROM payment_batches") == [(0,)]


async def test_without_the_payer_a_batch_is_refused(world: World) -> None:
    await invoiced(world, 5_000)
    world.service.settings = replace(world.service.settings, payer_name="", payer_iban="", payer_bic="")
    status, problem = await world.call("POST", "/v1/payment-batches", world.finance)
    assert (status, problem["code"]) == (409, "conflict") and "WALLET_PAYER_IBAN" in problem["detail"]


@pytest.mark.parametrize(
    "values",
    [
        {"payer_name": "X"},
        {**PAYER, "payer_iban": "FI4819503000000011"},
        {**PAYER, "payer_bic": "nordea"},
        {**PAYER, "payer_name": "x" * 71},
    ],
)
def test_the_payer_settings_are_checked_at_start(values: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match=re.compile("WALLET_PAYER")):
        Settings.from_env({}, **values)


async def test_a_returned_transfer_leaves_its_batch_and_a_new_batch_pays_it(world: World) -> None:
    settlement = await invoiced(world, 4_200)
    _, first = await world.call("POST", "/v1/payment-batches", world.finance, {"settlement_ids": [settlement["id"]]})
    paid = Entry(4_200, reference=settlement["reference"], end_to_end_id=settlement["reference"], entry_reference="P")
    assert (await upload(world, notification([paid], "N-1")))[1]["entries"][0]["outcome"] == "paid"
    returned = Entry(4_200, reference=settlement["reference"], entry_reference="R", direction="CRDT")
    assert (await upload(world, notification([returned], "N-2")))[1]["entries"][0]["outcome"] == "returned"
    _, page = await world.call("GET", "/v1/settlements?status=invoiced", world.finance, expect=200)
    assert [(s["id"], s["payment_batch_id"]) for s in page["data"]] == [(settlement["id"], None)]
    # The first batch keeps what it sent; the settlement is free for a new one, which pays it again.
    assert (await world.call("GET", f"/v1/payment-batches/{first['id']}", world.finance, expect=200))[1]["count"] == 1
    status, second = await world.call("POST", "/v1/payment-batches", world.finance, {})
    assert (status, second["count"], second["amount"]) == (201, 1, 4_200), second
    assert settlement["reference"] in (await payment_file(world, second["id"])).decode()
    again = Entry(4_200, reference=settlement["reference"], end_to_end_id=settlement["reference"], entry_reference="Q")
    assert (await upload(world, notification([again], "N-3")))[1]["entries"][0]["outcome"] == "paid"
    assert await status_of(world, settlement) == "paid"  # and the world fixture runs wallet check
