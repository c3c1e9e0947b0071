"""Guessing limits: per wallet, per provider, a throttle on charge storms; lockouts visible to the
organizer and lifted by time."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from tests.conftest import OTHER_NATIONAL_ID, START, RecordingSms, World
from wallet.api.app import create_app
from wallet.auth.tokens import Role
from wallet.clock import FakeClock
from wallet.settings import Settings


async def test_a_wallet_lockout_is_visible_to_the_organizer_and_expires(world: World) -> None:
    client, provider = await world.funded(1_000)
    _, fresh = await world.call("GET", f"/v1/clients/{client['id']}", world.admin, expect=200)
    assert fresh["identity_lockout"] == {"failures": 0, "max_failures": 5, "window_seconds": 900, "locked_until": None}
    for _ in range(5):
        await world.charge(provider, client, 100, national_id=OTHER_NATIONAL_ID)
    _, locked = await world.call("GET", f"/v1/clients/{client['id']}", world.admin, expect=200)
    assert locked["identity_lockout"]["failures"] == 5
    assert locked["identity_lockout"]["locked_until"] == "2027-01-15T10:15:00.000Z"
    world.clock.advance(seconds=901)
    world.admin = world.token(Role.ADMIN)  # the old token has expired
    _, lifted = await world.call("GET", f"/v1/clients/{client['id']}", world.admin, expect=200)
    assert lifted["identity_lockout"]["locked_until"] is None


async def test_one_provider_guessing_across_many_wallets_is_locked_out(world: World) -> None:
    await world.category()
    provider = await world.provider(["home_care"])
    wallets = []
    for _ in range(6):
        client = await world.client()
        await world.budget(client["id"], {"home_care": 1_000})
        wallets.append(client)
    await world.credit()
    # 4 wrong guesses on each of 5 wallets: no wallet reaches its own limit, the provider does.
    for client in wallets[:5]:
        for _ in range(4):
            status, _ = await world.charge(provider, client, 100, national_id=OTHER_NATIONAL_ID)
            assert status == 422
    status, body = await world.charge(provider, wallets[5], 100)  # even a right guess
    assert status == 429 and "provider" in body["detail"]
    _, seen = await world.call("GET", f"/v1/providers/{provider['id']}", world.admin, expect=200)
    assert seen["identity_lockout"]["failures"] == 20 and seen["identity_lockout"]["locked_until"]
    other = await world.provider(["home_care"])
    status, _ = await world.charge(other, wallets[5], 100)
    assert status == 201  # another provider is not affected


async def test_a_charge_storm_from_one_provider_is_throttled(
    aiohttp_client: Any, settings: Settings, sms: RecordingSms
) -> None:
    clock = FakeClock(START)
    app = create_app(
        replace(settings, provider_charges_per_second=1, provider_charges_burst=5),
        clock=clock,
        sms=sms,
        background_jobs=False,
    )
    world = World(await aiohttp_client(app), sms, clock)
    client, provider = await world.funded(100_000)
    results = await asyncio.gather(*(world.charge(provider, client, 10) for _ in range(8)))
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 5 and statuses.count(429) == 3
    throttled = next(body for status, body in results if status == 429)
    assert throttled["code"] == "rate_limited" and throttled["retry_after_seconds"] == 1
    clock.advance(seconds=2)
    status, _ = await world.charge(provider, client, 10)
    assert status == 201
    world.check()


async def test_a_replay_is_answered_even_when_the_provider_is_throttled(
    aiohttp_client: Any, settings: Settings, sms: RecordingSms
) -> None:
    clock = FakeClock(START)
    app = create_app(
        replace(settings, provider_charges_per_second=1, provider_charges_burst=1),
        clock=clock,
        sms=sms,
        background_jobs=False,
    )
    world = World(await aiohttp_client(app), sms, clock)
    client, provider = await world.funded(1_000)
    first = await world.charge(provider, client, 10, key="once")
    assert first[0] == 201
    assert (await world.charge(provider, client, 10, key="other"))[0] == 429
    assert await world.charge(provider, client, 10, key="once") == first
    world.check()
