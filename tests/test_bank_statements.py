"""Bank statements (camt.054 notifications, camt.053 statements) mark settlements paid."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.camt import Entry, notification
from tests.conftest import World
from tests.test_reconciliation import BILLION_LAUGHS, XXE, provider_and_batch, status_of
from wallet.settings import Settings

MAX_BYTES = 100_000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, bank_statement_max_bytes=MAX_BYTES)


async def upload(world: World, document: bytes, **headers: str) -> tuple[int, Any]:
    response = await world.http.post(
        "/v1/bank-statements",
        data=document,
        headers=world.auth(world.finance, **{"Content-Type": "application/xml"}, **headers),
    )
    return response.status, await response.json(content_type=None)


async def settlement(world: World, batch: dict[str, Any]) -> dict[str, Any]:
    return (await world.call("GET", f"/v1/settlements/{batch['id']}", world.finance, expect=200))[1]


async def test_a_notification_marks_exactly_its_settlements_paid_and_again_nothing(world: World) -> None:
    batches = [(await provider_and_batch(world, amount=amount))[1] for amount in (12_345, 60_000, 7_000)]
    paying = [
        Entry(batches[0]["amount"], reference=batches[0]["reference"], entry_reference="E-1"),
        Entry(batches[1]["amount"], reference=batches[1]["rf_reference"], entry_reference="E-2"),
    ]
    document = notification(paying)
    status, body = await upload(world, document)
    assert status == 201, body
    assert [(e["outcome"], e["settlement_id"], e["booking_date"]) for e in body["entries"]] == [
        ("paid", batches[0]["id"], "2027-01-18"),
        ("paid", batches[1]["id"], "2027-01-18"),
    ]
    assert (body["kind"], body["document_ids"], body["summary"]["paid"]) == ("camt.054", ["NTF-20270118-1"], 2)
    assert [await status_of(world, batch) for batch in batches] == ["paid", "paid", "open"]
    detail = await settlement(world, batches[0])
    assert detail["events"][-1]["status"] == "paid" and "2027-01-18" in detail["events"][-1]["note"]

    # The same file again: refused whole, nothing changed.
    status, problem = await upload(world, document)
    assert (status, problem["code"], problem["statement_id"]) == (409, "conflict", body["id"])
    # The day's statement repeating the same entries: each reported, none applied twice.
    statement = notification([*paying, Entry(999, reference="1234561", entry_reference="E-3")], "STM-1", "camt.053")
    status, again = await upload(world, statement)
    assert status == 201, again
    assert [e["outcome"] for e in again["entries"]] == ["already_applied", "already_applied", "unknown_reference"]
    assert len(world.sql("SELECT 1 FROM settlement_events WHERE status = 'paid'")) == 2


async def test_wrong_amounts_unknown_references_and_pending_entries_change_nothing(world: World) -> None:
    _, batch = await provider_and_batch(world, amount=10_000)
    wrong_check = batch["reference"][:-1] + str((int(batch["reference"][-1]) + 1) % 10)
    status, body = await upload(
        world,
        notification(
            [
                Entry(9_999, reference=batch["reference"], entry_reference="W-1"),
                Entry(10_000, reference=wrong_check, entry_reference="W-2"),
                Entry(10_000, entry_reference="W-3"),
                Entry(10_000, reference=batch["reference"], entry_reference="W-4", status="PDNG"),
            ]
        ),
    )
    assert status == 201, body
    assert [(e["outcome"], e.get("settlement_amount")) for e in body["entries"]] == [
        ("amount_mismatch", 10_000),
        ("unknown_reference", None),
        ("unknown_reference", None),
        ("not_booked", None),
    ]
    assert await status_of(world, batch) == "open"


async def test_the_end_to_end_id_names_the_settlement(world: World) -> None:
    _, batch = await provider_and_batch(world, amount=5_000)
    status, body = await upload(world, notification([Entry(5_000, end_to_end_id=batch["id"], entry_reference="X")]))
    assert (status, body["entries"][0]["outcome"]) == (201, "paid")
    assert await status_of(world, batch) == "paid"


async def test_a_returned_payment_reopens_the_settlement_and_it_can_be_paid_again(world: World) -> None:
    _, batch = await provider_and_batch(world, amount=4_200)
    paid = Entry(4_200, reference=batch["reference"], entry_reference="P-1")
    assert (await upload(world, notification([paid], "N-1")))[1]["entries"][0]["outcome"] == "paid"
    returned = Entry(4_200, reference=batch["reference"], entry_reference="R-1", direction="CRDT")
    status, body = await upload(world, notification([returned], "N-2"))
    assert (status, body["entries"][0]["outcome"]) == (201, "returned")
    assert await status_of(world, batch) == "open"  # where it was before it was paid
    # The return again (in the day's statement) re-opens nothing more; a new payment pays it.
    status, body = await upload(world, notification([returned], "S-1", "camt.053"))
    assert body["entries"][0]["outcome"] == "already_applied"
    repaid = Entry(4_200, reference=batch["rf_reference"], entry_reference="P-2", booking_date="2027-01-25")
    assert (await upload(world, notification([repaid], "N-3")))[1]["entries"][0]["outcome"] == "paid"
    assert await status_of(world, batch) == "paid"
    # A credit naming a batch that is not paid returns nothing.
    _, other = await provider_and_batch(world, amount=4_200)
    stray = Entry(4_200, reference=other["reference"], entry_reference="R-2", direction="CRDT")
    assert (await upload(world, notification([stray], "N-4")))[1]["entries"][0]["outcome"] == "not_paid"
    assert await status_of(world, other) == "open"


async def test_an_invoiced_settlement_returns_to_invoiced(world: World) -> None:
    from tests.test_reconciliation import finvoice, outcomes

    _, batch = await provider_and_batch(world)
    assert await outcomes(world, finvoice(batch["reference"])) == ["matched"]
    await upload(world, notification([Entry(batch["amount"], reference=batch["reference"], entry_reference="I-1")]))
    assert await status_of(world, batch) == "paid"
    credit = Entry(batch["amount"], reference=batch["reference"], entry_reference="I-2", direction="CRDT")
    await upload(world, notification([credit], "N-2"))
    assert await status_of(world, batch) == "invoiced"


async def test_racing_uploads_pay_a_settlement_once(world: World) -> None:
    import asyncio

    _, batch = await provider_and_batch(world, amount=3_000)
    files = [
        notification([Entry(3_000, reference=batch["reference"], entry_reference=f"race-{n}")], f"N-{n}")
        for n in range(5)
    ]
    results = await asyncio.gather(*(upload(world, document) for document in files))
    assert sorted(body["entries"][0]["outcome"] for _, body in results) == ["already_paid"] * 4 + ["paid"]


async def test_idempotency_key_replays_the_first_answer(world: World) -> None:
    _, batch = await provider_and_batch(world, amount=3_000)
    document = notification([Entry(3_000, reference=batch["reference"])])
    first = await upload(world, document, **{"Idempotency-Key": "bs-1"})
    again = await upload(world, document, **{"Idempotency-Key": "bs-1"})
    assert first == again and first[1]["entries"][0]["outcome"] == "paid"


EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Document SYSTEM "http://127.0.0.1:1/camt.dtd">
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"/>"""


