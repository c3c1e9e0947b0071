"""Charges through the HTTP API: overspending refused atomically, identity checks, holds,
void, refunds, idempotency."""

from __future__ import annotations

import asyncio

from tests.conftest import OTHER_NATIONAL_ID, World
from wallet.auth.tokens import Role


async def test_concurrent_charges_never_overspend_a_line(world: World) -> None:
    client, provider = await world.funded(10_000)
    results = await asyncio.gather(*(world.charge(provider, client, 300, key=f"race-{n}") for n in range(60)))
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 33  # 33 × 300 = 9 900 ≤ 10 000 < 34 × 300
    assert statuses.count(402) == 27
    assert all(body["code"] == "insufficient_funds" for status, body in results if status == 402)
    wallet = await world.wallet(client)
    assert wallet["balance"] == 100 and wallet["available"] == 100
    _, page = await world.call("GET", "/v1/charges?limit=200", provider["token"], expect=200)
    assert len(page["data"]) == 33


async def test_concurrent_otp_holds_and_direct_charges_share_one_available(world: World) -> None:
    client, provider = await world.funded(5_000)
    calls = [world.charge(provider, client, 1_000, method="otp") for _ in range(4)]
    calls += [world.charge(provider, client, 1_000) for _ in range(4)]
    results = await asyncio.gather(*calls)
    assert sorted(status for status, _ in results).count(201) == 5
    wallet = await world.wallet(client)
    assert wallet["available"] == 0
    assert wallet["balance"] - wallet["held"] == 0


async def test_insufficient_funds_writes_nothing(world: World) -> None:
    client, provider = await world.funded(1_000)
    status, body = await world.charge(provider, client, 1_001)
    assert status == 402 and body["code"] == "insufficient_funds"
    assert (await world.wallet(client))["available"] == 1_000
    _, page = await world.call("GET", "/v1/charges", provider["token"], expect=200)
    assert page["data"] == []


async def test_a_charge_draws_only_on_its_own_category_line(world: World) -> None:
    await world.category("home_care")
    await world.category("transport", "Kuljetus")
    client = await world.client()
    await world.budget(client["id"], {"home_care": 1_000, "transport": 5_000})
    await world.credit()
    provider = await world.provider(["home_care", "transport"])
    status, _ = await world.charge(provider, client, 1_500, category="home_care")
    assert status == 402  # transport's money is not home care's
    status, _ = await world.charge(provider, client, 1_500, category="transport")
    assert status == 201
    lines = {line["category"]: line for line in (await world.wallet(client))["lines"]}
    assert lines["home_care"]["available"] == 1_000 and lines["transport"]["available"] == 3_500
    assert lines["transport"]["monthly_amount"] == 5_000


async def test_wrong_national_id_is_refused_and_moves_nothing(world: World) -> None:
    client, provider = await world.funded(1_000)
    status, body = await world.charge(provider, client, 100, national_id=OTHER_NATIONAL_ID)
    assert status == 422 and body["code"] == "identity_check_failed"
    assert (await world.wallet(client))["available"] == 1_000


async def test_a_client_without_a_stored_national_id_cannot_pass_that_check(world: World) -> None:
    client, provider = await world.funded(1_000, national_id=None)
    status, body = await world.charge(provider, client, 100)
    assert status == 422 and body["code"] == "identity_check_failed"


