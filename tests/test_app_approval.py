"""Approval in the app: a charge with identity method "app" is held until its client approves
(captured) or declines (voided); unanswered, it expires and is voided. Only one's own charges."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import RecordingSms, World
from tests.test_openapi import CheckedWorld, Contract, fetch_document
from wallet.clock import FakeClock


async def app_charge(world: World, provider: dict[str, Any], client: dict[str, Any], amount: int) -> dict[str, Any]:
    status, body = await world.charge(provider, client, amount, method="app")
    assert status == 201, body
    assert body["status"] == "pending" and body["method"] == "app" and body["expires_at"]
    return dict(body)


async def pending(world: World, client: dict[str, Any]) -> list[dict[str, Any]]:
    _, page = await world.call("GET", "/v1/me/charges?status=pending", client["token"], expect=200)
    return list(page["data"])


async def next_event(response: Any) -> dict[str, Any]:
    """The next SSE event's data from a /v1/me/events response, within a deadline."""

    async def read() -> dict[str, Any]:
        data = None
        while True:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
            elif not line and data is not None:
                return dict(data)

    return await asyncio.wait_for(read(), 5)


async def test_the_client_approves_a_held_charge_in_the_app(world: World) -> None:
    client, provider = await world.funded(10_000)
    stream = await world.http.get("/v1/me/events", headers=world.auth(client["token"]))
    try:
        assert (await next_event(stream))["balance"] == 10_000  # the opening snapshot
        sent_before = len(world.sms.sent)
        charge = await app_charge(world, provider, client, 2_500)
        assert len(world.sms.sent) == sent_before  # no code: the client answers in the app

        held = await next_event(stream)
        assert (held["type"], held["charge_id"], held["method"], held["amount"]) == (
            "hold",
            charge["id"],
            "app",
            -2_500,
        )
        assert held["provider_name"] == "Hoiva Oy" and held["expires_at"] == charge["expires_at"]
        waiting = await pending(world, client)
        assert [(c["id"], c["provider_name"], c["amount"]) for c in waiting] == [(charge["id"], "Hoiva Oy", 2_500)]
        assert (await world.wallet(client))["available"] == 7_500

        path = f"/v1/me/charges/{charge['id']}/approve"
        _, approved = await world.call("POST", path, client["token"], key="approve-1", expect=200)
        assert approved["status"] == "captured" and approved["provider_name"] == "Hoiva Oy"
        captured = await next_event(stream)
        assert (captured["type"], captured["charge_id"], captured["balance"]) == ("capture", charge["id"], 7_500)
    finally:
        stream.close()

    # A retry with the same key answers the same; a second answer is a conflict.
    response = await world.http.post(path, headers=world.auth(client["token"], **{"Idempotency-Key": "approve-1"}))
    assert response.status == 200 and response.headers["Idempotent-Replayed"] == "true"
    status, body = await world.call("POST", path, client["token"])
    assert status == 409 and body["code"] == "conflict" and body["charge_status"] == "captured"
    _, seen_by_provider = await world.call("GET", f"/v1/charges/{charge['id']}", provider["token"], expect=200)
    assert seen_by_provider["status"] == "captured"
    wallet = await world.wallet(client)
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (7_500, 0, 7_500)
    assert await pending(world, client) == []


async def test_the_client_declines_and_the_hold_is_released(world: World) -> None:
    client, provider = await world.funded(10_000)
    charge = await app_charge(world, provider, client, 4_000)
    _, declined = await world.call("POST", f"/v1/me/charges/{charge['id']}/decline", client["token"], expect=200)
    assert declined["status"] == "voided" and declined["void_reason"] == "declined_by_client"
    wallet = await world.wallet(client)
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (10_000, 0, 10_000)
    _, history = await world.call("GET", "/v1/me/transactions", client["token"], expect=200)
    assert [item["type"] for item in history["data"]] == ["credit"]  # a hold released moves no money
    _, seen_by_provider = await world.call("GET", f"/v1/charges/{charge['id']}", provider["token"], expect=200)
    assert seen_by_provider["status"] == "voided"


async def test_an_unanswered_request_expires_and_is_voided(world: World) -> None:
    client, provider = await world.funded(10_000)
    swept = await app_charge(world, provider, client, 1_000)
    late = await app_charge(world, provider, client, 2_000)
    world.clock.advance(seconds=world.service.settings.approval_ttl_seconds + 1)
    assert await world.service.sweep_expired_holds() == 2
    status, body = await world.call("POST", f"/v1/me/charges/{swept['id']}/approve", client["token"])
    assert status == 409 and body["charge_status"] == "voided"
    assert (await world.wallet(client))["available"] == 10_000
    assert await pending(world, client) == []
    _, voided = await world.call("GET", "/v1/me/charges?status=voided", client["token"], expect=200)
    assert {c["id"]: c["void_reason"] for c in voided["data"]} == {swept["id"]: "expired", late["id"]: "expired"}


