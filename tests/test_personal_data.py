"""Personal data at rest: no phone number or national id in clear anywhere in the database."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NATIONAL_ID, World


async def test_phone_and_national_id_are_never_stored_in_clear(world: World) -> None:
    client, provider = await world.funded(1_000, phone="+358405556677")
    assert client["phone"] == "+358405556677"
    await world.charge(provider, client, 100)
    await world.charge(provider, client, 100, method="otp")
    await world.call("POST", "/v1/login", json={"phone": "040 555 6677"}, expect=202)
    _, fetched = await world.call("GET", f"/v1/clients/{client['id']}", world.admin, expect=200)
    assert fetched["phone"] == "+358405556677" and fetched["has_national_id"] is True
    database = Path(world.service.settings.db)
    files = [database, database.with_name(database.name + "-wal")]
    contents = b"".join(path.read_bytes() for path in files if path.exists())
    for secret in ("405556677", "0405556677", NATIONAL_ID, NATIONAL_ID.replace("-", "")):
        assert secret.encode() not in contents, secret
    assert world.sms.sent[-1]["to"] == "+358405556677"  # the number still reaches the SMS sender
