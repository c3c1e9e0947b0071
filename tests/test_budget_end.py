"""The organizer views a client's budgets and ends one sooner: nothing is credited after the new
last month, and the credit run at the next boundary returns what is left, whatever the policy."""

from __future__ import annotations

import json

from tests.test_audit import rows
from tests.test_openapi import CheckedWorld, checked
from wallet.auth.tokens import Role


def later(w: CheckedWorld, days: int, *holders: dict[str, str]) -> None:
    """Move the clock on; tokens last an hour, so everyone signs in again."""
    w.clock.advance(days=days)
    w.admin = w.token(Role.ADMIN)
    for holder in holders:
        role, whose = (Role.CLIENT, "client_id") if holder["id"].startswith("cl_") else (Role.PROVIDER, "provider_id")
        holder["token"] = w.token(role, **{whose: holder["id"]})


async def test_the_organizer_lists_a_clients_budgets_newest_first(checked: CheckedWorld) -> None:
    w = checked
    await w.category()
    client = await w.client()
    first = await w.budget(client["id"], {"home_care": 10_000}, start="2027-01", end="2027-06")
    second = await w.budget(client["id"], {"home_care": 12_000}, start="2027-07", end="2027-12")
    _, page = await w.call("GET", f"/v1/clients/{client['id']}/budgets", w.admin, expect=200)
    assert [b["id"] for b in page["data"]] == [second["id"], first["id"]]
    assert page["data"][0]["lines"] == [{"category": "home_care", "monthly_amount": 12_000}]
    assert page["next_cursor"] is None

    _, one = await w.call("GET", f"/v1/clients/{client['id']}/budgets?limit=1", w.admin, expect=200)
    assert [b["id"] for b in one["data"]] == [second["id"]] and one["next_cursor"]
    _, rest = await w.call(
        "GET", f"/v1/clients/{client['id']}/budgets?limit=1&cursor={one['next_cursor']}", w.admin, expect=200
    )
    assert [b["id"] for b in rest["data"]] == [first["id"]] and rest["next_cursor"] is None

    await w.call("GET", "/v1/clients/cl_nobody/budgets", w.admin, expect=404)
    await w.call("GET", f"/v1/clients/{client['id']}/budgets", client["token"], expect=403)
    await w.call("GET", f"/v1/clients/{client['id']}/budgets", w.finance, expect=403)


async def test_an_ended_budget_credits_no_more_and_returns_what_is_left(checked: CheckedWorld) -> None:
    w = checked
    await w.category()
    client = await w.client()
    budget = await w.budget(client["id"], {"home_care": 10_000}, start="2027-01", end="2027-12", unused="carry_over")
    await w.credit("2027-01")
    provider = await w.provider(["home_care"])
    assert (await w.charge(provider, client, 3_000))[0] == 201

    path = f"/v1/clients/{client['id']}/budgets/{budget['id']}/end"
    _, ended = await w.call("POST", path, w.admin, {"end_month": "2027-02"}, expect=200)
    assert ended["end_month"] == "2027-02" and ended["start_month"] == "2027-01" and ended["lines"] == budget["lines"]
    _, page = await w.call("GET", f"/v1/clients/{client['id']}/budgets", w.admin, expect=200)
    assert page["data"][0]["end_month"] == "2027-02"
    ending = [entry for entry in rows(w) if entry["action"] == "budget.ended"]
    assert len(ending) == 1 and ending[0]["actor"] == "admin:admin-cli"
    assert json.loads(ending[0]["data"])["previous_end_month"] == "2027-12"

    later(w, 31, client, provider)  # February: its month is still credited; carry_over keeps January's rest
    _, run = await w.call("POST", "/v1/credit-runs", w.admin, {"month": "2027-02"}, expect=201)
    assert run["credited_now"] == 1
    assert (await w.wallet(client))["available"] == 7_000 + 10_000

    later(w, 28, client, provider)  # March: after the budget's new end; nothing credited, the rest returns
    _, run = await w.call("POST", "/v1/credit-runs", w.admin, {"month": "2027-03"})
    assert run["credited_now"] == 0 and run["expired_now"] == 1
    wallet = await w.wallet(client)
    assert wallet["available"] == 0 and wallet["balance"] == 0
    assert (await w.charge(provider, client, 100))[0] == 422  # category_not_allowed: no active budget
    w.check()


async def test_a_budget_ends_only_sooner_and_never_in_the_past(checked: CheckedWorld) -> None:
    w = checked
    await w.category()
    client = await w.client()
    budget = await w.budget(client["id"], {"home_care": 10_000}, start="2027-01", end="2027-06")
    path = f"/v1/clients/{client['id']}/budgets/{budget['id']}/end"
    for end_month, field in (("2027-07", "end_month"), ("2026-12", "end_month"), ("2027-13", "end_month")):
        _, problem = await w.call("POST", path, w.admin, {"end_month": end_month}, expect=422)
        assert problem["code"] == "validation_error" and problem["field"] == field, problem
    _, problem = await w.call("POST", path, w.admin, {}, expect=422)
    assert problem["field"] == "end_month"

    later(w, 45)  # March
    _, problem = await w.call("POST", path, w.admin, {"end_month": "2027-02"}, expect=422)
    assert "current month" in problem["detail"]
    _, same = await w.call("POST", path, w.admin, {"end_month": "2027-06"}, expect=200)  # as it was: a no-op
    assert same["end_month"] == "2027-06"
    _, ended = await w.call("POST", path, w.admin, {"end_month": "2027-03"}, expect=200)  # this month: allowed
    assert ended["end_month"] == "2027-03"

    other = await w.client()
    await w.call(
        "POST", f"/v1/clients/{other['id']}/budgets/{budget['id']}/end", w.admin, {"end_month": "2027-03"}, expect=404
    )
    await w.call(
        "POST", f"/v1/clients/{client['id']}/budgets/bu_nothing/end", w.admin, {"end_month": "2027-03"}, expect=404
    )
    provider_token = w.token(Role.PROVIDER, provider_id="pr_x")
    await w.call("POST", path, provider_token, {"end_month": "2027-03"}, expect=403)


async def test_a_month_credited_ahead_holds_the_end_back(checked: CheckedWorld) -> None:
    w = checked
    await w.category()
    client = await w.client()
    budget = await w.budget(client["id"], {"home_care": 10_000}, start="2027-01", end="2027-12")
    await w.credit("2027-01")
    await w.credit("2027-02")  # ahead of time: February's money is staged already
    path = f"/v1/clients/{client['id']}/budgets/{budget['id']}/end"
    _, problem = await w.call("POST", path, w.admin, {"end_month": "2027-01"}, expect=409)
    assert problem["code"] == "conflict" and "2027-02" in problem["detail"]
    _, ended = await w.call("POST", path, w.admin, {"end_month": "2027-02"}, expect=200)
    assert ended["end_month"] == "2027-02"
    w.check()
