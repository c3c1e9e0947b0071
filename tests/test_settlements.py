"""Settlement batches: one reference per batch, each capture and refund in one batch at most."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from stdnum import iso11649

from tests.conftest import START, RecordingSms, World
from wallet.api.app import create_app
from wallet.auth.tokens import Role
from wallet.check import check_database
from wallet.clock import FakeClock, rfc3339
from wallet.ledger.errors import Conflict, InvariantViolation
from wallet.ledger.reference import group_finnish_reference, is_valid_finnish_reference
from wallet.ledger.settlements import Line, batch_of, references_for, require_transition, settlement_transaction
from wallet.ledger.settlements import SettlementStatus as S
from wallet.ledger.transactions import TransactionType
from wallet.settings import Settings


def balances(world: World) -> dict[str, int]:
    return dict(world.sql("SELECT id, balance FROM accounts"))  # type: ignore[arg-type]


def line_owners(world: World) -> dict[str, list[str]]:
    """Each settled transaction and the batches it is in."""
    owners: dict[str, list[str]] = {}
    for transaction_id, settlement_id in world.sql("SELECT transaction_id, settlement_id FROM settlement_items"):
        owners.setdefault(transaction_id, []).append(settlement_id)
    return owners


def captures_and_refunds(world: World, provider_id: str) -> set[str]:
    rows = world.sql("SELECT id FROM transactions WHERE provider_id = ? AND type IN ('capture', 'refund')", provider_id)
    return {row[0] for row in rows}


async def captured(world: World, provider: dict[str, Any], client: dict[str, Any], amount: int) -> dict[str, Any]:
    status, charge = await world.charge(provider, client, amount)
    assert status == 201 and charge["status"] == "captured", charge
    return charge  # type: ignore[no-any-return]


def later(world: World, *parties: dict[str, Any], **delta: float) -> None:
    """Move the clock on, and give every party a token that is valid then."""
    world.clock.advance(**delta)
    world.admin, world.finance = world.token(Role.ADMIN), world.token(Role.FINANCE)
    for party in parties:
        if party["id"].startswith("pr_"):
            party["token"] = world.token(Role.PROVIDER, provider_id=party["id"])
        else:
            party["token"] = world.token(Role.CLIENT, client_id=party["id"])


async def settle(world: World, provider: dict[str, Any], body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    return await world.call("POST", "/v1/settlements", provider["token"], body, **kwargs)


async def test_a_batch_closes_captures_and_refunds_under_one_valid_reference(world: World) -> None:
    client, provider = await world.funded(100_000)
    first = await captured(world, provider, client, 12_000)
    await captured(world, provider, client, 3_450)
    await world.call("POST", f"/v1/charges/{first['id']}/refunds", provider["token"], {"amount": 2_000}, expect=201)

    status, batch = await settle(world, provider)

    assert status == 201
    assert batch["amount"] == 12_000 + 3_450 - 2_000 and batch["count"] == 3
    assert batch["status"] == "open" and batch["more_to_settle"] is False
    assert is_valid_finnish_reference(batch["reference"])
    assert iso11649.is_valid(batch["rf_reference"]) and batch["rf_reference"].endswith(batch["reference"])
    assert batch["reference_printed"] == group_finnish_reference(batch["reference"])
    assert batch["period_start"] <= batch["period_end"] <= batch["until"]
    accounts = balances(world)
    assert accounts[f"payable:{provider['id']}"] == 0
    assert accounts[f"settled:{provider['id']}"] == 13_450

    _, detail = await world.call("GET", f"/v1/settlements/{batch['id']}", provider["token"], expect=200)
    assert sorted(line["amount"] for line in detail["lines"]) == [-2_000, 3_450, 12_000]
    assert {line["type"] for line in detail["lines"]} == {"capture", "refund"}
    assert all(line["charge_id"] for line in detail["lines"])
    assert detail["events"] == [
        {
            "previous_status": None,
            "status": "open",
            "actor": f"provider:{provider['id']}",
            "at": batch["created_at"],
            "note": None,
        }
    ]


async def test_references_are_unique_across_batches_and_providers(world: World) -> None:
    client, provider = await world.funded(100_000)
    other = await world.provider(["home_care"])
    references = set()
    for owner in (provider, other, provider):
        await captured(world, owner, client, 100)
        _, batch = await settle(world, owner, expect=201)
        assert is_valid_finnish_reference(batch["reference"])
        references.add(batch["reference"])
    assert len(references) == 3


async def test_nothing_to_settle_is_refused(world: World) -> None:
    client, provider = await world.funded()
    status, problem = await settle(world, provider)
    assert (status, problem["code"]) == (422, "nothing_to_settle")
    await captured(world, provider, client, 500)
    await settle(world, provider, expect=201)
    status, problem = await settle(world, provider)  # everything is in the first batch
    assert (status, problem["code"]) == (422, "nothing_to_settle")


async def test_until_cuts_the_batch_and_the_rest_waits_for_the_next(world: World) -> None:
    client, provider = await world.funded(100_000)
    early = await captured(world, provider, client, 1_000)
    cut = world.clock.now()
    later(world, provider, hours=2)
    late = await captured(world, provider, client, 2_000)

    _, first = await settle(world, provider, {"until": rfc3339(cut)}, expect=201)
    assert (first["amount"], first["count"], first["until"]) == (1_000, 1, rfc3339(cut))
    _, second = await settle(world, provider, expect=201)
    assert (second["amount"], second["count"]) == (2_000, 1)
    _, first_detail = await world.call("GET", f"/v1/settlements/{first['id']}", provider["token"], expect=200)
    _, second_detail = await world.call("GET", f"/v1/settlements/{second['id']}", provider["token"], expect=200)
    assert [line["charge_id"] for line in first_detail["lines"]] == [early["id"]]
    assert [line["charge_id"] for line in second_detail["lines"]] == [late["id"]]


async def test_until_is_validated(world: World) -> None:
    _, provider = await world.funded()
    future = rfc3339(world.clock.now() + timedelta(minutes=5))
    for until, field in ((future, "until"), ("yesterday", "until"), ("2027-01-15T10:00:00", "until"), (5, "until")):
        status, problem = await settle(world, provider, {"until": until})
        assert (status, problem["code"], problem["field"]) == (422, "validation_error", field), until


async def test_a_refund_after_settlement_goes_into_the_next_batch(world: World) -> None:
    client, provider = await world.funded(100_000)
    charge = await captured(world, provider, client, 5_000)
    _, first = await settle(world, provider, expect=201)
    assert first["amount"] == 5_000

    later(world, provider, client, days=1)
    _, refund = await world.call(
        "POST", f"/v1/charges/{charge['id']}/refunds", provider["token"], {"amount": 1_500}, expect=201
    )
    _, second = await settle(world, provider, expect=201)

    # The provider owes the refund back: a negative batch, moving settled → payable.
    assert (second["amount"], second["count"]) == (-1_500, 1)
    assert second["transaction_id"] is not None
    _, detail = await world.call("GET", f"/v1/settlements/{second['id']}", provider["token"], expect=200)
    assert [(line["type"], line["refund_id"], line["amount"]) for line in detail["lines"]] == [
        ("refund", refund["id"], -1_500)
    ]
    accounts = balances(world)
    assert accounts[f"payable:{provider['id']}"] == 0
    assert accounts[f"settled:{provider['id']}"] == 3_500
    assert (await world.wallet(client))["balance"] == 100_000 - 3_500
    _, first_again = await world.call("GET", f"/v1/settlements/{first['id']}", provider["token"], expect=200)
    assert first_again["amount"] == 5_000 and first_again["count"] == 1  # a closed batch never changes


async def test_lines_that_cancel_out_make_a_batch_without_a_ledger_transaction(world: World) -> None:
    client, provider = await world.funded(100_000)
    charge = await captured(world, provider, client, 800)
    await world.call("POST", f"/v1/charges/{charge['id']}/refunds", provider["token"], {"amount": 800}, expect=201)
    _, batch = await settle(world, provider, expect=201)
    assert (batch["amount"], batch["count"], batch["transaction_id"]) == (0, 2, None)
    assert balances(world).get(f"settled:{provider['id']}", 0) == 0
    status, problem = await settle(world, provider)
    assert (status, problem["code"]) == (422, "nothing_to_settle")


async def test_concurrent_requests_settle_each_line_exactly_once(world: World) -> None:
    client, provider = await world.funded(100_000)
    for amount in (100, 200, 300, 400):
        await captured(world, provider, client, amount)

    results = await asyncio.gather(*(settle(world, provider) for _ in range(10)))

    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [422] * 9
    assert all(body["code"] == "nothing_to_settle" for status, body in results if status == 422)
    (batch,) = [body for status, body in results if status == 201]
    assert (batch["amount"], batch["count"]) == (1_000, 4)
    owners = line_owners(world)
    assert set(owners) == captures_and_refunds(world, provider["id"])
    assert all(batches == [batch["id"]] for batches in owners.values())


async def test_settlements_racing_charges_and_refunds_settle_each_line_once(world: World) -> None:
    client, provider = await world.funded(100_000)
    charges = [await captured(world, provider, client, 1_000) for _ in range(5)]

    async def refund(charge: dict[str, Any]) -> tuple[int, Any]:
        return await world.call("POST", f"/v1/charges/{charge['id']}/refunds", provider["token"], {"amount": 100})

    async def charge_more() -> tuple[int, Any]:
        return await world.charge(provider, client, 250)

    work = [settle(world, provider) for _ in range(8)]
    work += [refund(charge) for charge in charges] + [charge_more() for _ in range(5)]
    await asyncio.gather(*work)
    await settle(world, provider)  # whatever the race left behind

    owners = line_owners(world)
    assert set(owners) == captures_and_refunds(world, provider["id"])
    assert all(len(batches) == 1 for batches in owners.values())
    _, page = await world.call("GET", "/v1/settlements?limit=200", provider["token"], expect=200)
    assert sum(batch["amount"] for batch in page["data"]) == 5 * 1_000 - 5 * 100 + 5 * 250
    assert balances(world)[f"payable:{provider['id']}"] == 0


async def test_idempotency_key_replays_the_first_batch(world: World) -> None:
    client, provider = await world.funded()
    await captured(world, provider, client, 700)
    response = await world.http.post(
        "/v1/settlements", json={}, headers=world.auth(provider["token"], **{"Idempotency-Key": "settle-1"})
    )
    first = await response.json()
    assert response.status == 201
    await captured(world, provider, client, 300)
    replay = await world.http.post(
        "/v1/settlements", json={}, headers=world.auth(provider["token"], **{"Idempotency-Key": "settle-1"})
    )
    assert replay.status == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert await replay.json() == first
    status, problem = await settle(world, provider, {"until": rfc3339(START)}, key="settle-1")
    assert (status, problem["code"]) == (422, "idempotency_key_reuse")
    # A refusal is remembered too: the same key answers nothing_to_settle again after new charges.
    _, second = await settle(world, provider, {}, key="settle-2", expect=201)
    assert second["amount"] == 300
    status, problem = await settle(world, provider, {}, key="settle-3")
    assert problem["code"] == "nothing_to_settle"
    await captured(world, provider, client, 50)
    status, problem = await settle(world, provider, {}, key="settle-3")
    assert (status, problem["code"]) == (422, "nothing_to_settle")


async def test_a_body_is_optional(world: World) -> None:
    client, provider = await world.funded()
    await captured(world, provider, client, 700)
    response = await world.http.post("/v1/settlements", headers=world.auth(provider["token"]))
    assert response.status == 201, await response.text()


async def test_providers_see_only_their_own_settlements(world: World) -> None:
    client, provider = await world.funded()
    other = await world.provider(["home_care"])
    await captured(world, provider, client, 700)
    await captured(world, other, client, 300)
    _, mine = await settle(world, provider, expect=201)
    _, theirs = await settle(world, other, expect=201)

    status, problem = await world.call("GET", f"/v1/settlements/{theirs['id']}", provider["token"])
    assert (status, problem["code"]) == (404, "not_found")
    _, page = await world.call("GET", "/v1/settlements", provider["token"], expect=200)
    assert [batch["id"] for batch in page["data"]] == [mine["id"]]
    _, everything = await world.call("GET", "/v1/settlements", world.finance, expect=200)
    assert {batch["id"] for batch in everything["data"]} == {mine["id"], theirs["id"]}
    _, filtered = await world.call("GET", f"/v1/settlements?provider_id={other['id']}", world.finance, expect=200)
    assert [batch["id"] for batch in filtered["data"]] == [theirs["id"]]
    await world.call("GET", f"/v1/settlements/{mine['id']}", world.finance, expect=200)
    await world.call("GET", "/v1/settlements", client["token"], expect=403)
    await world.call("POST", "/v1/settlements", world.finance, {}, expect=403)


async def test_list_pages_newest_first(world: World) -> None:
    client, provider = await world.funded(100_000)
    made = []
    for amount in (100, 200, 300, 400, 500):
        await captured(world, provider, client, amount)
        made.append((await settle(world, provider, expect=201))[1]["id"])
    seen: list[str] = []
    cursor = None
    while True:
        path = "/v1/settlements?limit=2" + (f"&cursor={cursor}" if cursor else "")
        _, page = await world.call("GET", path, provider["token"], expect=200)
        seen += [batch["id"] for batch in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


async def test_lines_of_a_large_batch_come_in_pages(world: World) -> None:
    client, provider = await world.funded(100_000)
    charges = [await captured(world, provider, client, 10 + n) for n in range(7)]
    _, batch = await settle(world, provider, expect=201)
    lines: list[str] = []
    cursor = None
    while True:
        path = f"/v1/settlements/{batch['id']}?limit=3" + (f"&cursor={cursor}" if cursor else "")
        _, detail = await world.call("GET", path, provider["token"], expect=200)
        lines += [line["charge_id"] for line in detail["lines"]]
        cursor = detail["lines_next_cursor"]
        if cursor is None:
            break
    assert lines == [charge["id"] for charge in charges]


async def test_finance_marks_a_batch_paid_and_the_change_is_recorded(world: World) -> None:
    client, provider = await world.funded()
    await captured(world, provider, client, 700)
    _, batch = await settle(world, provider, expect=201)
    later(world, provider, days=3)

    await world.call("POST", f"/v1/settlements/{batch['id']}/paid", provider["token"], expect=403)
    _, paid = await world.call(
        "POST", f"/v1/settlements/{batch['id']}/paid", world.finance, {"note": "bank 2027-01-18"}, expect=200
    )
    assert paid["status"] == "paid" and paid["updated_at"] == rfc3339(world.clock.now())
    _, detail = await world.call("GET", f"/v1/settlements/{batch['id']}", provider["token"], expect=200)
    assert [(e["previous_status"], e["status"], e["actor"].split(":")[0]) for e in detail["events"]] == [
        (None, "open", "provider"),
        ("open", "paid", "finance"),
    ]
    assert detail["events"][1]["at"] == rfc3339(world.clock.now())
    assert detail["events"][1]["note"] == "bank 2027-01-18"
    status, problem = await world.call("POST", f"/v1/settlements/{batch['id']}/paid", world.finance)
    assert (status, problem["code"], problem["settlement_status"]) == (409, "conflict", "paid")
    await world.call("POST", "/v1/settlements/se_missing/paid", world.finance, expect=404)
    _, page = await world.call("GET", "/v1/settlements?status=paid", world.finance, expect=200)
    assert [item["id"] for item in page["data"]] == [batch["id"]]


async def test_a_batch_takes_at_most_the_configured_lines(
    aiohttp_client: Any, settings: Settings, clock: FakeClock, sms: RecordingSms
) -> None:
    app = create_app(replace(settings, settlement_items_max=2), clock=clock, sms=sms, background_jobs=False)
    http: TestClient = await aiohttp_client(app)
    world = World(http, sms, clock)
    client, provider = await world.funded(100_000)
    for amount in (100, 200, 300):
        await captured(world, provider, client, amount)
    _, first = await settle(world, provider, expect=201)
    assert (first["count"], first["amount"], first["more_to_settle"]) == (2, 300, True)
    _, second = await settle(world, provider, expect=201)
    assert (second["count"], second["amount"], second["more_to_settle"]) == (1, 300, False)
    assert set(line_owners(world)) == captures_and_refunds(world, provider["id"])
    world.check()


async def test_check_finds_a_settlement_that_does_not_match_its_lines(world: World) -> None:
    client, provider = await world.funded()
    await captured(world, provider, client, 700)
    await settle(world, provider, expect=201)
    with world.database() as database:  # forged in place: this database is broken on purpose
        database.execute(
            "INSERT INTO settlements (seq, id, provider_id, reference, rf_reference, amount, count, period_start,"
            " period_end, until, transaction_id, scan_from_seq, status, created_at, updated_at)"
            " VALUES ((SELECT MAX(seq) + 1 FROM settlements), 'se_forged', ?, '9', 'RF9', 0, 1, 'a', 'b', 'c', NULL, 0,"
            " 'open', 'x', 'x')",
            provider["id"],
        )
        database.execute("UPDATE accounts SET balance = balance + 1 WHERE id = ?", f"settled:{provider['id']}")
    breaches = check_database(world.service.settings.db)
    assert any("se_forged" in breach and "lines sum to 0" in breach for breach in breaches), breaches
    assert any("se_forged" in breach and "last event" in breach for breach in breaches), breaches
    assert any(f"settled:{provider['id']}" in breach and "settlements sum" in breach for breach in breaches), breaches
    world.check = lambda: None  # type: ignore[method-assign]


async def test_a_settled_batch_cannot_be_changed_in_the_database(world: World) -> None:
    client, provider = await world.funded()
    await captured(world, provider, client, 700)
    _, batch = await settle(world, provider, expect=201)
    with world.database() as database:
        for statement in (
            "UPDATE settlements SET amount = 1 WHERE id = ?",
            "UPDATE settlement_items SET amount = 1 WHERE settlement_id = ?",
            "DELETE FROM settlement_items WHERE settlement_id = ?",
        ):
            try:
                database.execute(statement, batch["id"])
            except sqlite3.IntegrityError:
                continue
            raise AssertionError(f"allowed: {statement}")
        status_before = database.execute("SELECT status FROM settlements WHERE id = ?", batch["id"])
    assert status_before == [("open",)]


async def test_a_suspended_provider_may_still_settle_what_it_charged(world: World) -> None:
    client, provider = await world.funded()
    await captured(world, provider, client, 700)
    await world.call("POST", f"/v1/providers/{provider['id']}/suspend", world.admin, expect=200)
    _, batch = await settle(world, provider, expect=201)
    assert batch["amount"] == 700


# The rules alone, without a database.


def test_the_ledger_transaction_of_a_batch_follows_the_sign_of_its_net() -> None:
    owed = settlement_transaction("pr_1", 1_234)
    assert owed is not None and {(p.account_id, p.amount) for p in owed.postings} == {
        ("payable:pr_1", -1_234),
        ("settled:pr_1", 1_234),
    }
    owing = settlement_transaction("pr_1", -500)
    assert owing is not None and {(p.account_id, p.amount) for p in owing.postings} == {
        ("payable:pr_1", 500),
        ("settled:pr_1", -500),
    }
    assert settlement_transaction("pr_1", 0) is None


def test_a_batch_sums_its_lines_and_refuses_what_is_not_a_line() -> None:
    capture, refund = TransactionType.CAPTURE, TransactionType.REFUND
    batch = batch_of([Line("t1", capture, 500, "2027-01-02"), Line("t2", refund, -200, "2027-01-01")])
    assert (batch.amount, batch.count, batch.period_start, batch.period_end) == (300, 2, "2027-01-01", "2027-01-02")
    for bad in (
        [Line("t", capture, -5, "x")],
        [Line("t", refund, 5, "x")],
        [Line("t", TransactionType.CREDIT, 5, "x")],
        [],
    ):
        with pytest.raises(InvariantViolation):
            batch_of(bad)


def test_the_life_of_a_batch() -> None:
    returned = {(S.PAID, S.OPEN), (S.PAID, S.INVOICED)}  # the bank returned the payment
    allowed = {(S.OPEN, S.INVOICED), (S.OPEN, S.PAID), (S.INVOICED, S.PAID), *returned}
    for current in S:
        for wanted in S:
            if (current, wanted) in allowed:
                require_transition(current, wanted)
            else:
                with pytest.raises(Conflict):
                    require_transition(current, wanted)


def test_batch_references_are_distinct_and_valid() -> None:
    seen = {references_for(n)[0] for n in range(1, 2_000)}
    assert len(seen) == 1_999 and all(is_valid_finnish_reference(r) for r in seen)
    assert references_for(1) == ("1000000012", "RF231000000012")  # "10" + 0000001, check 7·1 + 1·1 = 8 → 2
    assert references_for(12_345_678)[0] == "10123456783"  # the sequence outgrows its seven digits
