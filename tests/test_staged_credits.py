"""One month of money at a time: a credit run ahead of its month stages the month's credit, which
no path can spend, and the month's own run releases it from its first midnight (Europe/Helsinki),
in the transaction that expires the month before."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import World
from tests.test_credit_runs import funding_balance, move_to
from tests.test_representatives import link, representative_token
from wallet.check import check_database
from wallet.clock import FakeClock, rfc3339

DEC_7 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
JAN_1 = datetime(2026, 12, 31, 22, 0, tzinfo=UTC)  # 00:00 on 1 January 2027 in Helsinki (UTC+2)
FEB_1 = datetime(2027, 1, 31, 22, 0, tzinfo=UTC)
MAR_1 = datetime(2027, 2, 28, 22, 0, tzinfo=UTC)  # after a February of 28 days, still UTC+2


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(DEC_7)


def line(wallet: dict[str, Any], category: str) -> dict[str, Any]:
    return next(item for item in wallet["lines"] if item["category"] == category)


def upcoming(month: str, amount: int, starts: datetime) -> dict[str, Any]:
    return {"month": month, "amount": amount, "available_from": rfc3339(starts)}


async def december_client(world: World, unused: str = "expire") -> tuple[dict[str, Any], dict[str, Any]]:
    """The issue's case: lines of 500 € and 100 €, December credited, a provider for both."""
    await world.category("home_care", "Kotihoito")
    await world.category("transport", "Kuljetus")
    client = await world.client()
    await world.budget(client["id"], {"home_care": 50_000, "transport": 10_000}, start="2026-12", unused=unused)
    await world.credit("2026-12")
    provider = await world.provider(["home_care", "transport"])
    return client, provider


async def run(world: World, month: str, expect: int = 200) -> dict[str, Any]:
    _, body = await world.call("POST", "/v1/credit-runs", world.admin, {"month": month}, expect=expect)
    return dict(body)


async def test_a_run_on_7_december_for_january_stages_it_and_december_stays_as_it_was(world: World) -> None:
    client, _ = await december_client(world)
    budget_id = world.sql("SELECT id FROM budgets WHERE client_id = ?", client["id"])[0][0]
    staged = await run(world, "2027-01", expect=201)
    assert (staged["credited"], staged["amount"], staged["credited_now"], staged["released_now"]) == (2, 60_000, 2, 0)
    wallet = await world.wallet(client)
    transport = line(wallet, "transport")
    assert (transport["balance"], transport["available"]) == (10_000, 10_000)  # not 20 000: January is not yet
    assert transport["upcoming"] == [upcoming("2027-01", 10_000, JAN_1)]
    assert line(wallet, "home_care")["upcoming"] == [upcoming("2027-01", 50_000, JAN_1)]
    assert (wallet["balance"], wallet["available"]) == (60_000, 60_000)
    assert wallet["upcoming"] == [upcoming("2027-01", 60_000, JAN_1)]
    assert await funding_balance(world) == -60_000  # staged money stays with funding until its month
    _, page = await world.call("GET", "/v1/me/transactions", client["token"], expect=200)
    assert [(item["type"], item["amount"]) for item in page["data"]] == [("credit", 10_000), ("credit", 50_000)]
    entries = world.records("SELECT subject, data FROM audit_log WHERE action = 'credit.staged' ORDER BY seq")
    assert [(entry["subject"], json.loads(entry["data"])) for entry in entries] == [
        (f"wallet:{client['id']}:home_care", {"amount": 50_000, "budget_id": budget_id, "month": "2027-01"}),
        (f"wallet:{client['id']}:transport", {"amount": 10_000, "budget_id": budget_id, "month": "2027-01"}),
    ]
    # Due by the clock: wallet check, told January has begun, finds January's money unreleased.
    assert check_database(world.service.settings.db, released_through="2026-12") == []
    late = check_database(world.service.settings.db, released_through="2027-01")
    assert sorted(late) == [
        f"staged credit 2027-01 on wallet:{client['id']}:{category} ({amount}) is unreleased,"
        " though its month has begun and its run should have released it"
        for category, amount in (("home_care", 50_000), ("transport", 10_000))
    ]
    again = await run(world, "2027-01")  # staged once however often it runs
    assert (again["credited"], again["amount"], again["credited_now"]) == (2, 60_000, 0)
    assert (await world.wallet(client))["upcoming"] == wallet["upcoming"]


