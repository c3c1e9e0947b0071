"""Monthly crediting: once per line per month, expiry by policy, the end of a budget period."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import World
from wallet.auth.tokens import Role
from wallet.clock import rfc3339


def move_to(world: World, moment: datetime, *parties: dict) -> None:
    """Move the clock, and give everyone fresh tokens: a month later the old ones have expired."""
    world.clock.advance(seconds=(moment - world.clock.now()).total_seconds())
    world.admin, world.finance = world.token(Role.ADMIN), world.token(Role.FINANCE)
    for party in parties:
        ids = {"client_id": party["id"]} if party["id"].startswith("cl_") else {"provider_id": party["id"]}
        party["token"] = world.token(Role.CLIENT if "client_id" in ids else Role.PROVIDER, **ids)


FEB_1 = datetime(2027, 1, 31, 22, 0, 1, tzinfo=UTC)  # 00:00:01 on 1 February in Helsinki
MAR_1 = datetime(2027, 2, 28, 22, 0, 1, tzinfo=UTC)


async def funding_balance(world: World) -> int:
    return int(world.sql("SELECT balance FROM accounts WHERE id = 'funding'")[0][0])


async def test_a_month_is_credited_once_however_often_it_runs(world: World) -> None:
    await world.category()
    client = await world.client()
    await world.budget(client["id"], {"home_care": 40_000})
    status, first = await world.call("POST", "/v1/credit-runs", world.admin, {"month": "2027-01"})
    assert status == 201 and (first["month"], first["credited"], first["amount"]) == ("2027-01", 1, 40_000)
    status, again = await world.call("POST", "/v1/credit-runs", world.admin, {"month": "2027-01"})
    assert status == 200 and (again["credited"], again["amount"]) == (1, 40_000)
    assert (await world.wallet(client))["balance"] == 40_000
    # A budget added later in the month is picked up by a rerun; the first line is not paid twice.
    second = await world.client()
    await world.budget(second["id"], {"home_care": 10_000})
    status, rerun = await world.call("POST", "/v1/credit-runs", world.finance, {"month": "2027-01"})
    assert status == 201 and (rerun["credited"], rerun["amount"]) == (2, 50_000)
    assert (await world.wallet(client))["balance"] == 40_000
    assert await funding_balance(world) == -50_000


async def test_only_the_current_or_next_month_can_run(world: World) -> None:
    for month in ("2026-12", "2027-03", "2028-01"):
        status, body = await world.call("POST", "/v1/credit-runs", world.admin, {"month": month})
        assert status == 422 and body["field"] == "month"
    status, body = await world.call("POST", "/v1/credit-runs", world.admin, {"month": "2027-1"})
    assert status == 422


async def test_expire_returns_last_months_remainder_at_the_next_credit(world: World) -> None:
    client, provider = await world.funded(1_000)  # policy expire
    await world.charge(provider, client, 300)
    move_to(world, FEB_1, client, provider)
    await world.credit("2027-02")
    wallet = await world.wallet(client)
    assert wallet["balance"] == 1_000  # 700 expired, 1 000 credited
    _, page = await world.call("GET", "/v1/me/transactions", client["token"], expect=200)
    assert [(i["type"], i["amount"]) for i in page["data"][:2]] == [("credit", 1_000), ("expiry", -700)]


async def test_carry_over_keeps_the_remainder(world: World) -> None:
    await world.category()
    client = await world.client()
    await world.budget(client["id"], {"home_care": 1_000}, unused="carry_over")
    await world.credit()
    provider = await world.provider(["home_care"])
    await world.charge(provider, client, 300)
    move_to(world, FEB_1, client, provider)
    await world.credit("2027-02")
    assert (await world.wallet(client))["balance"] == 1_700


async def test_the_end_of_a_budget_period_returns_what_is_left_whatever_the_policy(world: World) -> None:
    await world.category()
    client = await world.client()
    await world.budget(client["id"], {"home_care": 1_000}, start="2027-01", end="2027-02", unused="carry_over")
    await world.credit()
    move_to(world, FEB_1, client)
    await world.credit("2027-02")
    assert (await world.wallet(client))["balance"] == 2_000
    move_to(world, MAR_1, client)
    status, body = await world.call("POST", "/v1/credit-runs", world.admin, {"month": "2027-03"})
    assert status == 200 and body["credited"] == 0 and body["expired_now"] == 1
    wallet = await world.wallet(client)
    assert wallet["balance"] == 0 and wallet["lines"][0]["monthly_amount"] == 0
    assert await funding_balance(world) == 0


async def test_crediting_ahead_keeps_this_months_money_until_the_month_ends(world: World) -> None:
    client, provider = await world.funded(1_000)  # policy expire
    await world.charge(provider, client, 300)
    status, body = await world.call("POST", "/v1/credit-runs", world.admin, {"month": "2027-02"})
    assert status == 201 and body["expired_now"] == 0
    wallet = await world.wallet(client)
    assert wallet["balance"] == 700  # January's 700 is still the client's; February's is only staged
    assert [(item["month"], item["amount"]) for item in wallet["upcoming"]] == [("2027-02", 1_000)]
    move_to(world, FEB_1, client, provider)
    status, body = await world.call("POST", "/v1/credit-runs", world.admin, {"month": "2027-02"})
    assert status == 200 and body["expired_now"] == 1 and body["released_now"] == 1
    wallet = await world.wallet(client)
    assert (wallet["balance"], wallet["upcoming"]) == (1_000, [])  # January's 700 returned, February's released


async def test_money_held_at_a_boundary_stays_for_its_pending_charge(world: World) -> None:
    client, provider = await world.funded(1_000)
    move_to(world, datetime(2027, 1, 31, 21, 58, tzinfo=UTC), client, provider)
    _, pending = await world.charge(provider, client, 400, method="otp")
    code = world.sms.last_code(client["phone"])
    move_to(world, FEB_1, client, provider)  # the hold is 2 minutes old: still valid
    await world.credit("2027-02")
    wallet = await world.wallet(client)
    assert (wallet["balance"], wallet["held"]) == (1_400, 400)  # 600 expired, 400 held, 1 000 new
    status, _ = await world.call("POST", f"/v1/charges/{pending['id']}/confirm", provider["token"], {"code": code})
    assert status == 200
    assert (await world.wallet(client))["available"] == 1_000


async def test_a_credit_run_replays_by_idempotency_key(world: World) -> None:
    await world.category()
    client = await world.client()
    await world.budget(client["id"], {"home_care": 1_000})
    first = await world.call("POST", "/v1/credit-runs", world.admin, {"month": "2027-01"}, key="jan")
    second = await world.call("POST", "/v1/credit-runs", world.admin, {"month": "2027-01"}, key="jan")
    assert first == second and first[0] == 201
    status, body = await world.call("POST", "/v1/credit-runs", world.admin, {"month": "2027-02"}, key="jan")
    assert status == 422 and body["code"] == "idempotency_key_reuse"


async def test_a_run_planned_ahead_credits_every_line_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """``wallet credit-run``'s way (``plan_ahead``): the next step is worked out here while the
    writer writes this one, and handed to it before this one is answered. Steps of two budgets,
    eight budgets (one of next month, not run by this one). On SQLite the writer applies the plans (in its own
    process, as in production); on PostgreSQL it works every step out itself; the ledger comes out
    the same, and a rerun credits nothing. (A client in two steps side by side, a line without its
    account and a stale plan: ``tests/test_credit_run_bulk.py``.)"""
    import wallet.service.organizer

    monkeypatch.setattr(wallet.service.organizer, "CREDIT_RUN_BATCH_BUDGETS", 2)
    storage = world.service.storage
    planned: list[bool] = []
    called_at: list[datetime] = []  # each step's own time, as the service calls it
    read_ahead: list[datetime] = []  # the clock as read to stamp a step worked out ahead
    step = storage.credit_run_step

    async def counted(*args: Any, **kwargs: Any) -> Any:
        assert kwargs["plan_ahead"] == world.clock.now  # the service's clock stamps the steps ahead
        clock = kwargs["plan_ahead"]

        def reading() -> datetime:
            read_ahead.append(clock())
            return read_ahead[-1]

        called_at.append(args[4])
        result = await step(*args, **{**kwargs, "plan_ahead": reading})
        planned.append(bool(result.get("planned")))
        world.clock.advance(seconds=1)
        return result

    monkeypatch.setattr(storage, "credit_run_step", counted)
    for code, name in (("home_care", "Kotihoito"), ("transport", "Kuljetus"), ("meals", "Ateriat")):
        await world.category(code, name)
    clients = [await world.client() for _ in range(8)]
    for number, client in enumerate(clients[:7]):
        await world.budget(client["id"], {"home_care": 10_000 + number, "transport": 500})
    await world.budget(clients[7]["id"], {"meals": 7}, start="2027-02", end="2027-03")  # next month's: not run

    first = (await world.service.credit_run("2027-01", plan_ahead=True)).value
    lines = 7 * 2
    amount = sum(10_000 + number + 500 for number in range(7))
    assert (first["credited"], first["amount"], first["credited_now"]) == (lines, amount, lines)
    for number, client in enumerate(clients[:7]):
        assert (await world.wallet(client))["balance"] == 10_000 + number + 500
    assert (await world.wallet(clients[7]))["balance"] == 0
    assert await funding_balance(world) == -amount
    assert len(planned) == 4  # [1, 2] [3, 4] [5, 6] [7]: the last step, short, ends the run
    sqlite = not world.service.settings.db.startswith("postgresql")
    assert all(planned) if sqlite else not any(planned)
    # A step worked out ahead is stamped when it is (during the step before), not with the first's
    # time: with the clock as read then. Whether that read comes before or after the step before
    # returns (and the clock moves on) is the event loop's to decide, so the stamps are compared
    # with the readings, whatever they were; the third step is worked out after the first returned.
    stamps = {row[0] for row in world.sql("SELECT DISTINCT created_at FROM transactions WHERE type = 'credit'")}
    if sqlite:
        assert len(read_ahead) == 3  # steps 2, 3 and 4
        assert stamps == {rfc3339(called_at[0])} | {rfc3339(moment) for moment in read_ahead}
        assert max(read_ahead) > called_at[0]
    else:  # every step worked out by the writer, at the step's own time
        assert stamps == {rfc3339(moment) for moment in called_at}
    assert len(stamps) >= 2

    again = (await world.service.credit_run("2027-01", plan_ahead=True)).value
    assert (again["credited"], again["amount"], again["credited_now"]) == (lines, amount, 0)
