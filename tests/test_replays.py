"""A refusal kept with an Idempotency-Key says so when it is answered again (issue 21, item 5).

The first outcome is kept (a retry after a lost answer must not charge what was refused), and the
retry is marked ``Idempotent-Replayed: true`` like a replayed success, so that the caller can tell
a kept refusal from a fresh one and knows a new key is needed to try again.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import NATIONAL_ID, World


def charge_body(client: dict[str, Any], amount: int) -> dict[str, Any]:
    identity = {"method": "national_id", "national_id": NATIONAL_ID}
    return {"phone": client["phone"], "amount": amount, "category": "home_care", "identity": identity}


async def post_charge(world: World, provider: dict[str, Any], client: dict[str, Any], amount: int, key: str) -> Any:
    return await world.http.post(
        "/v1/charges",
        json=charge_body(client, amount),
        headers=world.auth(provider["token"], **{"Idempotency-Key": key}),
    )


async def test_a_refusal_answered_again_for_its_key_is_marked_replayed(world: World) -> None:
    client, provider = await world.funded(1_000)
    _, captured = await world.charge(provider, client, 800, key="visit-1")
    refused = await post_charge(world, provider, client, 500, "visit-2")
    assert refused.status == 402 and "Idempotent-Replayed" not in refused.headers
    first = await refused.json()
    # A refund frees enough on the line: a fresh request would now pass, the kept outcome still stands.
    await world.call("POST", f"/v1/charges/{captured['id']}/refunds", provider["token"], {"amount": 300}, expect=201)
    assert (await world.wallet(client))["available"] == 500

    again = await post_charge(world, provider, client, 500, "visit-2")
    assert again.status == 402
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.content_type == "application/problem+json"
    assert (await again.json())["code"] == first["code"] == "insufficient_funds"
    assert (await world.wallet(client))["available"] == 500  # nothing charged by the replay

    fresh = await post_charge(world, provider, client, 500, "visit-3")
    assert fresh.status == 201 and "Idempotent-Replayed" not in fresh.headers


async def test_a_fresh_refusal_is_not_marked_replayed(world: World) -> None:
    client, provider = await world.funded(100)
    for key in ("a", "b"):
        response = await post_charge(world, provider, client, 5_000, key)
        assert response.status == 402 and "Idempotent-Replayed" not in response.headers