async def test_january_is_released_at_midnight_across_the_year_end_with_decembers_rest_expired(
    world: World,
) -> None:
    client, provider = await december_client(world)
    status, _ = await world.charge(provider, client, 3_000, category="transport")
    assert status == 201
    await run(world, "2027-01", expect=201)
    move_to(world, datetime(2026, 12, 31, 21, 59, 59, tzinfo=UTC), client, provider)  # 23:59:59 on 31 December
    early = await run(world, "2027-01")  # still ahead of its month: releases nothing
    assert (early["released_now"], early["expired_now"]) == (0, 0)
    assert line(await world.wallet(client), "transport")["available"] == 7_000
    status, _ = await world.charge(provider, client, 7_001, category="transport")
    assert status == 402

    move_to(world, JAN_1, client, provider)
    released = await run(world, "2027-01")  # the month was credited (staged) already: 200
    assert (released["released_now"], released["expired_now"], released["credited_now"]) == (2, 2, 0)
    assert (released["credited"], released["amount"]) == (2, 60_000)
    wallet = await world.wallet(client)
    assert [(item["category"], item["balance"], item["upcoming"]) for item in wallet["lines"]] == [
        ("home_care", 50_000, []),
        ("transport", 10_000, []),
    ]
    assert wallet["upcoming"] == []
    _, page = await world.call("GET", "/v1/me/transactions", client["token"], expect=200)
    assert [(item["type"], item["category"], item["amount"]) for item in page["data"][:4]] == [
        ("credit", "transport", 10_000),
        ("expiry", "transport", -7_000),  # December's rest, in the same run, before January's money
        ("credit", "home_care", 50_000),
        ("expiry", "home_care", -50_000),
    ]
    assert await funding_balance(world) == -63_000  # 60 000 on the wallet, 3 000 with the provider
    again = await run(world, "2027-01")
    assert (again["released_now"], again["expired_now"]) == (0, 0)
    assert (await world.wallet(client))["balance"] == 60_000


async def test_staging_into_a_short_february_and_out_of_it_carrying_over(world: World) -> None:
    await world.category("transport", "Kuljetus")
    client = await world.client()
    await world.budget(client["id"], {"transport": 10_000}, start="2027-01", unused="carry_over")
    provider = await world.provider(["transport"])
    move_to(world, datetime(2027, 1, 15, 10, 0, tzinfo=UTC), client, provider)
    await run(world, "2027-01", expect=201)
    await world.charge(provider, client, 4_000, category="transport")
    move_to(world, datetime(2027, 1, 31, 21, 59, tzinfo=UTC), client, provider)  # 23:59 on 31 January
    await run(world, "2027-02", expect=201)
    assert (await world.wallet(client))["upcoming"] == [upcoming("2027-02", 10_000, FEB_1)]
    move_to(world, FEB_1, client, provider)
    released = await run(world, "2027-02")
    assert (released["released_now"], released["expired_now"]) == (1, 0)
    assert (await world.wallet(client))["balance"] == 16_000  # January's 6 000 carried over

    move_to(world, datetime(2027, 2, 28, 21, 0, tzinfo=UTC), client, provider)  # 23:00 on 28 February
    await run(world, "2027-03", expect=201)
    wallet = await world.wallet(client)
    assert (wallet["available"], wallet["upcoming"]) == (16_000, [upcoming("2027-03", 10_000, MAR_1)])
    status, _ = await world.charge(provider, client, 16_001, category="transport")
    assert status == 402
    move_to(world, MAR_1, client, provider)
    assert (await run(world, "2027-03"))["released_now"] == 1
    wallet = await world.wallet(client)
    assert (wallet["available"], wallet["upcoming"]) == (26_000, [])


async def test_no_path_spends_a_month_before_its_month(world: World) -> None:
    client, provider = await december_client(world)
    await run(world, "2027-01", expect=201)  # January's 10 000 staged beside December's 10 000
    for method in ("national_id", "otp", "app"):  # a capture at once, or a hold for a code or an approval
        status, body = await world.charge(provider, client, 10_001, category="transport", method=method)
        assert status == 402, (method, body)

    # December's money, spent by each path that captures a hold: a code, the client's and a representative's approval.
    status, by_code = await world.charge(provider, client, 4_000, category="transport", method="otp")
    assert status == 201
    code = world.sms.last_code(client["phone"])
    await world.call("POST", f"/v1/charges/{by_code['id']}/confirm", provider["token"], {"code": code}, expect=200)
    _, by_client = await world.charge(provider, client, 3_000, category="transport", method="app")
    await world.call("POST", f"/v1/me/charges/{by_client['id']}/approve", client["token"], expect=200)
    await link(world, client)
    representative = await representative_token(world)
    _, by_representative = await world.charge(provider, client, 3_000, category="transport", method="app")
    await world.call("POST", f"/v1/me/charges/{by_representative['id']}/approve", representative, expect=200)

    for method in ("national_id", "otp", "app"):
        status, body = await world.charge(provider, client, 1, category="transport", method=method)
        assert status == 402, (method, body)
    transport = line(await world.wallet(client), "transport")
    assert (transport["balance"], transport["available"]) == (0, 0)
    assert transport["upcoming"] == [upcoming("2027-01", 10_000, JAN_1)]

    move_to(world, JAN_1, client, provider)
    await run(world, "2027-01")
    status, _ = await world.charge(provider, client, 10_000, category="transport")
    assert status == 201  # January's money, from January


