"""The organizer's view of use (GET /v1/reports/usage): per client and line what the month gave,
used, held and left; per provider what it charged; clients using little late in the month
flagged. Every figure is checked against numbers computed here from the charges the test made."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import OTHER_NATIONAL_ID, RecordingSms, World
from tests.test_openapi import CheckedWorld, Contract, fetch_document
from wallet.auth.tokens import Role
from wallet.clock import FakeClock
from wallet.settings import Settings, SettingsError

HOME, TRANSPORT = "home_care", "transport"


class Model:
    """What the report must say, kept from what the test does: a ledger of our own, in cents."""

    def __init__(self) -> None:
        self.monthly: dict[tuple[str, str], int] = {}
        self.credited: dict[tuple[str, str, str], int] = defaultdict(int)  # (month, client, category)
        self.used: dict[tuple[str, str, str], int] = defaultdict(int)
        self.pending: dict[str, tuple[str, str, int]] = {}  # charge id -> (client, category, amount)
        self.charged: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # (month, provider)

    def credit(self, month: str) -> None:
        for (client, category), amount in self.monthly.items():
            self.credited[(month, client, category)] += amount

    def capture(self, month: str, client: str, category: str, provider: str, amount: int) -> None:
        self.used[(month, client, category)] += amount
        self.charged[(month, provider)][0] += amount
        self.charged[(month, provider)][2] += 1

    def refund(self, month: str, client: str, category: str, provider: str, amount: int) -> None:
        self.used[(month, client, category)] -= amount
        self.charged[(month, provider)][1] += amount
        self.charged[(month, provider)][3] += 1

    def line(self, month: str, client: str, category: str) -> dict[str, Any]:
        held = sum(amount for c, k, amount in self.pending.values() if (c, k) == (client, category))
        months = sorted({m for m, _, _ in self.credited} | {m for m, _, _ in self.used})
        balance = sum(
            self.credited[(m, client, category)] - self.used[(m, client, category)] for m in months if m <= month
        )
        return {
            "category": category,
            "monthly_amount": self.monthly[(client, category)],
            "credited": self.credited[(month, client, category)],
            "used": self.used[(month, client, category)],
            "held": held,
            "left": balance - held,
        }

    def client(self, month: str, client: dict[str, Any], evaluated: bool, percent: int = 50) -> dict[str, Any]:
        lines = [
            self.line(month, client["id"], category) for (c, category) in sorted(self.monthly) if c == client["id"]
        ]
        totals = {
            key: sum(line[key] for line in lines) for key in ("monthly_amount", "credited", "used", "held", "left")
        }
        return {
            "client_id": client["id"],
            "name": client["name"],
            **totals,
            "used_percent": totals["used"] * 100 // totals["monthly_amount"],
            "low_use": evaluated and totals["used"] * 100 < percent * totals["monthly_amount"],
            "lines": lines,
            "bought": [],  # plain charges only here: nothing bought by items (tests/test_marketplace_views.py)
        }

    def providers(self, month: str, providers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for provider in providers:
            captured, refunded, captures, refunds = self.charged.get((month, provider["id"]), [0, 0, 0, 0])
            if captures or refunds:
                rows.append(
                    {
                        "provider_id": provider["id"],
                        "provider_name": provider["name"],
                        "captured": captured,
                        "refunded": refunded,
                        "charged": captured - refunded,
                        "captures": captures,
                        "refunds": refunds,
                        "bought": [],
                    }
                )
        return sorted(rows, key=lambda row: (row["provider_name"], row["provider_id"]))


async def provider_named(world: World, name: str, categories: list[str]) -> dict[str, Any]:
    provider = await world.provider(categories)
    provider["name"] = name  # World names every provider alike; the report sorts by name, then id
    return provider


async def report(world: World, query: str, token: str | None = None) -> dict[str, Any]:
    _, body = await world.call("GET", f"/v1/reports/usage?{query}", token or world.finance, expect=200)
    return dict(body)


async def test_the_usage_report_equals_the_ledger(world: World) -> None:
    model = Model()
    await world.category(HOME)
    await world.category(TRANSPORT, "Kuljetus")
    a = await world.client()
    b = await world.client(national_id=OTHER_NATIONAL_ID)
    c = await world.client()
    for client, lines in ((a, {HOME: 50_000, TRANSPORT: 10_000}), (b, {HOME: 20_000}), (c, {HOME: 30_000})):
        await world.budget(client["id"], lines, unused="carry_over")
        for category, amount in lines.items():
            model.monthly[(client["id"], category)] = amount
    await world.credit("2027-01")
    model.credit("2027-01")
    p1 = await provider_named(world, "Hoiva Oy", [HOME, TRANSPORT])
    p2 = await provider_named(world, "Hoiva Oy", [HOME])

    async def captured(
        provider: dict[str, Any],
        client: dict[str, Any],
        amount: int,
        category: str = HOME,
        national_id: str | None = None,
    ) -> dict[str, Any]:
        status, charge = await world.charge(
            provider, client, amount, category=category, national_id=national_id or "131052-308T"
        )
        assert status == 201 and charge["status"] == "captured", charge
        model.capture(world.service.current_month(), client["id"], category, provider["id"], amount)
        return dict(charge)

    async def held(provider: dict[str, Any], client: dict[str, Any], amount: int) -> dict[str, Any]:
        status, charge = await world.charge(provider, client, amount, method="app")
        assert status == 201 and charge["status"] == "pending", charge
        model.pending[charge["id"]] = (client["id"], HOME, amount)
        return dict(charge)

    # January: captures by national id and by SMS code, a refund, holds still pending, a void and a decline.
    await captured(p1, a, 35_000)
    status, otp = await world.charge(p1, a, 3_000, category=TRANSPORT, method="otp")
    assert status == 201
    await world.call(
        "POST", f"/v1/charges/{otp['id']}/confirm", p1["token"], {"code": world.sms.last_code(a["phone"])}, expect=200
    )
    model.capture("2027-01", a["id"], TRANSPORT, p1["id"], 3_000)
    await held(p2, a, 5_000)
    declined = await held(p2, a, 2_000)
    await world.call("POST", f"/v1/me/charges/{declined['id']}/decline", a["token"], expect=200)
    del model.pending[declined["id"]]
    refunded = await captured(p2, b, 8_000, national_id=OTHER_NATIONAL_ID)
    await world.call("POST", f"/v1/charges/{refunded['id']}/refunds", p2["token"], {"amount": 1_500}, expect=201)
    model.refund("2027-01", b["id"], HOME, p2["id"], 1_500)
    _, voided = await world.charge(p1, b, 4_000, method="otp")
    await world.call("POST", f"/v1/charges/{voided['id']}/void", p1["token"], expect=201)
    await held(p1, b, 1_000)

    # 15 January: before the low-use day, so nobody is flagged yet.
    january = await report(world, "month=2027-01")
    assert (january["month"], january["complete"], january["low_use_rule"]) == (
        "2027-01",
        False,
        {"from_day": 20, "percent": 50, "evaluated": False},
    )
    expected = [model.client("2027-01", client, evaluated=False) for client in (c, b, a)]  # newest first
    assert january["data"] == expected
    assert january["providers"] == model.providers("2027-01", [p1, p2])
    assert january["totals"] == {
        **{key: sum(row[key] for row in expected) for key in ("monthly_amount", "credited", "used", "held", "left")},
        "charged": 35_000 + 3_000 + 8_000 - 1_500,
        "clients": 3,
        "low_use_clients": 0,
    }
    assert january["totals"]["used"] == january["totals"]["charged"]
    # What is left is what each client sees as available.
    for client, row in zip((c, b, a), january["data"], strict=True):
        wallet = await world.wallet(client)
        assert {line["category"]: line["available"] for line in wallet["lines"]} == {
            line["category"]: line["left"] for line in row["lines"]
        }

    # 22 February: January is closed and judged; February so far is judged too.
    world.clock.advance(days=38)
    world.admin, world.finance = world.token(Role.ADMIN), world.token(Role.FINANCE)  # the old ones expired
    p2["token"] = world.token(Role.PROVIDER, provider_id=p2["id"])
    await world.credit("2027-02")
    model.credit("2027-02")
    await captured(p2, c, 20_000)
    closed = await report(world, "month=2027-01")
    assert closed["complete"] is True and closed["low_use_rule"]["evaluated"] is True
    assert closed["data"] == [model.client("2027-01", client, evaluated=True) for client in (c, b, a)]
    assert [(row["client_id"], row["used_percent"], row["low_use"]) for row in closed["data"]] == [
        (c["id"], 0, True),
        (b["id"], 32, True),
        (a["id"], 63, False),
    ]
    assert closed["providers"] == model.providers("2027-01", [p1, p2])  # February's charge is not January's
    february = await report(world, "month=2027-02")
    assert february["complete"] is False and february["low_use_rule"]["evaluated"] is True
    assert february["data"] == [model.client("2027-02", client, evaluated=True) for client in (c, b, a)]
    assert february["providers"] == model.providers("2027-02", [p1, p2])
    assert february["totals"]["low_use_clients"] == 2
    assert (await report(world, ""))["data"] == february["data"]  # the current month by default

    # The early warning alone, a page at a time.
    first = await report(world, "month=2027-02&low_use=true&limit=1")
    assert [row["client_id"] for row in first["data"]] == [b["id"]] and first["next_cursor"]
    rest = await report(world, f"month=2027-02&low_use=true&limit=1&cursor={first['next_cursor']}")
    assert [row["client_id"] for row in rest["data"]] == [a["id"]] and rest["next_cursor"] is None
    assert rest["totals"] == february["totals"]  # totals cover every client, whatever the page


async def test_who_may_read_it_and_what_it_refuses(world: World) -> None:
    client, provider = await world.funded(1_000)
    await report(world, "month=2027-01", world.admin)
    for token in (provider["token"], client["token"]):
        await world.call("GET", "/v1/reports/usage?month=2027-01", token, expect=403)
    await world.call("GET", "/v1/reports/usage?month=2027-01", expect=401)
    for query in ("month=2027-02", "month=2027-13", "month=january", "low_use=maybe", "limit=0"):
        status, body = await world.call("GET", f"/v1/reports/usage?{query}", world.finance)
        assert (status, body["code"]) == (422, "validation_error"), query
    empty = await report(world, "month=2026-12")
    assert empty["data"] == [] and empty["providers"] == [] and empty["totals"]["clients"] == 0


async def test_the_usage_report_matches_the_openapi_document(
    http: TestClient, sms: RecordingSms, clock: FakeClock
) -> None:
    w = CheckedWorld(http, sms, clock)
    w.contract = Contract(await fetch_document(http))
    client, provider = await w.funded(10_000)
    await w.charge(provider, client, 1_000)
    await w.call("GET", "/v1/reports/usage?month=2027-01&limit=1", w.finance, expect=200)
    await w.call("GET", "/v1/reports/usage", w.token(Role.ADMIN), expect=200)
    await w.call("GET", "/v1/reports/usage?month=2030-01", w.finance, expect=422)
    await w.call("GET", "/v1/reports/usage", provider["token"], expect=403)
    assert ("GET", "/v1/reports/usage", 200) in w.contract.seen


def test_the_low_use_settings_are_a_day_and_a_percentage() -> None:
    for bad in (
        {"usage_low_use_from_day": 32},
        {"usage_low_use_from_day": 0},
        {"usage_low_use_percent": 101},
        {"usage_low_use_percent": 0},
    ):
        with pytest.raises(SettingsError, match="WALLET_USAGE_LOW_USE_"):
            Settings(**bad).validate()  # type: ignore[arg-type]
    Settings(usage_low_use_from_day=31, usage_low_use_percent=100).validate()
