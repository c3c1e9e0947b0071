"""The client's history (GET /v1/me/transactions): newest first, cursor pages that stay stable
while charges and refunds keep landing between and during the page fetches."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from typing import Any

import pytest

from tests.conftest import World
from wallet.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, provider_charges_burst=1000)


async def all_items(world: World, client: dict[str, Any]) -> list[dict[str, Any]]:
    _, page = await world.call("GET", "/v1/me/transactions?limit=200", client["token"], expect=200)
    assert page["next_cursor"] is None
    return list(page["data"])


async def test_pages_are_stable_while_charges_and_refunds_land(world: World) -> None:
    client, provider = await world.funded(1_000_000)
    token = provider["token"]
    written = 0

    async def charge(amount: int) -> str:
        nonlocal written
        status, body = await world.charge(provider, client, amount)
        assert status == 201, body
        written += 1
        return str(body["id"])

    async def refund(charge_id: str) -> None:
        nonlocal written
        await world.call("POST", f"/v1/charges/{charge_id}/refunds", token, {"amount": 1}, expect=201)
        written += 1

    charges = [await charge(100 + n) for n in range(30)]
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        path = "/v1/me/transactions?limit=7" + (f"&cursor={cursor}" if cursor else "")
        # The page is read while new charges and refunds commit, and more land before the next one.
        during = [charge(500 + pages * 10 + n) for n in range(3)] + [refund(charges[pages])]
        (_, page), *_ = await asyncio.gather(world.call("GET", path, client["token"], expect=200), *during)
        seen += page["data"]
        pages += 1
        for n in range(2):
            await charge(900 + pages * 10 + n)
        cursor = page["next_cursor"]
        if cursor is None:
            break

    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)), "an item came twice"
    everything = await all_items(world, client)
    assert len(everything) == 1 + written  # the credit and every write
    # What the pages gave is exactly the history from the first page's newest item down: newer items
    # land above the cursor, never inside the pages still to come, and nothing was skipped.
    start = [item["id"] for item in everything].index(ids[0])
    assert ids == [item["id"] for item in everything[start:]]
    assert everything[-1]["type"] == "credit" and seen[-1]["type"] == "credit"


async def test_history_items_carry_what_a_client_needs(world: World) -> None:
    client, provider = await world.funded(10_000)
    status, charged = await world.charge(provider, client, 2_500)
    assert status == 201
    await world.call("POST", f"/v1/charges/{charged['id']}/refunds", provider["token"], {"amount": 500}, expect=201)
    refund, capture, credit = await all_items(world, client)
    assert (credit["type"], credit["amount"], credit["balance_after"], credit["category"]) == (
        "credit",
        10_000,
        10_000,
        "home_care",
    )
    assert "provider_name" not in credit
    assert (capture["type"], capture["amount"], capture["balance_after"]) == ("capture", -2_500, 7_500)
    assert capture["provider_name"] == "Hoiva Oy" and capture["charge_id"] == charged["id"]
    assert (refund["type"], refund["amount"], refund["balance_after"]) == ("refund", 500, 8_000)
    assert refund["provider_name"] == "Hoiva Oy"
    assert all(item["created_at"].endswith("Z") for item in (refund, capture, credit))


async def test_a_cursor_from_elsewhere_is_refused(world: World) -> None:
    client, _ = await world.funded(1_000)
    status, body = await world.call("GET", "/v1/me/transactions?cursor=bm9wZQ", client["token"])
    assert status == 422 and body["code"] == "validation_error"


async def test_a_cursor_from_before_schema_3_is_refused_not_read_as_an_event(world: World) -> None:
    """History and a client's charges page by wallet event since schema 3; a cursor of the form they
    had before (a transaction's or a charge's seq) would point elsewhere: it is refused, and the
    client starts again from the top. Each list's cursor is only its own kind."""
    client, provider = await world.funded(10_000)
    for _ in range(3):
        status, _ = await world.charge(provider, client, 100)
        assert status == 201
    old = base64.urlsafe_b64encode(b"c1:3").decode().rstrip("=")
    for path in ("/v1/me/transactions", "/v1/me/charges"):
        status, body = await world.call("GET", f"{path}?cursor={old}", client["token"])
        assert status == 422 and body["code"] == "validation_error", (path, body)
        status, page = await world.call("GET", f"{path}?limit=1", client["token"])
        assert status == 200 and page["next_cursor"] is not None, (path, page)
        assert base64.urlsafe_b64decode(page["next_cursor"] + "==").startswith(b"e1:"), page
        status, rest = await world.call("GET", f"{path}?limit=50&cursor={page['next_cursor']}", client["token"])
        assert status == 200 and rest["next_cursor"] is None and page["data"][0] not in rest["data"], rest
        assert len(page["data"]) + len(rest["data"]) == (4 if path.endswith("transactions") else 3), rest
