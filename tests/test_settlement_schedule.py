"""Automatic settlement on the organizer's days (WALLET_SETTLEMENT_DAYS, default 1, 8, 16, 24):
every provider's lines made before the day began, once, if their net reaches the minimum."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from tests.conftest import OTHER_NATIONAL_ID, World
from wallet.api.app import create_app
from wallet.auth.tokens import Role
from wallet.clock import FakeClock
from wallet.ledger.errors import ValidationError
from wallet.ledger.schedule import is_settlement_day, parse_days
from wallet.settings import Settings

WAIT_ROUNDS = 200  # 10 s at most for a background job's first run to commit


def fresh(world: World, provider: dict) -> dict:
    """The provider with a token minted now (the clock moves past token lifetimes here)."""
    return {**provider, "token": world.token(Role.PROVIDER, provider_id=provider["id"])}


async def settlements_of(world: World, provider: dict) -> list[dict]:
    _, page = await world.call("GET", "/v1/settlements", fresh(world, provider)["token"], expect=200)
    return page["data"]


async def test_on_a_settlement_day_the_lines_before_midnight_are_settled_once(world: World) -> None:
    client, provider = await world.funded(10_000)
    await world.charge(provider, client, 1_200)  # 15 January, noon in Helsinki: not a settlement day
    await world.charge(provider, client, 300)
    assert (await world.service.settle_due())["settlement_day"] is False
    assert await settlements_of(world, provider) == []

    world.clock.advance(hours=12)  # 16 January, 00:00 in Helsinki (22:00 UTC): a settlement day
    await world.charge(fresh(world, provider), client, 500)  # made on the day itself: waits for the next one
    result = await world.service.settle_due()
    assert result["settlement_day"] is True and result["until"] == "2027-01-15T21:59:59.999Z"
    [batch] = result["settlements"]
    assert (batch["amount"], batch["count"]) == (1_500, 2)
    listed = await settlements_of(world, provider)
    assert [s["id"] for s in listed] == [batch["id"]] and listed[0]["reference"] == batch["reference"]

    world.clock.advance(hours=5)  # the check runs again the same day: nothing more
    again = await world.service.settle_due()
    assert again["settlements"] == [] and len(await settlements_of(world, provider)) == 1

    world.clock.advance(days=8)  # 24 January: the 500 of the 16th is settled now
    [later] = (await world.service.settle_due())["settlements"]
    assert (later["amount"], later["count"]) == (500, 1)


async def test_two_checks_at_once_make_one_batch(world: World) -> None:
    client, provider = await world.funded(10_000)
    for amount in (100, 200, 300):
        await world.charge(provider, client, amount)
    world.clock.advance(days=1)  # the 16th
    first, second = await asyncio.gather(world.service.settle_due(), world.service.settle_due())
    batches = first["settlements"] + second["settlements"]
    assert len(batches) == 1 and batches[0]["amount"] == 600
    assert len(await settlements_of(world, provider)) == 1


async def test_below_the_minimum_or_owing_a_provider_waits(world: World) -> None:
    world.service.settings = replace(world.service.settings, settlement_min_amount=1_000)
    client, small = await world.funded(10_000)
    big = await world.provider(["home_care"])
    owing = await world.provider(["home_care"])
    await world.charge(small, client, 999)
    await world.charge(big, client, 1_000)
    _, refunded = await world.charge(owing, client, 2_000)
    # The owing provider's capture is settled by its own request, then refunded: its net is -2,000.
    await world.call("POST", "/v1/settlements", owing["token"], {}, expect=201)
    await world.call("POST", f"/v1/charges/{refunded['id']}/refunds", owing["token"], {"amount": 2_000}, expect=201)
    world.clock.advance(days=1)
    result = await world.service.settle_due()
    assert [(s["provider_id"], s["amount"]) for s in result["settlements"]] == [(big["id"], 1_000)]
    assert result["waiting"] == 2
    assert await settlements_of(world, small) == []
    assert len(await settlements_of(world, owing)) == 1


async def test_more_lines_than_one_batch_holds_are_settled_in_several(world: World) -> None:
    world.service.settings = replace(world.service.settings, settlement_items_max=2)
    client, provider = await world.funded(10_000)
    other = await world.client(national_id=OTHER_NATIONAL_ID, phone="+358401111222")
    await world.budget(other["id"], {"home_care": 5_000})
    await world.credit()
    for amount in (10, 20, 30, 40, 50):
        await world.charge(provider, client, amount)
    world.clock.advance(days=1)
    made = (await world.service.settle_due())["settlements"]
    assert [(s["count"], s["amount"]) for s in made] == [(2, 30), (2, 70), (1, 50)]


def test_the_schedule_days() -> None:
    days = parse_days("1,8,16,24")
    assert [d for d in range(1, 32) if is_settlement_day(date(2027, 1, d), days)] == [1, 8, 16, 24]
    month_end = parse_days("15,31")  # the 31st falls on the last day of a shorter month
    assert is_settlement_day(date(2027, 2, 28), month_end) and not is_settlement_day(date(2027, 2, 27), month_end)
    for bad in ("", "0", "32", "1,,8", "monday"):
        with pytest.raises(ValidationError):
            parse_days(bad)


async def test_the_service_runs_the_schedule_by_itself(
    aiohttp_client: Any, settings: Settings, clock: FakeClock, sms: Any
) -> None:
    """With background jobs on, the service settles on a settlement day without being asked."""
    clock.advance(days=1)  # 16 January 2027, 12:00 in Helsinki: a settlement day
    app = create_app(replace(settings, auto_settlement=True), clock=clock, sms=sms, background_jobs=False)
    http = await aiohttp_client(app)
    world = World(http, sms, clock)
    client, provider = await world.funded(5_000)
    clock.advance(days=-1)  # make a charge on the 15th ...
    await world.charge(fresh(world, provider), client, 700)
    clock.advance(days=1)  # ... then start a node with its jobs on the 16th
    node = create_app(replace(settings, auto_settlement=True), clock=clock, sms=sms, background_jobs=True)
    await aiohttp_client(node)
    for _ in range(WAIT_ROUNDS):  # the job's first run happens at start; wait for its commit, bounded
        if await settlements_of(world, provider):
            break
        await asyncio.sleep(0.05)
    [batch] = await settlements_of(world, provider)
    assert (batch["amount"], batch["count"]) == (700, 1)