async def test_an_answer_after_expiry_voids_instead_of_capturing(world: World) -> None:
    client, provider = await world.funded(10_000)
    charge = await app_charge(world, provider, client, 1_000)
    world.clock.advance(seconds=world.service.settings.approval_ttl_seconds)  # the sweeper has not run
    status, body = await world.call("POST", f"/v1/me/charges/{charge['id']}/approve", client["token"])
    assert status == 409 and body["charge_status"] == "voided"
    wallet = await world.wallet(client)
    assert (wallet["balance"], wallet["available"]) == (10_000, 10_000)


async def test_only_the_charged_client_answers_and_only_app_charges(world: World) -> None:
    client, provider = await world.funded(10_000)
    other = await world.client(phone="+358401112226")
    charge = await app_charge(world, provider, client, 1_000)
    status, body = await world.call("POST", f"/v1/me/charges/{charge['id']}/approve", other["token"])
    assert status == 404 and body["code"] == "not_found"
    assert await pending(world, other) == []
    await world.call("POST", f"/v1/me/charges/{charge['id']}/approve", provider["token"], expect=403)
    # The provider cannot confirm it with a code: the client answers it.
    status, body = await world.call(
        "POST", f"/v1/charges/{charge['id']}/confirm", provider["token"], {"code": "123456"}
    )
    assert status == 409
    # An SMS-code charge is not the client's to approve.
    status, otp = await world.charge(provider, client, 500, method="otp")
    assert status == 201
    status, body = await world.call("POST", f"/v1/me/charges/{otp['id']}/approve", client["token"])
    assert status == 409 and body["code"] == "conflict"
    await world.call("GET", "/v1/me/charges?status=maybe", client["token"], expect=422)


async def test_racing_answers_settle_the_charge_once(world: World) -> None:
    client, provider = await world.funded(100_000)
    charges = [await app_charge(world, provider, client, 1_000) for _ in range(10)]
    calls = []
    for charge in charges:
        calls.append(world.call("POST", f"/v1/me/charges/{charge['id']}/approve", client["token"]))
        calls.append(world.call("POST", f"/v1/me/charges/{charge['id']}/decline", client["token"]))
        calls.append(world.call("POST", f"/v1/charges/{charge['id']}/void", provider["token"]))
    results = await asyncio.gather(*calls)
    for n in range(10):
        statuses = [status for status, _ in results[3 * n : 3 * n + 3]]
        assert sorted(statuses) == [200, 409, 409], statuses
    captured = sum(1 for status, body in results[0::3] if status == 200)
    wallet = await world.wallet(client)
    assert wallet["held"] == 0 and wallet["balance"] == 100_000 - 1_000 * captured


async def test_the_client_charge_responses_match_the_openapi_document(
    http: TestClient, sms: RecordingSms, clock: FakeClock
) -> None:
    w = CheckedWorld(http, sms, clock)
    w.contract = Contract(await fetch_document(http))
    client, provider = await w.funded(10_000)
    approved, declined = [await app_charge(w, provider, client, 1_000) for _ in range(2)]
    await w.call("GET", "/v1/me/charges?status=pending&limit=1", client["token"], expect=200)
    await w.call("GET", "/v1/me/charges?status=nope", client["token"], expect=422)
    await w.call("POST", f"/v1/me/charges/{approved['id']}/approve", client["token"], key="a-1", expect=200)
    await w.call("POST", f"/v1/me/charges/{approved['id']}/approve", client["token"], key="a-1", expect=200)
    await w.call("POST", f"/v1/me/charges/{declined['id']}/decline", client["token"], expect=200)
    await w.call("POST", f"/v1/me/charges/{declined['id']}/approve", client["token"], expect=409)
    await w.call("POST", "/v1/me/charges/ch_nobody/decline", client["token"], expect=404)
    await w.call("POST", "/v1/me/charges/ch_nobody/decline", provider["token"], expect=403)
    await w.call("GET", "/v1/me/charges", client["token"], expect=200)
    await w.call("GET", "/v1/me/wallet", client["token"], expect=200)
    exercised = {(method, path) for method, path, _ in w.contract.seen}
    assert {
        ("GET", "/v1/me/charges"),
        ("POST", "/v1/me/charges/{charge_id}/approve"),
        ("POST", "/v1/me/charges/{charge_id}/decline"),
    } <= exercised
