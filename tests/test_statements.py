"""Monthly statements (GET /v1/me/statements/{YYYY-MM}): every kind of movement across months,
month boundaries in Helsinki time, and numbers that add up and agree with the history."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from tests.conftest import BUSINESS_ID, IBAN, RecordingSms, World
from tests.test_openapi import CheckedWorld, Contract, fetch_document
from wallet.auth.tokens import Role
from wallet.clock import FakeClock

HELSINKI = ZoneInfo("Europe/Helsinki")


def at_local(world: World, moment: str, *parties: dict[str, Any]) -> None:
    """Move the fake clock to ``moment`` (``YYYY-MM-DDTHH:MM``, Helsinki time) and give the organizer
    and ``parties`` (clients and providers) fresh tokens: the old ones have expired."""
    target = datetime.fromisoformat(moment).replace(tzinfo=HELSINKI)
    delta = target - world.clock.now()
    assert delta.total_seconds() >= 0, "time only moves forward"
    world.clock.advance(seconds=delta.total_seconds())
    world.admin = world.token(Role.ADMIN)
    for party in parties:
        if party["id"].startswith("pr_"):
            party["token"] = world.token(Role.PROVIDER, provider_id=party["id"])
        else:
            party["token"] = world.token(Role.CLIENT, client_id=party["id"])


async def provider(world: World, name: str, categories: list[str]) -> dict[str, Any]:
    body = {"name": name, "business_id": BUSINESS_ID, "iban": IBAN, "categories": categories}
    _, created = await world.call("POST", "/v1/providers", world.admin, body, expect=201)
    await world.call("POST", f"/v1/providers/{created['id']}/approve", world.admin, expect=200)
    created["token"] = world.token(Role.PROVIDER, provider_id=created["id"])
    return created


async def captured(world: World, by: dict[str, Any], client: dict[str, Any], amount: int, category: str) -> str:
    status, body = await world.charge(by, client, amount, category=category)
    assert status == 201 and body["status"] == "captured", body
    return str(body["id"])


async def statement(world: World, client: dict[str, Any], month: str) -> dict[str, Any]:
    return (await world.call("GET", f"/v1/me/statements/{month}", client["token"], expect=200))[1]


def adds_up(figures: dict[str, Any]) -> bool:
    def amount(value: Any) -> int:
        return int(value["amount"]) if isinstance(value, dict) else int(value)

    return amount(figures["opening_balance"]) + amount(figures["credits"]) - amount(figures["charges"]) + amount(
        figures["refunds"]
    ) - amount(figures["expiry"]) == amount(figures["closing_balance"])


async def history(world: World, client: dict[str, Any]) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        path = "/v1/me/transactions?limit=200" + (f"&cursor={cursor}" if cursor else "")
        _, page = await world.call("GET", path, client["token"], expect=200)
        items += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_statements_add_up_across_months_with_every_kind_of_movement(world: World) -> None:
    await world.category("home_care")
    await world.category("transport", "Kuljetus")
    client = await world.client()
    await world.budget(client["id"], {"home_care": 10_000, "transport": 5_000}, unused="expire")
    hoiva = await provider(world, "Hoiva Oy", ["home_care", "transport"])
    kyyti = await provider(world, "Kyyti Oy", ["transport"])

    # January: the credit, two home-care charges, the second 30 minutes before midnight in Helsinki.
    await world.credit("2027-01")
    await captured(world, hoiva, client, 3_000, "home_care")
    at_local(world, "2027-01-31T23:30", client, hoiva, kyyti)
    await captured(world, hoiva, client, 1_000, "home_care")
    # 00:30 on 1 February in Helsinki is still 31 January in UTC: it belongs to February.
    at_local(world, "2027-02-01T00:30", client, hoiva, kyyti)
    await captured(world, kyyti, client, 500, "transport")
    # February's credit run returns January's rest (expire policy) and credits February.
    at_local(world, "2027-02-01T01:00", client, hoiva, kyyti)
    await world.credit("2027-02")
    at_local(world, "2027-02-10T12:00", client, hoiva, kyyti)
    refunded = await captured(world, hoiva, client, 2_000, "transport")
    await world.call("POST", f"/v1/charges/{refunded}/refunds", hoiva["token"], {"amount": 700}, expect=201)
    await captured(world, kyyti, client, 1_200, "transport")
    status, voided = await world.charge(hoiva, client, 1_500, method="otp")
    assert status == 201
    await world.call("POST", f"/v1/charges/{voided['id']}/void", hoiva["token"], expect=201)
    status, pending = await world.charge(hoiva, client, 800, method="otp")  # still held when February ends
    assert status == 201 and pending["status"] == "pending"
    # March: February's rest expires, March is credited; the statement of February is unchanged by it.
    at_local(world, "2027-03-01T01:00", client, hoiva, kyyti)
    await world.credit("2027-03")
    at_local(world, "2027-03-10T12:00", client, hoiva, kyyti)

    january = await statement(world, client, "2027-01")
    assert january["complete"] is True and january["time_zone"] == "Europe/Helsinki"
    assert january["period_start"] == "2026-12-31T22:00:00.000Z" and january["period_end"] == "2027-01-31T22:00:00.000Z"
    assert january["opening_balance"] == 0
    assert january["credits"]["amount"] == 15_000
    assert january["credits"]["by_category"] == [
        {"category": "home_care", "amount": 10_000, "count": 1},
        {"category": "transport", "amount": 5_000, "count": 1},
    ]
    assert january["charges"]["amount"] == 4_000 and january["charges"]["count"] == 2
    assert january["charges"]["by_provider"] == [
        {"provider_id": hoiva["id"], "provider_name": "Hoiva Oy", "category": "home_care", "amount": 4_000, "count": 2}
    ]
    assert january["refunds"]["amount"] == 0 and january["expiry"]["amount"] == 0
    assert january["closing_balance"] == 11_000 and adds_up(january)

    february = await statement(world, client, "2027-02")
    assert february["opening_balance"] == january["closing_balance"]
    assert february["credits"]["amount"] == 15_000
    assert february["expiry"]["amount"] == 10_500  # January's rest: 6 000 home care, 4 500 transport
    assert february["expiry"]["by_category"] == [
        {"category": "home_care", "amount": 6_000, "count": 1},
        {"category": "transport", "amount": 4_500, "count": 1},
    ]
    assert february["charges"]["amount"] == 3_700 and february["charges"]["count"] == 3
    assert february["charges"]["by_provider"] == [
        {"provider_id": hoiva["id"], "provider_name": "Hoiva Oy", "category": "transport", "amount": 2_000, "count": 1},
        {"provider_id": kyyti["id"], "provider_name": "Kyyti Oy", "category": "transport", "amount": 1_700, "count": 2},
    ]
    assert february["refunds"] == {
        "amount": 700,
        "count": 1,
        "by_provider": [
            {
                "provider_id": hoiva["id"],
                "provider_name": "Hoiva Oy",
                "category": "transport",
                "amount": 700,
                "count": 1,
            }
        ],
    }
    assert february["closing_balance"] == 12_500 and february["held_at_close"] == 800
    lines = {line["category"]: line for line in february["lines"]}
    assert lines["home_care"] == {
        "category": "home_care",
        "opening_balance": 6_000,
        "credits": 10_000,
        "charges": 0,
        "refunds": 0,
        "expiry": 6_000,
        "closing_balance": 10_000,
    }
    assert lines["transport"] == {
        "category": "transport",
        "opening_balance": 5_000,
        "credits": 5_000,
        "charges": 3_700,
        "refunds": 700,
        "expiry": 4_500,
        "closing_balance": 2_500,
    }
    assert adds_up(february) and all(adds_up(line) for line in february["lines"])

    march = await statement(world, client, "2027-03")  # the month so far
    assert march["complete"] is False and march["as_of"] == "2027-03-10T10:00:00.000Z"
    assert march["opening_balance"] == february["closing_balance"]
    assert march["expiry"]["amount"] == 9_200 + 2_500  # what was available; the 800 held stays
    assert march["closing_balance"] == (await world.wallet(client))["balance"] and adds_up(march)

    # The statement agrees with the history, month by month in Helsinki time.
    for month_statement in (january, february, march):
        month = month_statement["month"]
        in_month = [
            item
            for item in await history(world, client)
            if datetime.fromisoformat(item["created_at"]).astimezone(HELSINKI).strftime("%Y-%m") == month
        ]
        for kind, section in (
            ("credit", "credits"),
            ("capture", "charges"),
            ("refund", "refunds"),
            ("expiry", "expiry"),
        ):
            total = sum(abs(item["amount"]) for item in in_month if item["type"] == kind)
            assert total == month_statement[section]["amount"], (month, kind)


async def test_a_month_before_any_money_is_all_zeros_and_a_future_month_is_refused(world: World) -> None:
    client, _ = await world.funded(1_000)
    empty = await statement(world, client, "2026-11")
    assert empty["opening_balance"] == empty["closing_balance"] == 0 and empty["lines"] == []
    assert empty["charges"] == {"amount": 0, "count": 0, "by_provider": [], "own_share": 0, "by_service": []}
    status, body = await world.call("GET", "/v1/me/statements/2027-02", client["token"])
    assert status == 422 and body["code"] == "validation_error"
    status, body = await world.call("GET", "/v1/me/statements/2027-13", client["token"])
    assert status == 422 and body["code"] == "validation_error"


async def test_only_the_client_sees_its_own_statement(world: World) -> None:
    _client, provider_record = await world.funded(1_000)
    other = await world.client(phone="+358401112225")
    await world.call("GET", "/v1/me/statements/2027-01", provider_record["token"], expect=403)
    await world.call("GET", "/v1/me/statements/2027-01", world.admin, expect=403)
    theirs = await statement(world, other, "2027-01")
    assert theirs["credits"]["amount"] == 0 and theirs["closing_balance"] == 0


async def test_the_statement_matches_the_openapi_document(
    http: TestClient, sms: RecordingSms, clock: FakeClock
) -> None:
    w = CheckedWorld(http, sms, clock)
    w.contract = Contract(await fetch_document(http))
    client, provider_record = await w.funded(10_000)
    status, charged = await w.charge(provider_record, client, 2_000)
    assert status == 201
    await w.call("POST", f"/v1/charges/{charged['id']}/refunds", provider_record["token"], {"amount": 300}, expect=201)
    await w.charge(provider_record, client, 400, method="otp")
    _, figures = await w.call("GET", "/v1/me/statements/2027-01", client["token"], expect=200)
    assert figures["closing_balance"] == 8_300 and figures["held_at_close"] == 400 and adds_up(figures)
    await w.call("GET", "/v1/me/statements/2026-12", client["token"], expect=200)
    await w.call("GET", "/v1/me/statements/2027-02", client["token"], expect=422)
    await w.call("GET", "/v1/me/statements/january", client["token"], expect=422)
    await w.call("GET", "/v1/me/statements/2027-01", provider_record["token"], expect=403)
