"""`GET /v1/municipalities`: the codes an offer may name, with their names, for the pages' pickers."""

from __future__ import annotations

from tests.conftest import World


async def test_every_signed_in_role_reads_the_municipalities_by_name(world: World) -> None:
    client, provider = await world.funded(1_000)
    for token in (world.admin, world.finance, client["token"], provider["token"]):
        _, page = await world.call("GET", "/v1/municipalities", token, expect=200)
        assert {"code": "205", "name": "Kajaani"} in page["data"] and page["next_cursor"] is None
    names = [place["name"] for place in page["data"]]
    assert names == sorted(names) and len(set(place["code"] for place in page["data"])) == len(names)
    # Each listed code is one an offer may name, and an offer naming it shows it.
    service = {"code": "home_help", "category": "home_care", "unit": "hour", "unit_value": 3000}
    names_of = {"name": {"fi": "Kotipalvelu", "sv": "Hemservice"}}
    await world.call("POST", "/v1/services", world.admin, {**service, **names_of}, expect=201)
    codes = [place["code"] for place in page["data"]]
    offer = {"service": "home_help", "unit_price": 3300, "municipalities": codes[:3]}
    _, made = await world.call("POST", f"/v1/providers/{provider['id']}/offers", provider["token"], offer, expect=201)
    assert made["municipalities"] == codes[:3]
    assert (await world.call("GET", "/v1/municipalities"))[0] == 401
