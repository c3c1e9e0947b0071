"""SMS receipts after every capture, refund and void (issue 22, item 5): what they say and do not
say, once per movement (also when a request is retried), never for a movement that was not
written, sent again only when a send failed, and by one sender at a time."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.conftest import NATIONAL_ID
from tests.test_catalog import itemized, marketplace, w  # w: the checked world fixture
from tests.test_openapi import CheckedWorld
from tests.test_representatives import REPRESENTATIVE_PHONE, link
from wallet.api.app import send_receipts_forever
from wallet.api.metrics import Metrics
from wallet.api.readiness import Jobs
from wallet.ledger.errors import InvariantViolation
from wallet.ledger.receipts import Receipt, ReceiptItem, ReceiptKind, euros, quantity, text

NBSP = "\u00a0"
CODE = re.compile(r"\b\d{6}\b")  # what a code looks like: never in a receipt


def plain(message: str) -> str:
    return message.replace(NBSP, " ")


# The text.


def test_amounts_and_quantities_are_written_the_finnish_way() -> None:
    assert plain(euros(1250)) == "12,50 €"
    assert plain(euros(5)) == "0,05 €"
    assert plain(euros(12_345_678)) == "123 456,78 €"  # grouped: no six digits in a row
    assert (quantity(150), quantity(200), quantity(125), quantity(1)) == ("1,5", "2", "1,25", "0,01")


def test_a_receipt_names_the_movement_the_provider_the_service_the_own_share_and_what_is_left() -> None:
    items = (ReceiptItem("Kotipalvelu", "hour", 150), ReceiptItem("Siivous", "visit", 200))
    capture = plain(text(Receipt(ReceiptKind.CAPTURE, 8500, "Hoiva Oy", "Kotihoito", 11_500, items, 750)))
    assert capture == (
        "Henkilökohtainen budjetti: maksettu 85,00 €, Hoiva Oy: Kotipalvelu 1,5 h, Siivous 2 krt."
        " Omavastuu 7,50 € maksetaan suoraan palveluntuottajalle. Kotihoito: käytettävissä 115,00 €."
    )
    refund = plain(text(Receipt(ReceiptKind.REFUND, 500, "Hoiva Oy", "Kotihoito", 12_000)))
    assert (
        refund
        == "Henkilökohtainen budjetti: palautettu 5,00 €, Hoiva Oy: Kotihoito. Kotihoito: käytettävissä 120,00 €."
    )
    void = plain(text(Receipt(ReceiptKind.VOID, 3750, "Hoiva Oy", "Kotihoito", 20_000, items[:1])))
    assert void.startswith("Henkilökohtainen budjetti: varaus 37,50 € peruttu, Hoiva Oy: Kotipalvelu 1,5 h.")
    many = tuple(ReceiptItem(f"Palvelu {n}", "item", 100) for n in range(5))
    assert "Palvelu 2 1 kpl + 2 muuta." in plain(text(Receipt(ReceiptKind.CAPTURE, 100, "P", "K", 0, many)))
    with pytest.raises(InvariantViolation):
        text(Receipt(ReceiptKind.CAPTURE, 0, "P", "K", 0))


# Through the API.


def receipts_to(w: CheckedWorld, phone: str) -> list[str]:
    return [
        plain(m["text"])
        for m in w.sms.sent
        if m["to"] == phone and m["text"].startswith("Henkilökohtainen budjetti: ") and not CODE.search(m["text"])
    ]


def rows(w: CheckedWorld) -> list[dict[str, Any]]:
    return w.records("SELECT event_seq, attempts, claimed_at, sent_at, abandoned_at FROM receipts ORDER BY event_seq")


async def test_every_capture_refund_and_void_sends_one_receipt_after_it_is_written(w: CheckedWorld) -> None:
    client, provider = await marketplace(w, amount=20_000)
    await link(w, client, scope="manage")
    visit = [{"service": "home_help", "quantity": 1.5}, {"service": "cleaning", "quantity": "2"}]
    status, captured = await itemized(w, provider, client, visit, key="visit-1")
    assert status == 201
    assert receipts_to(w, client["phone"]) == [] and len(rows(w)) == 1  # written with the capture; sent when drained

    assert await w.service.send_receipts() == 1
    (receipt,) = receipts_to(w, client["phone"])
    assert receipt == (
        "Henkilökohtainen budjetti: maksettu 85,00 €, Hoiva Oy: Kotipalvelu, tunti 1,5 h, Kotipalvelu, tunti 2 h."
        " Omavastuu 7,50 € maksetaan suoraan palveluntuottajalle. Kotihoito: käytettävissä 115,00 €."
    )
    for secret in (NATIONAL_ID, client["phone"], client["phone"][4:], "Aino", captured["id"]):
        assert secret not in receipt  # nothing a stranger reading the lock screen need see
    assert await w.service.send_receipts() == 0  # exactly once

    # The same request again (a retry with the same key): the first answer, no second receipt.
    status, replayed = await itemized(w, provider, client, visit, key="visit-1")
    assert status == 201 and replayed == captured
    assert await w.service.send_receipts() == 0 and len(rows(w)) == 1

    # A refusal writes nothing, so there is nothing to receipt.
    status, _ = await itemized(w, provider, client, [{"service": "home_help", "quantity": 100}])
    assert status == 402 and len(rows(w)) == 1

    # A refund, a hold (no receipt: nothing moved yet) then its capture by code, a hold voided.
    await w.call("POST", f"/v1/charges/{captured['id']}/refunds", provider["token"], {"amount": 500}, expect=201)
    held_body = {"phone": client["phone"], "amount": 1000, "category": "home_care", "identity": {"method": "otp"}}
    _, held = await w.call("POST", "/v1/charges", provider["token"], held_body, expect=201)
    code = w.sms.last_code(client["phone"])
    assert await w.service.send_receipts() == 1  # the refund only
    await w.call("POST", f"/v1/charges/{held['id']}/confirm", provider["token"], {"code": code}, expect=200)
    _, other = await w.call("POST", "/v1/charges", provider["token"], held_body, key="hold-2", expect=201)
    await w.call("POST", f"/v1/charges/{other['id']}/void", provider["token"], key="void-2", expect=201)
    await w.call("POST", f"/v1/charges/{other['id']}/void", provider["token"], key="void-2", expect=201)  # retried
    assert await w.service.send_receipts() == 2
    assert receipts_to(w, client["phone"])[1:] == [
        "Henkilökohtainen budjetti: palautettu 5,00 €, Hoiva Oy: Kotipalvelu, tunti 1,5 h, Kotipalvelu, tunti 2 h."
        " Kotihoito: käytettävissä 120,00 €.",
        "Henkilökohtainen budjetti: maksettu 10,00 €, Hoiva Oy: Kotihoito. Kotihoito: käytettävissä 110,00 €.",
        "Henkilökohtainen budjetti: varaus 10,00 € peruttu, Hoiva Oy: Kotihoito. Kotihoito: käytettävissä 110,00 €.",
    ]
    assert [r["sent_at"] is not None for r in rows(w)] == [True] * 4
    assert receipts_to(w, REPRESENTATIVE_PHONE) == []  # the client's own phone only
    assert all(m["to"] == client["phone"] for m in w.sms.sent)


class FailingSms:
    """A gateway that refuses the first ``failures`` messages, then records."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[dict[str, str]] = []

    async def send(self, to: str, text: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("the gateway is down")
        self.sent.append({"to": to, "text": text})


async def test_a_receipt_the_gateway_refused_is_sent_again_after_the_lease_then_given_up(w: CheckedWorld) -> None:
    client, provider = await w.funded(10_000)
    w.service.sms = gateway = FailingSms(failures=1)
    await w.charge(provider, client, 1250)
    assert await w.service.send_receipts() == 0
    (row,) = rows(w)
    assert (row["attempts"], row["sent_at"]) == (1, None)
    assert await w.service.send_receipts() == 0  # claimed: not again before the lease ends
    w.clock.advance(seconds=w.service.settings.receipt_lease_seconds)
    assert await w.service.send_receipts() == 1
    assert [m["text"] for m in gateway.sent] == [
        f"Henkilökohtainen budjetti: maksettu 12,50{NBSP}€, Hoiva Oy: Kotihoito. Kotihoito: käytettävissä 87,50{NBSP}€."
    ]
    (row,) = rows(w)
    assert (row["attempts"], row["sent_at"] is not None) == (2, True)

    # A gateway that never takes it: given up after the last attempt, and never sent late.
    w.service.sms = FailingSms(failures=10**6)
    await w.charge(provider, client, 100)
    for _ in range(w.service.settings.receipt_attempts_max):
        assert await w.service.send_receipts() == 0
        w.clock.advance(seconds=w.service.settings.receipt_lease_seconds)
    assert await w.service.send_receipts() == 0
    last = rows(w)[-1]
    assert last["attempts"] == w.service.settings.receipt_attempts_max and last["abandoned_at"] is not None
    w.service.sms = gateway
    w.clock.advance(seconds=w.service.settings.receipt_lease_seconds)
    assert await w.service.send_receipts() == 0 and len(gateway.sent) == 1


async def test_two_senders_at_once_send_each_receipt_once(w: CheckedWorld) -> None:
    client, provider = await w.funded(10_000)
    for n in range(5):
        await w.charge(provider, client, 100 + n)
    sent = await asyncio.gather(*(w.service.send_receipts() for _ in range(4)))
    assert sum(sent) == 5
    texts = receipts_to(w, client["phone"])
    assert len(texts) == len(set(texts)) == 5


async def test_the_background_sender_wakes_when_a_movement_commits(w: CheckedWorld) -> None:
    client, provider = await w.funded(10_000)
    before = len(w.sms.sent)  # the budget's decision notice
    delivered = asyncio.Event()

    class Signalling:
        async def send(self, to: str, text: str) -> None:
            w.sms.sent.append({"to": to, "text": text})
            delivered.set()

    w.service.sms = Signalling()
    # An hour between polls: only the commit's wake-up can deliver within the test's bound.
    sender = asyncio.create_task(send_receipts_forever(w.service, 3600, Jobs(Metrics())))
    try:
        await asyncio.sleep(0)  # the sender starts listening (and finds nothing to send)
        await w.charge(provider, client, 700)
        await asyncio.wait_for(delivered.wait(), 10)
    finally:
        sender.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sender
    assert "maksettu 7,00" in w.sms.sent[before]["text"]


async def test_wallet_check_holds_every_movement_to_its_receipt(w: CheckedWorld) -> None:
    from wallet.check import check_database

    client, provider = await w.funded(10_000)
    for amount in (100, 200, 300):
        await w.charge(provider, client, amount)
    assert check_database(w.service.settings.db) == []
    middle = rows(w)[1]["event_seq"]
    with w.database() as database:
        database.execute("DELETE FROM receipts WHERE event_seq = ?", middle)
    assert check_database(w.service.settings.db) == [f"wallet event {middle} (capture) has no receipt"]
    with w.database() as database:
        database.execute(
            "INSERT INTO receipts (event_seq, client_id, created_at)"
            " SELECT seq, client_id, created_at FROM wallet_events WHERE seq = ?",
            middle,
        )
    w.check()
    (credit,) = w.sql("SELECT seq FROM wallet_events WHERE type = 'credit'")
    with w.database() as database:  # a receipt of a credit: money in, not a payment
        database.execute(
            "INSERT INTO receipts (event_seq, client_id, created_at)"
            " SELECT seq, client_id, created_at FROM wallet_events WHERE seq = ?",
            credit[0],
        )
    assert check_database(w.service.settings.db) == [
        f"receipt {credit[0]}: not of a capture, refund or void of its client"
    ]
    with w.database() as database:
        database.execute("DELETE FROM receipts WHERE event_seq = ?", credit[0])
