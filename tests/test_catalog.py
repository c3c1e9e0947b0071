"""The service marketplace (issue 22, items 1-3): the organizer's catalog with unit values from a day
on, providers' offers with their price history, and the comparison clients see, through the API
with every answer checked against the OpenAPI document."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import NATIONAL_ID, RecordingSms
from tests.test_openapi import CheckedWorld, Contract, fetch_document
from tests.test_representatives import link, representative_token
from wallet.auth.tokens import Role
from wallet.clock import FakeClock
from wallet.ledger.catalog import UnitValue, own_share_per_unit, value_on
from wallet.ledger.errors import InvariantViolation

NAME = {"fi": "Kotipalvelu, tunti", "sv": "Hemservice, timme"}


@pytest.fixture
async def w(http: TestClient, sms: RecordingSms, clock: FakeClock) -> AsyncIterator[CheckedWorld]:
    world = CheckedWorld(http, sms, clock)
    world.contract = Contract(await fetch_document(http))
    yield world
    world.check()  # every database a test leaves passes `wallet check`


async def service(
    w: CheckedWorld, code: str = "home_help", category: str = "home_care", unit_value: int = 3000, **extra: Any
) -> dict[str, Any]:
    body = {"code": code, "category": category, "name": NAME, "unit": "hour", "unit_value": unit_value, **extra}
    return dict((await w.call("POST", "/v1/services", w.admin, body, expect=201))[1])


async def offer(w: CheckedWorld, provider: dict[str, Any], code: str, unit_price: int, **extra: Any) -> dict[str, Any]:
    body = {"service": code, "unit_price": unit_price, **extra}
    path = f"/v1/providers/{provider['id']}/offers"
    return dict((await w.call("POST", path, provider["token"], body, expect=201))[1])


def count(w: CheckedWorld, table: str) -> int:
    return int(w.sql(f"SELECT COUNT(*) FROM {table}")[0][0])


# The rules.


def test_the_unit_value_in_force_is_the_latest_that_has_begun() -> None:
    history = [UnitValue("2027-01-15", 3000), UnitValue("2027-03-01", 3200), UnitValue("2027-02-01", 3100)]
    assert value_on(history, "2027-01-14") is None  # before the first: none
    assert value_on(history, "2027-01-15") == 3000
    assert value_on(history, "2027-01-31") == 3000
    assert value_on(history, "2027-02-01") == 3100  # from its first day on
    assert value_on(history, "2027-02-28") == 3100
    assert value_on(history, "2027-03-01") == 3200
    assert value_on(history, "2099-12-31") == 3200
    assert value_on([], "2027-01-15") is None


def test_the_own_share_is_the_price_above_the_unit_value() -> None:
    assert own_share_per_unit(2500, 3000) == 0
    assert own_share_per_unit(3000, 3000) == 0
    assert own_share_per_unit(3001, 3000) == 1
    assert own_share_per_unit(4500, 3000) == 1500
    with pytest.raises(InvariantViolation):
        own_share_per_unit(-1, 3000)


# 1. The catalog.


async def test_the_organizer_builds_the_catalog_every_role_reads(w: CheckedWorld) -> None:
    await w.category()
    created = await service(w, name={**NAME, "en": "Home help, hour"})
    assert created["code"] == "home_help" and created["id"].startswith("sv")
    assert created["name"] == {**NAME, "en": "Home help, hour"}
    assert (created["unit"], created["unit_value"]) == ("hour", 3000)
    assert created["unit_values"] == [{"valid_from": "2027-01-15", "unit_value": 3000}]  # from today
    without_english = await service(w, code="escort", unit_value=2000)
    assert "en" not in without_english["name"]

    client = await w.client()
    provider = await w.provider(["home_care"])
    for token in (w.admin, w.finance, provider["token"], client["token"]):
        _, page = await w.call("GET", "/v1/services", token, expect=200)
        assert [s["code"] for s in page["data"]] == ["escort", "home_help"]
    _, first = await w.call("GET", "/v1/services?limit=1", client["token"], expect=200)
    _, second = await w.call("GET", f"/v1/services?limit=1&cursor={first['next_cursor']}", w.admin, expect=200)
    assert [s["code"] for s in first["data"] + second["data"]] == ["escort", "home_help"]
    assert second["next_cursor"] is None
    _, one = await w.call("GET", f"/v1/services/{created['id']}", client["token"], expect=200)
    assert one == created
    await w.call("GET", "/v1/services/sv_nothing", w.admin, expect=404)
    await w.call("GET", "/v1/services", expect=401)

    # The audit says who added what.
    audited = w.records("SELECT actor, action, subject FROM audit_log WHERE action = 'service.created' ORDER BY seq")
    assert [(a["actor"].split(":")[0], a["subject"]) for a in audited] == [
        ("admin", created["id"]),
        ("admin", without_english["id"]),
    ]


async def test_bad_services_are_refused_and_write_nothing(w: CheckedWorld) -> None:
    await w.category()
    await service(w)
    provider = await w.provider(["home_care"])
    before = (count(w, "services"), count(w, "service_unit_values"), count(w, "audit_log"))
    good = {"code": "cleaning", "category": "home_care", "name": NAME, "unit": "visit", "unit_value": 2000}
    refusals: list[tuple[dict[str, Any], int, str]] = [
        ({**good, "code": "home_help"}, 409, "conflict"),
        ({**good, "category": "no_such"}, 422, "category_not_allowed"),
        ({**good, "unit": "week"}, 422, "validation_error"),
        ({**good, "unit_value": 0}, 422, "validation_error"),
        ({**good, "unit_value": -100}, 422, "validation_error"),
        ({**good, "unit_value": 100_000_001}, 422, "validation_error"),  # above the money limit
        ({**good, "unit_value": 20.5}, 422, "validation_error"),
        ({**good, "unit_value": "2000"}, 422, "validation_error"),
        ({**good, "name": {"fi": "Siivous"}}, 422, "validation_error"),  # Swedish is required
        ({**good, "name": {"fi": "Siivous", "sv": "   "}}, 422, "validation_error"),
        ({**good, "name": "Siivous"}, 422, "validation_error"),
        ({**good, "code": "has space"}, 422, "validation_error"),
    ]
    for body, status, code in refusals:
        _, problem = await w.call("POST", "/v1/services", w.admin, body, expect=status)
        assert problem["code"] == code, (body, problem)
    await w.call("POST", "/v1/services", provider["token"], good, expect=403)
    assert (count(w, "services"), count(w, "service_unit_values"), count(w, "audit_log")) == before


async def test_a_unit_value_changes_from_a_day_on_and_the_past_stays(w: CheckedWorld) -> None:
    await w.category()
    created = await service(w)
    path = f"/v1/services/{created['id']}/unit-values"
    _, changed = await w.call("POST", path, w.admin, {"unit_value": 3200, "valid_from": "2027-02-01"}, expect=201)
    assert changed["unit_value"] == 3000  # today is still the old value's
    assert changed["unit_values"] == [
        {"valid_from": "2027-01-15", "unit_value": 3000},
        {"valid_from": "2027-02-01", "unit_value": 3200},
    ]
    before = (count(w, "service_unit_values"), count(w, "audit_log"))
    refusals: list[tuple[dict[str, Any], int]] = [
        ({"unit_value": 3100, "valid_from": "2027-01-14"}, 422),  # a past day
        ({"unit_value": 3100, "valid_from": "2027-01-20"}, 409),  # before the value already set
        ({"unit_value": 3100, "valid_from": "2027-02-01"}, 409),  # the same day again: never rewritten
        ({"unit_value": 3100, "valid_from": "2027-02-30"}, 422),
        ({"unit_value": 3100, "valid_from": "1.2.2027"}, 422),
        ({"unit_value": 0, "valid_from": "2027-03-01"}, 422),
        ({"valid_from": "2027-03-01"}, 422),
    ]
    for body, status in refusals:
        await w.call("POST", path, w.admin, body, expect=status)
    later = {"unit_value": 1, "valid_from": "2027-03-01"}
    await w.call("POST", "/v1/services/sv_nothing/unit-values", w.admin, later, expect=404)
    await w.call("POST", path, w.token(Role.PROVIDER, provider_id="pr_any"), later, expect=403)
    assert (count(w, "service_unit_values"), count(w, "audit_log")) == before

    # On its first day (midnight in Helsinki is 22:00 UTC the day before) the new value is in force.
    w.clock.advance(days=16, hours=11, minutes=59)  # 2027-01-31 23:59 in Helsinki
    w.admin = w.token(Role.ADMIN)  # the first one has expired meanwhile
    _, seen = await w.call("GET", f"/v1/services/{created['id']}", w.admin, expect=200)
    assert seen["unit_value"] == 3000
    w.clock.advance(minutes=1)
    _, seen = await w.call("GET", f"/v1/services/{created['id']}", w.admin, expect=200)
    assert seen["unit_value"] == 3200
    audited = w.records("SELECT data FROM audit_log WHERE action = 'service.unit_value_set'")
    assert len(audited) == 1 and '"valid_from":"2027-02-01"' in audited[0]["data"]


# 2. Providers' offers.


async def test_a_provider_offers_what_it_is_approved_for_and_keeps_its_price_history(w: CheckedWorld) -> None:
    await w.category()
    await w.category("transport", "Kuljetus")
    await service(w)
    await service(w, code="taxi", category="transport", unit_value=1500)
    provider = await w.provider(["home_care"])
    made = await offer(
        w,
        provider,
        "home_help",
        3500,
        description="Kotiin, arkisin",
        municipalities=["205", "765", "205"],
        languages=["fi", "sv"],
        address="Kauppakatu 1, Kajaani",
    )
    assert (made["service"], made["status"], made["unit_price"]) == ("home_help", "active", 3500)
    assert (made["municipalities"], made["languages"]) == (["205", "765"], ["fi", "sv"])
    assert made["provider_id"] == provider["id"] and made["withdrawn_at"] is None

    # Not approved for the category: 403 provider_not_approved, and nothing written.
    offers_before = (count(w, "offers"), count(w, "offer_prices"), count(w, "audit_log"))
    path = f"/v1/providers/{provider['id']}/offers"
    _, problem = await w.call("POST", path, provider["token"], {"service": "taxi", "unit_price": 1000}, expect=403)
    assert problem["code"] == "provider_not_approved"
    refusals: list[tuple[dict[str, Any], int]] = [
        ({"service": "home_help", "unit_price": 3000}, 409),  # one active offer per service
        ({"service": "no_such", "unit_price": 3000}, 422),
        ({"service": "home_help", "unit_price": 0}, 422),
        ({"service": "home_help", "unit_price": 12.5}, 422),
        ({"service": "home_help", "unit_price": 100_000_001}, 422),
        ({"service": "home_help", "unit_price": 3000, "municipalities": ["999"]}, 422),  # no such municipality
        ({"service": "home_help", "unit_price": 3000, "municipalities": ["Kajaani"]}, 422),
        ({"service": "home_help", "unit_price": 3000, "languages": ["xx"]}, 422),
        ({"service": "home_help", "unit_price": 3000, "languages": ["FI"]}, 422),
        ({"service": "home_help", "unit_price": 3000, "address": "x" * 201}, 422),
    ]
    for body, status in refusals:
        await w.call("POST", path, provider["token"], body, expect=status)
    # Another provider's offers are as if the provider did not exist; the organizer may act for it.
    other = await w.provider(["home_care", "transport"])
    await w.call("POST", path, other["token"], {"service": "home_help", "unit_price": 3000}, expect=404)
    await w.call("GET", path, other["token"], expect=404)
    client = await w.client()
    await w.call("POST", path, client["token"], {"service": "home_help", "unit_price": 3000}, expect=403)
    assert (count(w, "offers"), count(w, "offer_prices")) == offers_before[:2]
    for_other = f"/v1/providers/{other['id']}/offers"
    _, by_admin = await w.call("POST", for_other, w.admin, {"service": "taxi", "unit_price": 1400}, expect=201)
    assert by_admin["provider_id"] == other["id"]

    # A change of price joins the history; lists sent replace the lists.
    offer_path = f"{path}/{made['id']}"
    w.clock.advance(minutes=5)
    _, changed = await w.call(
        "PATCH", offer_path, provider["token"], {"unit_price": 3300, "languages": ["fi"]}, expect=200
    )
    assert changed["unit_price"] == 3300 and changed["languages"] == ["fi"]
    assert changed["municipalities"] == ["205", "765"] and changed["description"] == "Kotiin, arkisin"
    assert [p["unit_price"] for p in changed["unit_prices"]] == [3500, 3300]
    assert changed["unit_prices"][0]["valid_from"] < changed["unit_prices"][1]["valid_from"]
    await w.call("PATCH", offer_path, provider["token"], {}, expect=422)
    await w.call("PATCH", offer_path, provider["token"], {"unit_price": -1}, expect=422)
    await w.call("PATCH", offer_path, other["token"], {"unit_price": 1}, expect=404)
    await w.call("PATCH", f"{path}/of_nothing", provider["token"], {"unit_price": 1}, expect=404)

    # Withdrawn: kept, with its prices, and no longer changed.
    _, withdrawn = await w.call("POST", f"{offer_path}/withdraw", provider["token"], expect=200)
    assert withdrawn["status"] == "withdrawn" and withdrawn["withdrawn_at"] is not None
    assert [p["unit_price"] for p in withdrawn["unit_prices"]] == [3500, 3300]
    _, again = await w.call("POST", f"{offer_path}/withdraw", provider["token"], expect=200)
    assert again == withdrawn
    await w.call("PATCH", offer_path, provider["token"], {"unit_price": 3000}, expect=409)
    renewed = await offer(w, provider, "home_help", 3100)  # a withdrawn offer leaves room for a new one

    _, listed = await w.call("GET", path, provider["token"], expect=200)
    assert [(o["id"], o["status"]) for o in listed["data"]] == [(renewed["id"], "active"), (made["id"], "withdrawn")]
    _, first = await w.call("GET", f"{path}?limit=1", w.finance, expect=200)
    _, rest = await w.call("GET", f"{path}?limit=1&cursor={first['next_cursor']}", w.admin, expect=200)
    assert [o["id"] for o in first["data"] + rest["data"]] == [renewed["id"], made["id"]]

    # A suspended provider makes and changes no offers.
    await w.call("POST", f"/v1/providers/{provider['id']}/suspend", w.admin, expect=200)
    _, problem = await w.call("PATCH", f"{path}/{renewed['id']}", provider["token"], {"unit_price": 1}, expect=403)
    assert problem["code"] == "provider_not_approved"

    actions = [row[0] for row in w.sql("SELECT action FROM audit_log WHERE action LIKE ? ORDER BY seq", "offer.%")]
    assert actions == ["offer.created", "offer.created", "offer.changed", "offer.withdrawn", "offer.created"]
    with pytest.raises(Exception, match="append-only"):
        w.sql("UPDATE offer_prices SET unit_price = 1")


# 3. The comparison.


async def test_clients_compare_approved_providers_by_their_own_share(w: CheckedWorld) -> None:
    await w.category()
    await service(w, unit_value=3000)
    await service(w, code="escort", unit_value=2000)
    dear = await w.provider(["home_care"])
    cheap = await w.provider(["home_care"])
    equal = await w.provider(["home_care"])
    pending = await w.provider(["home_care"], approve=False)
    suspended_later = await w.provider(["home_care"])
    made = {
        "dear": await offer(w, dear, "home_help", 3500, municipalities=["205"], languages=["fi", "sv"], address="A 1"),
        "cheap": await offer(w, cheap, "home_help", 2800, municipalities=["205", "765"], languages=["fi"]),
        "equal": await offer(w, equal, "home_help", 3000, municipalities=["765"], languages=["sv"]),
        "pending": await offer(w, pending, "home_help", 100, municipalities=["205"], languages=["fi"]),
        "suspended": await offer(w, suspended_later, "home_help", 200, municipalities=["205"], languages=["fi"]),
        "escort": await offer(w, cheap, "escort", 2500),
    }
    await w.call("POST", f"/v1/providers/{suspended_later['id']}/suspend", w.admin, expect=200)
    client = await w.client()

    _, page = await w.call("GET", "/v1/offers?service=home_help", client["token"], expect=200)
    seen = [(o["offer_id"], o["unit_price"], o["unit_value"], o["own_share_per_unit"]) for o in page["data"]]
    assert seen == [
        (made["cheap"]["id"], 2800, 3000, 0),  # below the unit value: no own share
        (made["equal"]["id"], 3000, 3000, 0),
        (made["dear"]["id"], 3500, 3000, 500),
    ]  # never the pending provider's, nor the one suspended after it made its offer
    first = page["data"][2]
    assert (first["provider_id"], first["provider_name"], first["service"]) == (dear["id"], "Hoiva Oy", "home_help")
    assert (first["municipalities"], first["languages"], first["address"]) == (["205"], ["fi", "sv"], "A 1")
    assert first["service_name"] == NAME and first["unit"] == "hour"

    async def offer_ids(query: str, token: str | None = None) -> list[str]:
        _, found = await w.call("GET", f"/v1/offers?{query}", token or client["token"], expect=200)
        return [o["offer_id"] for o in found["data"]]

    assert await offer_ids("service=home_help&municipality=205") == [made["cheap"]["id"], made["dear"]["id"]]
    assert await offer_ids("service=home_help&language=sv") == [made["equal"]["id"], made["dear"]["id"]]
    assert await offer_ids("service=home_help&municipality=765&language=fi") == [made["cheap"]["id"]]
    assert await offer_ids("municipality=105") == []
    assert made["escort"]["id"] in await offer_ids("", w.admin)
    assert await offer_ids("service=escort", w.finance) == [made["escort"]["id"]]

    # Page by page, the same order.
    collected: list[str] = []
    query = "service=home_help&limit=1"
    while True:
        _, one = await w.call("GET", f"/v1/offers?{query}", client["token"], expect=200)
        collected += [o["offer_id"] for o in one["data"]]
        if one["next_cursor"] is None:
            break
        query = f"service=home_help&limit=1&cursor={one['next_cursor']}"
    assert collected == [made["cheap"]["id"], made["equal"]["id"], made["dear"]["id"]]

    # A change shows at once: approval, a new price, a withdrawal, a suspension.
    await w.call("POST", f"/v1/providers/{pending['id']}/approve", w.admin, expect=200)
    assert (await offer_ids("service=home_help"))[0] == made["pending"]["id"]
    await w.call(
        "PATCH",
        f"/v1/providers/{cheap['id']}/offers/{made['cheap']['id']}",
        cheap["token"],
        {"unit_price": 4000},
        expect=200,
    )
    await w.call(
        "POST", f"/v1/providers/{equal['id']}/offers/{made['equal']['id']}/withdraw", equal["token"], expect=200
    )
    await w.call("POST", f"/v1/providers/{pending['id']}/suspend", w.admin, expect=200)
    _, after = await w.call("GET", "/v1/offers?service=home_help", client["token"], expect=200)
    assert [(o["offer_id"], o["own_share_per_unit"]) for o in after["data"]] == [
        (made["dear"]["id"], 500),
        (made["cheap"]["id"], 1000),
    ]

    # Bad questions are refused; providers do not browse their competitors here.
    for bad in ("municipality=999", "language=xx", "service=has%20space", "limit=0", "cursor=bm9wZQ"):
        await w.call("GET", f"/v1/offers?{bad}", client["token"], expect=422)
    await w.call("GET", "/v1/offers", dear["token"], expect=403)
    await w.call("GET", "/v1/offers", expect=401)

    # A representative compares for the client.
    await link(w, client, scope="view")
    representative = await representative_token(w)
    assert await offer_ids("service=home_help", representative) == [made["dear"]["id"], made["cheap"]["id"]]


# 4. Itemized charges.


async def itemized(
    w: CheckedWorld,
    provider: dict[str, Any],
    client: dict[str, Any],
    items: list[dict[str, Any]],
    key: str | None = None,
    **extra: Any,
) -> tuple[int, Any]:
    body = {"phone": client["phone"], "items": items, "identity": {"method": "national_id", "national_id": NATIONAL_ID}}
    return await w.call("POST", "/v1/charges", provider["token"], {**body, **extra}, key=key)


async def marketplace(w: CheckedWorld, amount: int = 20_000) -> tuple[dict[str, Any], dict[str, Any]]:
    """A client with ``amount`` on home_care; a provider approved for it offering three services: one
    above its unit value, one at it, one with prices that round."""
    client, provider = await w.funded(amount)
    await service(w, code="home_help", unit_value=3000)
    await service(w, code="cleaning", unit_value=2000)
    await service(w, code="rounding", unit_value=2999)
    await offer(w, provider, "home_help", 3500)
    await offer(w, provider, "cleaning", 2000)
    await offer(w, provider, "rounding", 3333)
    return client, provider


async def test_each_item_is_priced_the_budget_paying_at_most_the_unit_value(w: CheckedWorld) -> None:
    client, provider = await marketplace(w)
    status, charged = await itemized(
        w, provider, client, [{"service": "home_help", "quantity": 1.5}, {"service": "cleaning", "quantity": "2"}]
    )
    assert status == 201, charged
    assert (charged["status"], charged["category"], charged["amount"], charged["own_share"]) == (
        "captured",
        "home_care",
        4500 + 4000,  # 1.5 h at the unit value 30,00 €; two visits at their price, which is the unit value
        750,  # 1.5 h x 5,00 € above the unit value, paid to the provider directly
    )
    assert charged["items"] == [
        {
            "service": "home_help",
            "quantity": "1.5",
            "unit_price": 3500,
            "unit_value": 3000,
            "amount": 4500,
            "own_share": 750,
            "service_date": "2027-01-15",
        },
        {
            "service": "cleaning",
            "quantity": "2",
            "unit_price": 2000,
            "unit_value": 2000,
            "amount": 4000,
            "own_share": 0,
            "service_date": "2027-01-15",
        },
    ]
    assert (await w.wallet(client))["available"] == 20_000 - 8500  # the own share never leaves the wallet
    _, seen = await w.call("GET", f"/v1/charges/{charged['id']}", provider["token"], expect=200)
    assert seen["items"] == charged["items"] and seen["own_share"] == 750
    _, listed = await w.call("GET", "/v1/charges", provider["token"], expect=200)
    assert listed["data"][0]["items"] == charged["items"]

    # Rounded half up, once per item: 0.01 h x 29,99 € = 0,2999 € → 0,30 €; 0.5 h x 29,99 € = 14,995 €
    # → 15,00 €, the price 0.5 h x 33,33 € = 16,665 € → 16,67 €, so the own share is 1,67 €.
    rounding = [{"service": "rounding", "quantity": "0.01"}, {"service": "rounding", "quantity": 0.5}]
    _, rounded = await itemized(w, provider, client, rounding)
    assert [(i["amount"], i["own_share"]) for i in rounded["items"]] == [(30, 3), (1500, 167)]
    assert (rounded["amount"], rounded["own_share"]) == (1530, 170)

    # A price below the unit value: the budget pays the price, no own share.
    cheaper = await w.provider(["home_care"])
    await offer(w, cheaper, "home_help", 2550)
    _, below = await itemized(w, cheaper, client, [{"service": "home_help", "quantity": "0.75"}])
    assert (below["amount"], below["own_share"]) == (1913, 0)  # 0.75 x 25,50 € = 19,125 € → 19,13 €


async def test_bad_items_are_refused_and_write_nothing(w: CheckedWorld) -> None:
    client, provider = await marketplace(w, amount=5000)
    await w.category("transport", "Kuljetus")
    await service(w, code="taxi", category="transport", unit_value=1500)
    await service(w, code="meals", unit_value=800)  # in home_care, but not offered by this provider
    tables = ("charges", "charge_items", "transactions", "postings", "wallet_events", "audit_log")
    before = {table: count(w, table) for table in tables}
    one = {"service": "home_help", "quantity": 1}
    refusals: list[tuple[list[dict[str, Any]] | None, dict[str, Any], int, str]] = [
        ([{"service": "nothing", "quantity": 1}], {}, 422, "validation_error"),
        ([{"service": "home_help", "quantity": 0}], {}, 422, "validation_error"),
        ([{"service": "home_help", "quantity": -1}], {}, 422, "validation_error"),
        ([{"service": "home_help", "quantity": "1.005"}], {}, 422, "validation_error"),  # three decimals
        ([{"service": "home_help", "quantity": 1.005}], {}, 422, "validation_error"),
        ([{"service": "home_help", "quantity": 1001}], {}, 422, "validation_error"),  # above QUANTITY_MAX
        ([{"service": "home_help", "quantity": "1e3"}], {}, 422, "validation_error"),
        ([{"service": "home_help", "quantity": "puolitoista"}], {}, 422, "validation_error"),
        ([{"service": "home_help", "quantity": True}], {}, 422, "validation_error"),
        ([{"service": "home_help"}], {}, 422, "validation_error"),
        ([], {}, 422, "validation_error"),
        ([one, {"service": "taxi", "quantity": 1}], {}, 422, "category_not_allowed"),  # one line per charge
        ([{"service": "meals", "quantity": 1}], {}, 422, "validation_error"),  # no offer of it
        ([{**one, "service_date": "2027-01-16"}], {}, 422, "validation_error"),  # not yet delivered
        ([{**one, "service_date": "2027-01-14"}], {}, 422, "validation_error"),  # before any unit value
        ([{**one, "service_date": "15.1.2027"}], {}, 422, "validation_error"),
        ([one], {"amount": 100}, 422, "validation_error"),  # items come in place of amount and category
        ([one], {"category": "home_care"}, 422, "validation_error"),
        (
            [{"service": "home_help", "quantity": 1.5}, {"service": "cleaning", "quantity": 1}],
            {},
            402,
            "insufficient_funds",
        ),
    ]
    for items, extra, status, code in refusals:
        _, problem = await itemized(w, provider, client, items or [], **extra)
        assert (problem["status"], problem["code"]) == (status, code), (items, extra, problem)
    _, problem = await w.call(
        "POST", "/v1/charges", provider["token"], {"phone": client["phone"], "identity": {"method": "otp"}}
    )
    assert problem["code"] == "validation_error"  # neither amount nor items
    taxi_driver = await w.provider(["transport"])
    await offer(w, taxi_driver, "taxi", 1500)
    _, problem = await itemized(w, taxi_driver, client, [{"service": "taxi", "quantity": 1}])
    assert problem["code"] == "category_not_allowed"  # not a line of the client's budget
    await w.call("POST", f"/v1/providers/{provider['id']}/suspend", w.admin, expect=200)
    _, problem = await itemized(w, provider, client, [one])
    assert (problem["status"], problem["code"]) == (403, "provider_not_approved")
    assert {table: count(w, table) for table in tables if table != "audit_log"} == {
        table: n for table, n in before.items() if table != "audit_log"
    }
    assert (await w.wallet(client))["available"] == 5000


async def test_a_changed_price_or_unit_value_leaves_past_charges_as_they_were(w: CheckedWorld) -> None:
    client, provider = await marketplace(w)
    _, first = await itemized(w, provider, client, [{"service": "home_help", "quantity": 2}], key="visit-1")
    offers = (await w.call("GET", f"/v1/providers/{provider['id']}/offers", provider["token"]))[1]["data"]
    home_help = next(o for o in offers if o["service"] == "home_help")
    await w.call(
        "PATCH",
        f"/v1/providers/{provider['id']}/offers/{home_help['id']}",
        provider["token"],
        {"unit_price": 4000},
        expect=200,
    )
    services = (await w.call("GET", "/v1/services", w.admin))[1]["data"]
    service_id = next(s["id"] for s in services if s["code"] == "home_help")
    await w.call(
        "POST",
        f"/v1/services/{service_id}/unit-values",
        w.admin,
        {"unit_value": 3600, "valid_from": "2027-01-16"},
        expect=201,
    )
    _, seen = await w.call("GET", f"/v1/charges/{first['id']}", provider["token"], expect=200)
    assert seen["items"] == first["items"] and (seen["amount"], seen["own_share"]) == (6000, 1000)

    w.clock.advance(days=1)
    provider["token"] = w.token(Role.PROVIDER, provider_id=provider["id"])
    _, later = await itemized(w, provider, client, [{"service": "home_help", "quantity": 1}])
    assert [(i["unit_price"], i["unit_value"], i["amount"], i["own_share"]) for i in later["items"]] == [
        (4000, 3600, 3600, 400)
    ]
    # Delivered yesterday: yesterday's unit value, today's price.
    _, yesterday = await itemized(
        w, provider, client, [{"service": "home_help", "quantity": 1, "service_date": "2027-01-15"}]
    )
    assert [(i["unit_value"], i["amount"], i["own_share"]) for i in yesterday["items"]] == [(3000, 3000, 1000)]

    # A retried request answers the first response and charges nothing more.
    before = count(w, "charge_items")
    status, replayed, headers = await w.raw(
        "POST",
        "/v1/charges",
        provider["token"],
        json={
            "phone": client["phone"],
            "items": [{"service": "home_help", "quantity": 2}],
            "identity": {"method": "national_id", "national_id": NATIONAL_ID},
        },
        key="visit-1",
    )
    assert status == 201 and headers.get("Idempotent-Replayed") == "true" and replayed == first
    assert count(w, "charge_items") == before


async def test_an_itemized_charge_held_for_a_code_holds_the_budget_s_part(w: CheckedWorld) -> None:
    client, provider = await marketplace(w)
    body = {
        "phone": client["phone"],
        "items": [{"service": "home_help", "quantity": "1.25"}],
        "identity": {"method": "otp"},
    }
    _, pending = await w.call("POST", "/v1/charges", provider["token"], body, expect=201)
    assert (pending["status"], pending["amount"], pending["own_share"]) == ("pending", 3750, 625)
    assert (await w.wallet(client))["held"] == 3750
    assert "37,50" in w.sms.sent[-1]["text"]  # the code's SMS names what the wallet pays
    code = w.sms.last_code(client["phone"])
    _, confirmed = await w.call(
        "POST", f"/v1/charges/{pending['id']}/confirm", provider["token"], {"code": code}, expect=200
    )
    assert confirmed["status"] == "captured"
    _, seen = await w.call("GET", f"/v1/charges/{pending['id']}", provider["token"], expect=200)
    assert seen["items"] == pending["items"]


async def test_the_organizer_may_take_only_itemized_charges(w: CheckedWorld) -> None:
    client, provider = await marketplace(w)
    assert (await w.charge(provider, client, 100))[0] == 201  # by default a bare amount is allowed
    w.service.settings = dataclasses.replace(w.service.settings, plain_amount_charges=False)
    before = count(w, "charges")
    status, problem = await w.charge(provider, client, 100)
    assert (status, problem["code"], problem["field"]) == (422, "validation_error", "items")
    assert count(w, "charges") == before
    assert (await itemized(w, provider, client, [{"service": "cleaning", "quantity": 1}]))[0] == 201
