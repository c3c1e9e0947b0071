"""Finvoice as the banks' e-invoicing channel delivers it: a SOAP transmission frame before each
invoice, several frame-and-invoice pairs one after another in one file, in the declared encoding."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import World
from tests.test_reconciliation import finvoice, outcomes, provider_and_batch, reconcile, status_of

CHANNEL_FILE = (Path(__file__).parent / "fixtures" / "finvoice-channel-iso-8859-15.xml").read_bytes()
SENDER = "003712345671"  # the frames' From PartyId with Role Sender
# The three invoices of the file: (invoice number, amount to pay in cents, invoice total in cents).
INVOICES = [("2026000301", 123_450, 123_450), ("2026000302", 60_000, 80_000), ("2026000303", 32_100, 32_100)]


async def three_batches(world: World) -> list[dict[str, object]]:
    """Settlements numbered 1, 2, 3: the references the channel file's invoices carry."""
    return [(await provider_and_batch(world, amount=amount))[1] for _, amount, _ in INVOICES]


async def test_a_channel_file_of_three_framed_invoices_is_matched_invoice_by_invoice(world: World) -> None:
    batches = await three_batches(world)
    status, body = await reconcile(world, CHANNEL_FILE)
    assert status == 201, body
    found = [
        (invoice["invoice_number"], invoice["amount"], invoice["invoice_total"], invoice["outcome"], invoice["sender"])
        for invoice in body["invoices"]
    ]
    assert found == [(number, to_pay, total, "matched", SENDER) for number, to_pay, total in INVOICES]
    assert [invoice["settlement_id"] for invoice in body["invoices"]] == [batch["id"] for batch in batches]
    assert [invoice["finvoice_version"] for invoice in body["invoices"]] == ["3.0", "2.01", "3.0"]
    assert body["summary"]["matched"] == 3
    kept = world.sql(
        "SELECT position, sender, invoice_total, finvoice_version FROM reconciliation_invoice_details"
        " WHERE reconciliation_id = ? ORDER BY position",
        body["id"],
    )
    assert [tuple(row) for row in kept] == [
        (1, SENDER, 123_450, "3.0"),
        (2, SENDER, 80_000, "2.01"),
        (3, SENDER, 32_100, "3.0"),
    ]
    for batch in batches:
        assert await status_of(world, batch) == "invoiced"
    # The same file again matches nothing more.
    status, again = await reconcile(world, CHANNEL_FILE)
    assert status == 201 and [i["outcome"] for i in again["invoices"]] == ["duplicate"] * 3


async def test_the_partly_prepaid_invoice_is_matched_by_its_amount_to_pay_not_its_total(world: World) -> None:
    await provider_and_batch(world, amount=123_450)
    prepaid = (await provider_and_batch(world, amount=80_000))[1]  # the invoice total, not what is to pay
    status, body = await reconcile(world, CHANNEL_FILE)
    assert status == 201, body
    second = body["invoices"][1]
    assert (second["outcome"], second["amount"], second["settlement_amount"]) == ("amount_mismatch", 60_000, 80_000)
    assert await status_of(world, prepaid) == "open"


async def test_the_text_is_read_in_the_declared_encoding(world: World) -> None:
    from wallet.invoices import read_finvoice

    assert "€".encode("iso8859_15") in CHANNEL_FILE and "ä".encode("iso8859_15") in CHANNEL_FILE
    invoices = read_finvoice(CHANNEL_FILE, 10)
    assert [invoice.sender for invoice in invoices] == [SENDER] * 3
    # The same invoices in UTF-8, each document declaring it, read alike.
    utf8 = CHANNEL_FILE.decode("iso8859_15").replace('encoding="ISO-8859-15"', 'encoding="UTF-8"').encode()
    assert read_finvoice(utf8, 10) == invoices


async def test_a_frame_before_a_bare_invoice_and_one_without_declarations(world: World) -> None:
    _, batch = await provider_and_batch(world)
    frame = CHANNEL_FILE.split(b"<?xml", 3)[1]  # the first frame, its declaration cut off
    document = b"<?xml" + frame + finvoice(batch["reference"], number="A-1").encode()
    status, body = await reconcile(world, document)
    assert status == 201, body
    assert [(i["outcome"], i["sender"]) for i in body["invoices"]] == [("matched", SENDER)]
    # Two bare invoices after each other, no frames, no declarations: each read, no sender.
    _, other = await provider_and_batch(world)
    two = finvoice(other["reference"], number="B-1", declaration=False) + finvoice("20260001243", declaration=False)
    status, body = await reconcile(world, two)
    assert [(i["outcome"], i["sender"]) for i in body["invoices"]] == [("matched", None), ("unknown_reference", None)]


async def test_documents_each_starting_with_a_byte_order_mark(world: World) -> None:
    from wallet.invoices import read_finvoice

    utf8 = CHANNEL_FILE.decode("iso8859_15").replace('encoding="ISO-8859-15"', 'encoding="UTF-8"').encode()
    with_marks = utf8.replace(b"<?xml", b"\xef\xbb\xbf<?xml")
    assert with_marks.count(b"\xef\xbb\xbf") == 6
    assert read_finvoice(with_marks, 10) == read_finvoice(CHANNEL_FILE, 10)


async def test_what_a_channel_file_must_not_be_is_refused_with_nothing_changed(world: World) -> None:
    batches = await three_batches(world)
    frame_only = CHANNEL_FILE.split(b"<?xml")[1]
    cases = {
        "a frame with no invoice after it": b"<?xml" + frame_only,
        "two frames in a row": b"<?xml" + frame_only + b"<?xml" + frame_only + CHANNEL_FILE,
        "junk between documents": CHANNEL_FILE.replace(b"</SOAP-ENV:Envelope>", b"</SOAP-ENV:Envelope>junk", 1),
        "a truncated file": CHANNEL_FILE[: len(CHANNEL_FILE) // 2],
        "a wrongly declared encoding": CHANNEL_FILE.replace(b'encoding="ISO-8859-15"', b'encoding="UTF-8"'),
    }
    for name, document in cases.items():
        status, problem = await reconcile(world, document)
        assert (status, problem["code"]) == (422, "unreadable_document"), name
    hostile = CHANNEL_FILE + b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    status, problem = await reconcile(world, hostile)
    assert (status, problem["code"]) == (400, "unsafe_document")
    for batch in batches:
        assert await status_of(world, batch) == "open"
    assert world.sql("SELECT COUNT(*) FROM reconciliations") == [(0,)]


async def test_the_wrapper_document_still_reads(world: World) -> None:
    _, batch = await provider_and_batch(world)
    inner = finvoice(batch["reference"], declaration=False)
    assert await outcomes(world, f"<Invoices>{inner}</Invoices>") == ["matched"]