async def test_failed_identity_checks_are_rate_limited_per_wallet(world: World) -> None:
    client, provider = await world.funded(1_000)
    for _ in range(5):
        status, _ = await world.charge(provider, client, 100, national_id=OTHER_NATIONAL_ID)
        assert status == 422
    response = await world.http.post(
        "/v1/charges",
        json={
            "phone": client["phone"],
            "amount": 100,
            "category": "home_care",
            "identity": {"method": "national_id", "national_id": "131052-308T"},
        },  # the right one
        headers=world.auth(provider["token"]),
    )
    assert response.status == 429
    assert (await response.json())["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 900
    world.clock.advance(seconds=901)
    status, body = await world.charge(provider, client, 100)
    assert status == 201, body


async def test_otp_charge_holds_then_captures_with_the_code(world: World) -> None:
    client, provider = await world.funded(1_000)
    status, charge = await world.charge(provider, client, 400, method="otp")
    assert status == 201 and charge["status"] == "pending" and charge["expires_at"]
    wallet = await world.wallet(client)
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (1_000, 400, 600)
    code = world.sms.last_code(client["phone"])
    status, body = await world.call("POST", f"/v1/charges/{charge['id']}/confirm", provider["token"], {"code": code})
    assert status == 200 and body["status"] == "captured"
    wallet = await world.wallet(client)
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (600, 0, 600)
    # A code is single-use.
    status, body = await world.call("POST", f"/v1/charges/{charge['id']}/confirm", provider["token"], {"code": code})
    assert status == 409


async def test_five_wrong_codes_void_the_charge_and_release_the_hold(world: World) -> None:
    client, provider = await world.funded(1_000)
    _, charge = await world.charge(provider, client, 400, method="otp")
    right = world.sms.last_code(client["phone"])
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for attempt in range(1, 6):
        status, body = await world.call(
            "POST", f"/v1/charges/{charge['id']}/confirm", provider["token"], {"code": wrong}
        )
        assert status == 422 and body["code"] == "identity_check_failed"
        assert body["attempts_left"] == 5 - attempt
    _, after = await world.call("GET", f"/v1/charges/{charge['id']}", provider["token"], expect=200)
    assert after["status"] == "voided" and after["void_reason"] == "too_many_attempts"
    assert (await world.wallet(client))["held"] == 0
    status, _ = await world.call("POST", f"/v1/charges/{charge['id']}/confirm", provider["token"], {"code": right})
    assert status == 409


async def test_an_expired_hold_is_voided_by_the_service(world: World) -> None:
    client, provider = await world.funded(1_000)
    _, charge = await world.charge(provider, client, 400, method="otp")
    world.clock.advance(seconds=299)
    assert await world.service.sweep_expired_holds() == 0
    world.clock.advance(seconds=2)
    assert await world.service.sweep_expired_holds() == 1
    _, after = await world.call("GET", f"/v1/charges/{charge['id']}", provider["token"], expect=200)
    assert after["status"] == "voided" and after["void_reason"] == "expired"
    assert (await world.wallet(client))["available"] == 1_000


async def test_confirming_after_expiry_voids_and_refuses(world: World) -> None:
    client, provider = await world.funded(1_000)
    _, charge = await world.charge(provider, client, 400, method="otp")
    code = world.sms.last_code(client["phone"])
    world.clock.advance(seconds=301)
    status, body = await world.call("POST", f"/v1/charges/{charge['id']}/confirm", provider["token"], {"code": code})
    assert status == 409 and body["charge_status"] == "voided"
    assert (await world.wallet(client))["held"] == 0


async def test_void_releases_a_hold_but_not_a_capture(world: World) -> None:
    client, provider = await world.funded(1_000)
    _, pending = await world.charge(provider, client, 400, method="otp")
    status, body = await world.call("POST", f"/v1/charges/{pending['id']}/void", provider["token"])
    assert status == 201 and body["status"] == "voided"
    assert (await world.wallet(client))["available"] == 1_000
    _, captured = await world.charge(provider, client, 300)
    status, body = await world.call("POST", f"/v1/charges/{captured['id']}/void", provider["token"])
    assert status == 409 and body["code"] == "conflict"


async def test_refunds_return_money_up_to_the_capture(world: World) -> None:
    client, provider = await world.funded(1_000)
    _, charge = await world.charge(provider, client, 600)
    path = f"/v1/charges/{charge['id']}/refunds"
    status, refund = await world.call("POST", path, provider["token"], {"amount": 200})
    assert status == 201 and refund["amount"] == 200 and refund["charge_id"] == charge["id"]
    status, body = await world.call("POST", path, provider["token"], {"amount": 401})
    assert status == 422 and body["code"] == "refund_exceeds_capture" and body["refundable_amount"] == 400
    status, _ = await world.call("POST", path, provider["token"], {"amount": 400})
    assert status == 201
    assert (await world.wallet(client))["available"] == 1_000
    _, pending = await world.charge(provider, client, 100, method="otp")
    status, _ = await world.call("POST", f"/v1/charges/{pending['id']}/refunds", provider["token"], {"amount": 50})
    assert status == 409


async def test_concurrent_refunds_never_exceed_the_capture(world: World) -> None:
    client, provider = await world.funded(1_000)
    _, charge = await world.charge(provider, client, 1_000)
    path = f"/v1/charges/{charge['id']}/refunds"
    results = await asyncio.gather(*(world.call("POST", path, provider["token"], {"amount": 300}) for _ in range(10)))
    assert sorted(status for status, _ in results).count(201) == 3
    assert (await world.wallet(client))["available"] == 900


async def test_idempotent_replay_returns_the_first_response(world: World) -> None:
    client, provider = await world.funded(1_000)
    first = await world.charge(provider, client, 300, key="order-1")
    second = await world.charge(provider, client, 300, key="order-1")
    assert first == second and first[0] == 201
    assert (await world.wallet(client))["available"] == 700
    # The same key with another body is refused and changes nothing.
    status, body = await world.charge(provider, client, 301, key="order-1")
    assert status == 422 and body["code"] == "idempotency_key_reuse"
    assert (await world.wallet(client))["available"] == 700


async def test_a_refused_request_is_replayed_as_refused(world: World) -> None:
    client, provider = await world.funded(1_000)
    first = await world.charge(provider, client, 5_000, key="too-much")
    assert first[0] == 402
    await world.call("POST", "/v1/credit-runs", world.admin, {"month": "2027-02"})
    assert await world.charge(provider, client, 5_000, key="too-much") == first


async def test_concurrent_requests_with_one_key_have_one_effect(world: World) -> None:
    client, provider = await world.funded(10_000)
    results = await asyncio.gather(*(world.charge(provider, client, 300, key="same") for _ in range(20)))
    assert all(result == results[0] for result in results) and results[0][0] == 201
    _, page = await world.call("GET", "/v1/charges", provider["token"], expect=200)
    assert len(page["data"]) == 1
    assert (await world.wallet(client))["available"] == 9_700


async def test_idempotency_keys_are_scoped_per_provider(world: World) -> None:
    client, provider = await world.funded(1_000)
    other = await world.provider(["home_care"])
    assert (await world.charge(provider, client, 100, key="k"))[0] == 201
    assert (await world.charge(other, client, 200, key="k"))[0] == 201
    assert (await world.wallet(client))["available"] == 700


async def test_otp_replay_sends_no_second_code(world: World) -> None:
    client, provider = await world.funded(1_000)
    first = await world.charge(provider, client, 100, method="otp", key="otp-1")
    sent = len(world.sms.sent)
    assert await world.charge(provider, client, 100, method="otp", key="otp-1") == first
    assert len(world.sms.sent) == sent


async def test_charges_list_pages_newest_first_and_is_the_providers_own(world: World) -> None:
    client, provider = await world.funded(10_000)
    ids = [(await world.charge(provider, client, 100 + n))[1]["id"] for n in range(5)]
    other = await world.provider(["home_care"])
    await world.charge(other, client, 50)
    seen: list[str] = []
    cursor = None
    while True:
        path = "/v1/charges?limit=2" + (f"&cursor={cursor}" if cursor else "")
        _, page = await world.call("GET", path, provider["token"], expect=200)
        seen += [charge["id"] for charge in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    status, body = await world.call("GET", "/v1/charges?cursor=bogus", provider["token"])
    assert status == 422 and body["field"] == "cursor"


async def test_client_history_is_signed_newest_first_with_provider_names(world: World) -> None:
    client, provider = await world.funded(1_000)
    _, charge = await world.charge(provider, client, 250)
    await world.call("POST", f"/v1/charges/{charge['id']}/refunds", provider["token"], {"amount": 50})
    _, page = await world.call("GET", "/v1/me/transactions", client["token"], expect=200)
    items = page["data"]
    assert [(i["type"], i["amount"]) for i in items] == [("refund", 50), ("capture", -250), ("credit", 1_000)]
    assert items[0]["provider_name"] == "Hoiva Oy" and "provider_name" not in items[2]
    assert [i["balance_after"] for i in items] == [800, 750, 1_000]
    assert all(i["category"] == "home_care" and i["created_at"].endswith("Z") for i in items)


async def test_idempotency_keys_are_kept_for_their_retention_then_forgotten(world: World) -> None:
    client, provider = await world.funded(1_000)
    await world.charge(provider, client, 100, key="kept")
    world.clock.advance(hours=47)
    assert await world.service.purge_idempotency_keys() == 0
    provider["token"] = world.token(Role.PROVIDER, provider_id=provider["id"])
    assert (await world.charge(provider, client, 100, key="kept"))[0] == 201
    assert (await world.wallet({**client, "token": world.token(Role.CLIENT, client_id=client["id"])}))[
        "available"
    ] == 900
    world.clock.advance(hours=2)
    assert await world.service.purge_idempotency_keys() == 1


async def test_a_new_charge_answers_exactly_what_is_stored(world: World) -> None:
    """The 201 body is rendered from the values written, not read back: it must be the stored charge."""
    client, provider = await world.funded(10_000)
    for method in ("national_id", "otp", "app"):
        status, created = await world.charge(provider, client, 700, method=method, key=f"same-{method}")
        assert status == 201, created
        _, stored = await world.call("GET", f"/v1/charges/{created['id']}", provider["token"], expect=200)
        assert created == stored
        assert ("captured_at" in created) is (method == "national_id")
        assert ("expires_at" in created) is (method != "national_id")
        status, replayed = await world.charge(provider, client, 700, method=method, key=f"same-{method}")
        assert status == 201 and replayed == created
