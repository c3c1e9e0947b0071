from tests.conftest import World


async def test_national_id_charge_captures_and_moves_the_balance(world: World) -> None:
    client, provider = await world.funded(10_000)
    status, charge = await world.charge(provider, client, 2_500)
    assert status == 201, charge
    assert charge["status"] == "captured" and charge["amount"] == 2_500 and charge["category"] == "home_care"
    wallet = await world.wallet(client)
    assert wallet["balance"] == 7_500 and wallet["available"] == 7_500 and wallet["held"] == 0
