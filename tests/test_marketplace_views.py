"""Itemized charges wherever a client or provider sees a charge (issue 22, item 4's last part): the
provider's charge, the client's charges, the client's history and the monthly statement, every
answer checked against the OpenAPI document."""

from __future__ import annotations

from tests.test_catalog import itemized, marketplace, w  # w: the checked world fixture
from tests.test_openapi import CheckedWorld

VISIT = [{"service": "home_help", "quantity": 1.5}, {"service": "cleaning", "quantity": "2"}]


async def test_a_client_sees_the_items_and_own_share_in_charges_history_and_statement(w: CheckedWorld) -> None:
    client, provider = await marketplace(w)
    _, visit = await itemized(w, provider, client, VISIT)
    _, second = await itemized(w, provider, client, [{"service": "home_help", "quantity": "0.25"}])
    plain = (await w.charge(provider, client, 1000))[1]
    await w.call("POST", f"/v1/charges/{visit['id']}/refunds", provider["token"], {"amount": 500}, expect=201)

    # The provider's view of the one charge.
    _, seen = await w.call("GET", f"/v1/charges/{visit['id']}", provider["token"], expect=200)
    assert (seen["amount"], seen["own_share"], seen["items"]) == (8500, 750, visit["items"])

    # The client's charges.
    _, mine = await w.call("GET", "/v1/me/charges", client["token"], expect=200)
    by_id = {charge["id"]: charge for charge in mine["data"]}
    assert (by_id[visit["id"]]["own_share"], by_id[visit["id"]]["items"]) == (750, visit["items"])
    assert "items" not in by_id[plain["id"]] and "own_share" not in by_id[plain["id"]]

    # The history: each capture of an itemized charge carries its items; refunds and plain charges none.
    _, history = await w.call("GET", "/v1/me/transactions", client["token"], expect=200)
    rows = {(row["type"], row["charge_id"]): row for row in history["data"]}
    capture = rows[("capture", visit["id"])]
    assert (capture["amount"], capture["own_share"], capture["items"]) == (-8500, 750, visit["items"])
    assert rows[("capture", second["id"])]["items"][0]["quantity"] == "0.25"
    assert rows[("capture", second["id"])]["own_share"] == 125  # 0.25 h x 5,00 €
    assert "items" not in rows[("refund", visit["id"])] and "items" not in rows[("capture", plain["id"])]
    # Paged one by one, the same.
    _, first = await w.call("GET", "/v1/me/transactions?limit=1", client["token"], expect=200)
    _, then = await w.call(
        "GET", f"/v1/me/transactions?limit=1&cursor={first['next_cursor']}", client["token"], expect=200
    )
    _, third = await w.call(
        "GET", f"/v1/me/transactions?limit=1&cursor={then['next_cursor']}", client["token"], expect=200
    )
    assert third["data"][0]["charge_id"] == second["id"] and third["data"][0]["items"] == second["items"]

    # The statement: what the month's captures bought, per service, and the own share in all.
    _, statement = await w.call("GET", "/v1/me/statements/2027-01", client["token"], expect=200)
    charges = statement["charges"]
    assert charges["amount"] == 8500 + 750 + 1000  # the equation's charges: from the budget only
    assert charges["own_share"] == 750 + 125  # beside the equation: paid to the provider directly
    assert charges["by_service"] == [
        {"service": "cleaning", "unit": "hour", "quantity": "2", "amount": 4000, "own_share": 0, "count": 1},
        {"service": "home_help", "unit": "hour", "quantity": "1.75", "amount": 5250, "own_share": 875, "count": 2},
    ]
    assert statement["refunds"]["amount"] == 500


async def test_a_statement_without_itemized_charges_says_nothing_was_bought_by_items(w: CheckedWorld) -> None:
    client, provider = await w.funded(5000)
    await w.charge(provider, client, 1200)
    _, statement = await w.call("GET", "/v1/me/statements/2027-01", client["token"], expect=200)
    assert (statement["charges"]["own_share"], statement["charges"]["by_service"]) == (0, [])