@pytest.mark.parametrize(
    "document", [XXE.encode(), BILLION_LAUGHS.encode(), EXTERNAL_DTD], ids=["xxe", "laughs", "dtd"]
)
async def test_hostile_xml_is_refused_with_nothing_changed(world: World, document: bytes) -> None:
    _, batch = await provider_and_batch(world, amount=3_000)
    status, problem = await upload(world, document)
    assert (status, problem["code"]) == (400, "unsafe_document")
    # An entity smuggled into an otherwise good notification: refused too.
    good = notification([Entry(3_000, reference=batch["reference"])])
    smuggled = good.replace(b"<Document", b'<!DOCTYPE Document [<!ENTITY r "1">]>\n<Document', 1)
    status, problem = await upload(world, smuggled)
    assert (status, problem["code"]) == (400, "unsafe_document")
    assert await status_of(world, batch) == "open"
    assert world.sql("SELECT COUNT(*) FROM bank_statements") == [(0,)]


async def test_what_is_not_a_bank_statement_is_refused(world: World) -> None:
    client, provider = await world.funded()
    for document in (b"<Document/>", b"<Finvoice/>", b"<Document><BkToCstmrStmt><GrpHdr/></BkToCstmrStmt></Document>"):
        status, problem = await upload(world, document)
        assert (status, problem["code"]) == (422, "unreadable_document"), document
    status, problem = await upload(world, notification([Entry(1, direction="XXXX")]))
    assert (status, problem["code"]) == (422, "unreadable_document")
    response = await world.http.post(
        "/v1/bank-statements", data=b"{}", headers=world.auth(world.finance, **{"Content-Type": "application/json"})
    )
    assert response.status == 415
    for token in (provider["token"], world.admin, client["token"]):
        response = await world.http.post(
            "/v1/bank-statements",
            data=notification([]),
            headers=world.auth(token, **{"Content-Type": "application/xml"}),
        )
        assert response.status == 403
    status, problem = await upload(world, b"<Document>" + b" " * MAX_BYTES + b"</Document>")
    assert (status, problem["code"]) == (413, "payload_too_large")
    assert world.sql("SELECT COUNT(*) FROM bank_statements") == [(0,)]


@pytest.mark.sqlite_only
async def test_wallet_check_finds_a_settlement_paid_twice(world: World, tmp_path: Any) -> None:
    import sqlite3
    from contextlib import closing

    from wallet.check import check_database

    _, batch = await provider_and_batch(world, amount=3_000)
    status, body = await upload(world, notification([Entry(3_000, reference=batch["reference"], entry_reference="A")]))
    assert status == 201 and body["entries"][0]["outcome"] == "paid"
    copy = tmp_path / "tampered.db"
    with closing(sqlite3.connect(world.service.settings.db)) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)
        assert check_database(str(copy)) == []
        target.execute(
            "INSERT INTO bank_statement_entries (statement_id, position, direction, amount, entry_reference, outcome,"
            " settlement_id, detail) VALUES (?, 2, 'DBIT', 3000, 'B', 'paid', ?, 'paid again')",
            (body["id"], batch["id"]),
        )
        target.execute(
            "INSERT INTO settlement_events (settlement_id, previous_status, status, actor, at) VALUES (?, 'invoiced', 'paid', 'x', 'y')",
            (batch["id"],),
        )
        target.commit()
    breaches = check_database(str(copy))
    assert any("bank entries paid it 2 times" in breach for breach in breaches), breaches
    assert any(f"settlement {batch['id']} (paid): paid 2 times, returned 0" in breach for breach in breaches), breaches
