"""The organizer's desk: clients and providers found by name, phone, national id or business id,
newest first, a page at a time; admin and finance only."""

from __future__ import annotations

from typing import Any

from tests.conftest import BUSINESS_ID, IBAN, NATIONAL_ID, OTHER_NATIONAL_ID, World
from wallet.auth.tokens import Role

OTHER_BUSINESS_ID = "0737546-2"


async def _client(world: World, name: str, phone: str, national_id: str | None = None) -> dict[str, Any]:
    body = {"name": name, "phone": phone, **({"national_id": national_id} if national_id else {})}
    return (await world.call("POST", "/v1/clients", world.admin, body, expect=201))[1]


async def _found(world: World, path: str, token: str | None = None) -> list[str]:
    _, page = await world.call("GET", path, token or world.admin, expect=200)
    return [item["id"] for item in page["data"]]


async def test_clients_are_found_by_name_phone_and_national_id(world: World) -> None:
    virtanen = await _client(world, "Matti Virtanen", "+358401110001", NATIONAL_ID)
    korhonen = await _client(world, "Liisa Korhonen", "+358401110002", OTHER_NATIONAL_ID)
    virtala = await _client(world, "Maija Virtala", "+358401110003")
    assert await _found(world, "/v1/clients?query=VIRTA") == [virtala["id"], virtanen["id"]]  # newest first
    assert await _found(world, "/v1/clients?query=korhonen") == [korhonen["id"]]
    # A phone as staff would type it, nationally, and a national id: exact, by keyed hash.
    assert await _found(world, "/v1/clients?query=040%20111%200002") == [korhonen["id"]]
    assert await _found(world, f"/v1/clients?query={NATIONAL_ID}") == [virtanen["id"]]
    assert await _found(world, "/v1/clients?query=010190-123M") == []  # a valid id nobody has
    assert await _found(world, "/v1/clients?query=nobody") == []
    assert await _found(world, "/v1/clients?query=%25") == []  # LIKE's wildcards are matched as text
    assert await _found(world, "/v1/clients") == [virtala["id"], korhonen["id"], virtanen["id"]]
    _, page = await world.call("GET", "/v1/clients?query=korhonen", world.finance, expect=200)
    assert page["data"][0] == {
        "id": korhonen["id"],
        "name": "Liisa Korhonen",
        "phone": "+358401110002",
        "has_national_id": True,
        "created_at": page["data"][0]["created_at"],
    }


async def test_the_client_list_is_paged_with_a_cursor(world: World) -> None:
    made = [await _client(world, f"Asiakas {n}", f"+35840222000{n}") for n in range(5)]
    seen: list[str] = []
    path = "/v1/clients?query=asiakas&limit=2"
    while True:
        _, page = await world.call("GET", path, world.admin, expect=200)
        assert len(page["data"]) <= 2
        seen += [item["id"] for item in page["data"]]
        if page["next_cursor"] is None:
            break
        path = f"/v1/clients?query=asiakas&limit=2&cursor={page['next_cursor']}"
    assert seen == [client["id"] for client in reversed(made)]


async def test_providers_are_found_by_name_and_business_id_and_filtered_by_status(world: World) -> None:
    await world.category()
    body = {"name": "Hoiva Oy", "business_id": BUSINESS_ID, "iban": IBAN, "categories": ["home_care"]}
    _, hoiva = await world.call("POST", "/v1/providers", world.admin, body, expect=201)
    body = {"name": "Kuntosali Voima", "business_id": OTHER_BUSINESS_ID, "iban": IBAN, "categories": ["home_care"]}
    _, voima = await world.call("POST", "/v1/providers", world.admin, body, expect=201)
    await world.call("POST", f"/v1/providers/{voima['id']}/approve", world.admin, expect=200)
    assert await _found(world, "/v1/providers?query=hoiva") == [hoiva["id"]]
    assert await _found(world, f"/v1/providers?query={OTHER_BUSINESS_ID}") == [voima["id"]]
    assert await _found(world, "/v1/providers?status=pending") == [hoiva["id"]]
    assert await _found(world, "/v1/providers?status=approved&query=hoiva") == []
    assert await _found(world, "/v1/providers", world.finance) == [voima["id"], hoiva["id"]]
    _, page = await world.call("GET", "/v1/providers?query=voima", world.admin, expect=200)
    assert page["data"][0]["status"] == "approved" and page["data"][0]["categories"] == ["home_care"]


async def test_the_desk_is_for_admin_and_finance_and_refuses_bad_queries(world: World) -> None:
    client = await _client(world, "Aino Asiakas", "+358401110009")
    provider_token = world.token(Role.PROVIDER, provider_id="pr_x")
    client_token = world.token(Role.CLIENT, client_id=client["id"])
    for token in (provider_token, client_token):
        for path in ("/v1/clients", "/v1/providers"):
            _, problem = await world.call("GET", path, token, expect=403)
            assert problem["code"] == "forbidden"
    await world.call("GET", "/v1/clients", expect=401)
    _, problem = await world.call("GET", "/v1/clients?query=" + "a" * 101, world.admin, expect=422)
    assert problem["code"] == "validation_error"
    await world.call("GET", "/v1/providers?status=gone", world.admin, expect=422)
    await world.call("GET", "/v1/clients?cursor=nonsense", world.admin, expect=422)
