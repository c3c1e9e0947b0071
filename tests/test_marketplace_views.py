"""Itemized charges wherever a client or provider sees a charge (issue 22, item 4's last part): the
provider's charge, the client's charges, the client's history and the monthly statement, every
answer checked against the OpenAPI document."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any

import pytest

from tests.conftest import BUSINESS_ID, NATIONAL_ID
from tests.test_catalog import itemized, marketplace, offer, service, w  # w: the checked world fixture
from tests.test_openapi import CheckedWorld
from tests.test_representatives import link, representative_token
from wallet.ledger.catalog import units_left
from wallet.ledger.errors import InvariantViolation

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


# How many units this month's line still buys (GET /v1/offers, for a client or its representative).


def test_units_left_is_whole_units_at_the_budget_s_part_per_unit() -> None:
    assert units_left(10_000, 3500, 3000) == 3  # above the unit value: the budget pays 30,00 € a unit
    assert units_left(10_000, 2500, 3000) == 4  # below it: the budget pays the price, 25,00 €
    assert units_left(9_000, 3000, 3000) == 3  # exactly three, nothing over
    assert units_left(8_999, 3000, 3000) == 2
    assert units_left(2_999, 3000, 3000) == 0  # not one whole unit
    assert units_left(0, 3000, 3000) == 0
    assert units_left(-5, 3000, 3000) == 0  # never below zero
    with pytest.raises(InvariantViolation):
        units_left(1000, 0, 3000)


async def test_the_comparison_tells_a_client_how_many_units_its_line_still_buys(w: CheckedWorld) -> None:
    client, provider = await marketplace(w, amount=10_000)  # home_help 35,00 € at 30,00 €; cleaning 20,00 €
    cheaper = await w.provider(["home_care"])
    await offer(w, cheaper, "home_help", 2500)  # below the unit value
    await w.category("transport", "Kuljetus")
    await service(w, code="taxi", category="transport", unit_value=1500)
    driver = await w.provider(["transport"])
    await offer(w, driver, "taxi", 1500)  # a category the client has no line of

    async def left(token: str, query: str = "") -> dict[tuple[str, str], Any]:
        _, page = await w.call("GET", f"/v1/offers?{query}", token, expect=200)
        return {(o["service"], o["provider_id"]): o.get("units_left") for o in page["data"]}

    seen = await left(client["token"])
    assert seen[("home_help", provider["id"])] == 3  # 100,00 € / 30,00 € (the own share is paid directly)
    assert seen[("home_help", cheaper["id"])] == 4  # 100,00 € / 25,00 €
    assert seen[("cleaning", provider["id"])] == 5
    assert seen[("rounding", provider["id"])] == 3  # 100,00 € / 29,99 €
    assert seen[("taxi", driver["id"])] == 0  # no transport line
    _, page = await w.call("GET", "/v1/offers?service=taxi", client["token"], expect=200)
    assert page["data"][0]["category"] == "transport"

    # What is held or spent is not left; the count follows the line.
    await itemized(w, provider, client, [{"service": "cleaning", "quantity": 2}])  # 40,00 € captured
    await w.call(
        "POST",
        "/v1/charges",
        provider["token"],
        {"phone": client["phone"], "amount": 1001, "category": "home_care", "identity": {"method": "otp"}},
        expect=201,
    )  # 10,01 € held: 49,99 € available
    seen = await left(client["token"], "service=home_help")
    assert seen == {("home_help", provider["id"]): 1, ("home_help", cheaper["id"]): 1}
    await w.charge(provider, client, 4999)  # nothing available
    assert set((await left(client["token"], "service=home_help")).values()) == {0}

    # A representative acting for the client sees the client's count; the organizer sees none.
    await link(w, client, scope="view")
    representative = await representative_token(w)
    assert set((await left(representative, "service=home_help")).values()) == {0}
    for token in (w.admin, w.finance):
        assert set((await left(token)).values()) == {None}


# `wallet check` holds every itemized charge to its items.


async def test_wallet_check_finds_an_itemized_charge_that_is_not_the_sum_of_its_items(w: CheckedWorld) -> None:
    from wallet.check import check_database

    client, provider = await marketplace(w)
    _, visit = await itemized(w, provider, client, VISIT)
    assert check_database(w.service.settings.db) == []
    with w.database() as database:  # an item slipped in after the charge (items are append-only: inserts only)
        database.execute(
            "INSERT INTO charge_items (charge_id, position, service_id, offer_id, quantity_hundredths, unit_price,"
            " unit_value, amount, own_share, service_date)"
            " SELECT charge_id, 9, service_id, offer_id, 100, 2000, 2000, 2000, 1, service_date FROM charge_items"
            " WHERE charge_id = ? AND position = 1",
            visit["id"],
        )
    assert sorted(check_database(w.service.settings.db)) == [
        f"charge {visit['id']} item 9: its parts are not its price",  # 20,00 € + 0,01 € for a 20,00 € unit
        f"charge {visit['id']}: amount 8500 but its items sum to 10500",
    ]
    w.check = lambda: None  # type: ignore[method-assign]  # the breach is this test's own doing


# What the organizer follows: what was bought, per service, provider and client (the usage report).


async def test_the_usage_report_says_what_was_bought_per_service_provider_and_client(w: CheckedWorld) -> None:
    client, provider = await marketplace(w)
    other = await w.client(national_id=None)
    await w.budget(other["id"], {"home_care": 10_000})
    await w.credit()  # the month is credited already: nothing new for the first client
    second = await w.provider(["home_care"])
    await offer(w, second, "home_help", 2500)
    await itemized(w, provider, client, VISIT)  # home_help 1.5 (4500 + 750), cleaning 2 (4000)
    await itemized(w, second, client, [{"service": "home_help", "quantity": 2}])  # 5000, below the unit value
    code_body = {"phone": other["phone"], "items": [{"service": "home_help", "quantity": "0.5"}]}
    _, pending = await w.call(
        "POST", "/v1/charges", provider["token"], {**code_body, "identity": {"method": "otp"}}, expect=201
    )
    await w.charge(provider, client, 999)  # a plain charge: no items
    _, refunded = await itemized(w, provider, client, [{"service": "cleaning", "quantity": 1}])
    await w.call("POST", f"/v1/charges/{refunded['id']}/refunds", provider["token"], {"amount": 2000}, expect=201)

    _, report = await w.call("GET", "/v1/reports/usage", w.admin, expect=200)

    def bought(service: str, quantity: str, amount: int, own_share: int, count: int) -> dict[str, Any]:
        return {
            "service": service,
            "unit": "hour",
            "quantity": quantity,
            "amount": amount,
            "own_share": own_share,
            "count": count,
        }

    # The held charge bought nothing yet; a refund is an amount, not items taken back.
    assert report["services"] == [
        bought("cleaning", "3", 6000, 0, 2),
        bought("home_help", "3.5", 9500, 750, 2),
    ]
    by_client = {row["client_id"]: row["bought"] for row in report["data"]}
    assert by_client[client["id"]] == report["services"] and by_client[other["id"]] == []
    by_provider = {row["provider_id"]: row["bought"] for row in report["providers"]}
    assert by_provider[provider["id"]] == [
        bought("cleaning", "3", 6000, 0, 2),
        bought("home_help", "1.5", 4500, 750, 1),
    ]
    assert by_provider[second["id"]] == [bought("home_help", "2", 5000, 0, 1)]
    # The items' amounts are part of what each provider captured.
    captured = {row["provider_id"]: row["captured"] for row in report["providers"]}
    assert captured[provider["id"]] == 6000 + 4500 + 999 and captured[second["id"]] == 5000

    # Once the code confirms the held charge, its items are bought.
    code = w.sms.last_code(other["phone"])
    await w.call("POST", f"/v1/charges/{pending['id']}/confirm", provider["token"], {"code": code}, expect=200)
    _, report = await w.call("GET", "/v1/reports/usage", w.finance, expect=200)
    assert {row["client_id"]: row["bought"] for row in report["data"]}[other["id"]] == [
        bought("home_help", "0.5", 1500, 250, 1)
    ]


# The finance export of items: one row per item, its amounts summing to the transactions export's charges.


async def export_rows(w: CheckedWorld, kind: str, export_format: str, **query: str) -> list[dict[str, Any]]:
    response = await w.http.get(
        f"/v1/exports/{kind}", params={"format": export_format, **query}, headers=w.auth(w.finance)
    )
    body = (await response.read()).decode()
    assert response.status == 200, body[:300]
    if export_format == "jsonl":
        return [json.loads(line) for line in body.splitlines()]
    if export_format == "csv-fi":
        assert body.startswith("\ufeff")
        return list(csv.DictReader(io.StringIO(body[1:]), delimiter=";"))
    return list(csv.DictReader(io.StringIO(body)))


@pytest.mark.parametrize("export_format", ["csv", "jsonl", "csv-fi"])
async def test_the_items_export_sums_to_the_itemized_charges_in_the_transactions_export(
    w: CheckedWorld, export_format: str
) -> None:
    client, provider = await marketplace(w, amount=100_000)
    w.service.settings = dataclasses.replace(w.service.settings, export_page_rows=2)  # many pages
    made = []
    for n in range(7):
        w.clock.advance(seconds=1)
        items = VISIT if n % 2 else [{"service": "rounding", "quantity": f"0.{n + 1}"}]
        made.append((await itemized(w, provider, client, items))[1])
    await w.charge(provider, client, 1234)  # a plain charge: a capture with no items
    held_body = {
        "phone": client["phone"],
        "items": [{"service": "cleaning", "quantity": 1}],
        "identity": {"method": "otp"},
    }
    await w.call("POST", "/v1/charges", provider["token"], held_body, expect=201)  # held: no capture yet
    await w.call("POST", f"/v1/charges/{made[1]['id']}/refunds", provider["token"], {"amount": 100}, expect=201)

    rows = await export_rows(w, "items", export_format)
    transactions = await export_rows(w, "transactions", export_format)
    itemized_captures = [t for t in transactions if t["type"] == "capture" and t["charge_id"] != ""]
    charge_ids = {charge["id"] for charge in made}
    assert (
        sum(int(row["amount"]) for row in rows)
        == sum(int(t["amount"]) for t in itemized_captures if t["charge_id"] in charge_ids)
        == sum(charge["amount"] for charge in made)
    )
    assert sum(int(t["amount"]) for t in itemized_captures) == sum(charge["amount"] for charge in made) + 1234
    # One row per item, in the order of the captures, each under its capture's transaction.
    expected = [(charge["id"], position) for charge in made for position in range(len(charge["items"]))]
    assert [(row["charge_id"], int(row["position"])) for row in rows] == expected
    by_transaction = {t["charge_id"]: t["transaction_id"] for t in itemized_captures}
    assert all(row["transaction_id"] == by_transaction[row["charge_id"]] for row in rows)
    first = rows[1]  # the second charge's first item: 1.5 h of home help
    assert (first["service"], first["unit"], int(first["unit_price"]), int(first["unit_value"])) == (
        "home_help",
        "hour",
        3500,
        3000,
    )
    assert (int(first["amount"]), int(first["own_share"]), first["business_id"]) == (4500, 750, BUSINESS_ID)
    assert first["quantity"] == ("1,5" if export_format == "csv-fi" else "1.5")
    if export_format == "csv-fi":
        assert first["amount_eur"] == "45,00"
    # From and to pick the captures' days, as the transactions export does.
    assert await export_rows(w, "items", export_format, **{"from": "2027-01-16"}) == []
    _, problem = await w.call("GET", "/v1/exports/items?format=xml", w.finance)
    assert problem["status"] == 422
    await w.call("GET", "/v1/exports/items", w.admin, expect=403)


# What an answer holds as null may be sent back: those optional members are documented as nullable.


async def test_members_the_answers_show_as_null_are_documented_nullable_and_read_as_absent(w: CheckedWorld) -> None:
    schemas = w.contract.document["components"]["schemas"]
    for shape, member in (
        ("NewOffer", "description"),
        ("NewOffer", "address"),
        ("OfferChange", "description"),
        ("OfferChange", "address"),
        ("NewCharge", "description"),
        ("NewRepresentation", "name"),
        ("SettlementPayment", "note"),
    ):
        documented = schemas[shape]["properties"][member]
        assert documented["type"] == ["string", "null"], (shape, member, documented)
        assert "null is read as absent" in documented["description"]
        assert "x-null-read-as-absent" not in documented and member not in schemas[shape].get("required", [])
    # Every optional member reads a null as absent, and says so; a required member is never nullable.
    assert schemas["NewClient"]["properties"]["national_id"]["type"] == ["string", "null"]
    assert schemas["NewClient"]["properties"]["phone"]["type"] == "string"

    client, provider = await marketplace(w)
    _, offers = await w.call("GET", f"/v1/providers/{provider['id']}/offers", provider["token"], expect=200)
    answered = next(o for o in offers["data"] if o["service"] == "home_help")
    assert (answered["description"], answered["address"]) == (None, None)
    change = {"unit_price": 3600, "description": answered["description"], "address": answered["address"]}
    path = f"/v1/providers/{provider['id']}/offers/{answered['id']}"
    _, changed = await w.call("PATCH", path, provider["token"], change, expect=200)
    assert (changed["unit_price"], changed["description"], changed["address"]) == (3600, None, None)
    _, described = await w.call("PATCH", path, provider["token"], {"description": "Arkisin"}, expect=200)
    _, kept = await w.call("PATCH", path, provider["token"], {"description": None, "unit_price": 3700}, expect=200)
    assert described["description"] == kept["description"] == "Arkisin"  # null: left as it is
    body = {"phone": client["phone"], "amount": 100, "category": "home_care", "description": None}
    _, charged = await w.call(
        "POST",
        "/v1/charges",
        provider["token"],
        {**body, "identity": {"method": "national_id", "national_id": NATIONAL_ID}},
        expect=201,
    )
    assert charged["description"] is None
