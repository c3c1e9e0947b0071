"""SMS receipts after every capture, refund and void (issue 22, item 5): what they say and do not
say, once per movement (also when a request is retried), never for a movement that was not
written, sent again only when a send failed, and by one sender at a time."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

import pytest

from loadtests.bench import national_id
from tests.conftest import NATIONAL_ID
from tests.test_catalog import itemized, marketplace, w  # w: the checked world fixture
from tests.test_openapi import CheckedWorld
from tests.test_representatives import REPRESENTATIVE_PHONE, link
from wallet.api.app import send_receipts_forever
from wallet.api.metrics import Metrics
from wallet.api.readiness import Jobs
from wallet.ledger.errors import InvariantViolation, Unavailable
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


async def charged(w: CheckedWorld, charges: list[int]) -> list[dict[str, Any]]:
    """A client for each entry, charged that many times (amounts 101, 102, ... cents, in order)."""
    await w.category("home_care")
    clients = [await w.client(national_id=national_id(n)) for n in range(len(charges))]
    for client in clients:
        await w.budget(client["id"], {"home_care": 10_000})
    await w.credit()
    provider = await w.provider(["home_care"])
    for n, (client, count) in enumerate(zip(clients, charges, strict=True)):
        for amount in range(101, 101 + count):
            status, _ = await w.charge(provider, client, amount, national_id=national_id(n))
            assert status == 201
    return clients


class Gateway:
    """Holds every send until ``at_once`` are in flight together (once), and counts them: in all,
    and to each phone."""

    def __init__(self, at_once: int, fail_first_to: str | None = None) -> None:
        self.at_once = at_once
        self.fail_first_to = fail_first_to
        self.in_flight = self.peak = 0
        self.to_phone: dict[str, int] = {}
        self.opened = asyncio.Event()
        self.sent: list[dict[str, str]] = []

    async def send(self, to: str, text: str) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.to_phone[to] = self.to_phone.get(to, 0) + 1
        assert self.to_phone[to] == 1, "two receipts to one phone at once"
        if self.in_flight >= self.at_once:
            self.opened.set()
        try:
            await asyncio.sleep(0)  # every send already started is in flight together, gate open or not
            await self.opened.wait()
            if to == self.fail_first_to:
                self.fail_first_to = None
                raise ConnectionError("the gateway is down")
            self.sent.append({"to": to, "text": plain(text)})
        finally:
            self.in_flight -= 1
            self.to_phone[to] -= 1


async def test_receipts_to_different_clients_go_to_the_gateway_at_once_up_to_the_limit(w: CheckedWorld) -> None:
    w.service.settings = dataclasses.replace(w.service.settings, receipt_sends_at_once=3)
    clients = await charged(w, [1] * 7)
    w.service.sms = gateway = Gateway(at_once=3)
    # One at a time, the first send would wait for the other two forever.
    assert await asyncio.wait_for(w.service.send_receipts(), 30) == 7
    assert gateway.peak == 3
    assert sorted(m["to"] for m in gateway.sent) == sorted(c["phone"] for c in clients)
    assert all(row["sent_at"] is not None for row in rows(w))


async def test_one_client_s_receipts_go_one_after_another_in_the_order_of_their_movements(w: CheckedWorld) -> None:
    w.service.settings = dataclasses.replace(w.service.settings, receipt_sends_at_once=3)
    first, *others = await charged(w, [3, 1, 1])
    w.service.sms = gateway = Gateway(at_once=3)  # two to one phone at once fails the send
    assert await asyncio.wait_for(w.service.send_receipts(), 30) == 5
    assert [m["text"].split(",")[0:2] for m in gateway.sent if m["to"] == first["phone"]] == [
        ["Henkilökohtainen budjetti: maksettu 1", "01 €"],
        ["Henkilökohtainen budjetti: maksettu 1", "02 €"],
        ["Henkilökohtainen budjetti: maksettu 1", "03 €"],
    ]
    assert sorted(m["to"] for m in gateway.sent if m["to"] != first["phone"]) == sorted(c["phone"] for c in others)


async def test_a_client_s_receipt_the_gateway_refused_holds_back_the_later_ones_until_it_goes(w: CheckedWorld) -> None:
    w.service.settings = dataclasses.replace(w.service.settings, receipt_sends_at_once=2)
    first, second = await charged(w, [2, 1])
    w.service.sms = gateway = Gateway(at_once=2, fail_first_to=first["phone"])
    assert await asyncio.wait_for(w.service.send_receipts(), 30) == 1
    assert [m["to"] for m in gateway.sent] == [second["phone"]]
    assert [(row["attempts"], row["sent_at"] is None) for row in rows(w)] == [(1, True), (1, True), (1, False)]
    w.clock.advance(seconds=w.service.settings.receipt_lease_seconds)
    gateway.at_once = 1
    assert await asyncio.wait_for(w.service.send_receipts(), 30) == 2
    assert [m["text"].split(",")[1][:2] for m in gateway.sent[1:]] == ["01", "02"]
    assert all(row["sent_at"] is not None for row in rows(w))


@pytest.mark.parametrize("write", ["written", "failed"])
async def test_a_sender_cancelled_while_its_marks_are_written_ends_cancelled(
    w: CheckedWorld, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    """The service stopping cancels the sender as a mark's write ends (or fails): the senders
    waiting for it are cancelled first, and the sender still ends cancelled (it used to end in an
    error that the background loop logged and carried on from, so the service never stopped)."""
    clients = await charged(w, [1, 1])
    storage = w.service.storage
    writing, release = asyncio.Event(), asyncio.Event()
    really = storage.mark_receipts_sent

    async def held(event_seqs: Any, now: Any) -> None:  # written, then answered when released
        if write == "written":
            await really(event_seqs, now)
        writing.set()
        await release.wait()
        if write == "failed":
            raise Unavailable("the database is not writable now", retry_after_seconds=1)

    monkeypatch.setattr(storage, "mark_receipts_sent", held)
    w.service.sms = gateway = Gateway(at_once=2)
    sender = asyncio.create_task(w.service.send_receipts())
    await asyncio.wait_for(writing.wait(), 30)
    release.set()  # the write's answer: it reaches the sender's marks after ...
    sender.cancel()  # ... this has cancelled the senders waiting for them
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(sender, 30)
    assert sorted(m["to"] for m in gateway.sent) == sorted(c["phone"] for c in clients)
    assert [row["sent_at"] is not None for row in rows(w)] == [write == "written"] * 2


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