async def test_a_release_triggered_twice_at_once_happens_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    client, provider = await december_client(world)
    await run(world, "2027-01", expect=201)
    move_to(world, JAN_1, client, provider)
    storage = world.service.storage
    step: Callable[..., Awaitable[dict[str, Any]]] = storage.credit_run_step
    racers = 3  # the organizer twice through the API and the schedule's own run
    arrived = 0
    all_in = asyncio.Event()

    async def together(*args: Any, **kwargs: Any) -> dict[str, Any]:
        """Let no run's step reach the writer before every run has read the same state."""
        nonlocal arrived
        arrived += 1
        if arrived == racers:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 5)
        return await step(*args, **kwargs)

    monkeypatch.setattr(storage, "credit_run_step", together)
    answers = await asyncio.gather(
        world.call("POST", "/v1/credit-runs", world.admin, {"month": "2027-01"}),
        world.call("POST", "/v1/credit-runs", world.finance, {"month": "2027-01"}),
        world.service.credit_run("2027-01"),
    )
    assert arrived == racers
    results = [answers[0][1], answers[1][1], answers[2].value]
    assert sorted(result["released_now"] for result in results) == [0, 0, 2]
    assert sorted(result["expired_now"] for result in results) == [0, 0, 2]
    wallet = await world.wallet(client)
    assert (wallet["balance"], wallet["upcoming"]) == (60_000, [])
    credits = world.sql("SELECT COUNT(*) FROM transactions WHERE type = 'credit' AND month = '2027-01'")
    assert credits[0][0] == 2


async def test_wallet_check_finds_staged_credits_that_do_not_match_the_ledger(world: World) -> None:
    client, _ = await december_client(world)
    await run(world, "2027-01", expect=201)
    transport = f"wallet:{client['id']}:transport"
    budget_id = world.sql("SELECT budget_id FROM staged_credits WHERE account_id = ?", transport)[0][0]
    assert check_database(world.service.settings.db) == []
    with world.database() as database:  # forged in place: this database is broken on purpose
        # December was credited 10 000 at once; a staged credit claiming 12 345 for it is not what the ledger holds.
        database.execute(
            "INSERT INTO staged_credits (account_id, month, budget_id, amount, staged_at) VALUES (?, ?, ?, ?, ?)",
            transport,
            "2026-12",
            budget_id,
            12_345,
            "2026-12-01T00:00:00Z",
        )
        # January's run recorded as finished while January's money is still staged: a missed release.
        database.execute("INSERT INTO month_releases (month, finished_at) VALUES ('2027-01', '2027-01-01T00:00:00Z')")
    breaches = check_database(world.service.settings.db)
    assert any(f"staged credit 2026-12 on {transport}: staged 12345" in breach for breach in breaches), breaches
    assert any(f"staged credit 2027-01 on {transport} (10000) is unreleased" in breach for breach in breaches), breaches
    world.check = lambda: None  # type: ignore[method-assign]


async def test_the_scheduled_run_wakes_at_the_next_months_first_midnight(world: World) -> None:
    """The service's own credit run sleeps at most until the next month begins (``_every``'s
    ``until_next``), so staged money is released at its midnight, not up to an interval later."""
    world.clock.advance(seconds=(datetime(2026, 12, 31, 21, 59, 30, tzinfo=UTC) - world.clock.now()).total_seconds())
    assert world.service.seconds_until_next_month() == 30.0  # 23:59:30 in Helsinki on 31 December
    world.clock.advance(seconds=30)
    assert world.service.current_month() == "2027-01"
    assert world.service.seconds_until_next_month() == 31 * 24 * 3600  # to 1 February, 00:00


async def test_a_background_job_sleeps_until_the_moment_it_must_run_at(monkeypatch: pytest.MonkeyPatch) -> None:
    from wallet.api import app as app_module
    from wallet.api.metrics import Metrics
    from wallet.api.readiness import Jobs

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            raise asyncio.CancelledError

    async def job() -> None:
        return None

    monkeypatch.setattr(app_module.asyncio, "sleep", sleep)
    waits = iter([30.0, 7_200.0])
    with pytest.raises(asyncio.CancelledError):
        await app_module._every(3_600, job, "credit_run", Jobs(Metrics()), until_next=lambda: next(waits))
    assert slept == [30.0, 3_600]  # the month's midnight first, then no longer than the interval


@pytest.mark.postgres_only
async def test_two_nodes_releasing_at_once_on_postgres_release_once(world: World) -> None:
    """A second node (its own storage, writer and connections) on the same database, and the same
    clock: both nodes' runs of January, started together at midnight, release January once."""
    from wallet.bootstrap import open_service

    client, provider = await december_client(world)
    await run(world, "2027-01", expect=201)
    move_to(world, JAN_1, client, provider)
    async with open_service(world.service.settings, clock=world.clock) as other_node:
        results = await asyncio.gather(
            world.service.credit_run("2027-01"),
            other_node.credit_run("2027-01"),
            world.service.credit_run("2027-01"),
            other_node.credit_run("2027-01"),
        )
    assert sorted(result.value["released_now"] for result in results) == [0, 0, 0, 2]
    assert sorted(result.value["expired_now"] for result in results) == [0, 0, 0, 2]
    wallet = await world.wallet(client)
    assert (wallet["balance"], wallet["upcoming"]) == (60_000, [])
    assert world.sql("SELECT COUNT(*) FROM credits WHERE month = '2027-01'")[0][0] == 2
