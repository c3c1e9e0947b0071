"""The audit log: every money movement and organizer action, hash-chained; `wallet check` finds
the first broken link."""

from __future__ import annotations

from typing import Any

from tests.conftest import World
from wallet.check import check_database


def rows(world: World) -> list[dict[str, Any]]:
    return world.records("SELECT * FROM audit_log ORDER BY seq")


async def test_actions_are_recorded_with_who_acted(world: World) -> None:
    client, provider = await world.funded(1_000)
    _, charge = await world.charge(provider, client, 100, method="otp")
    await world.call("POST", f"/v1/charges/{charge['id']}/void", provider["token"], expect=201)
    entries = rows(world)
    actions = [entry["action"] for entry in entries]
    for expected in ("category.created", "client.created", "budget.created", "ledger.credit", "provider.created",
                     "provider.approved", "charge.held", "charge.voided"):  # fmt: skip
        assert expected in actions, expected
    by_action = {entry["action"]: entry for entry in entries}
    assert by_action["budget.created"]["actor"] == "admin:admin-cli"
    assert by_action["charge.held"]["actor"] == f"provider:{provider['id']}"
    assert client["phone"] not in "".join(entry["data"] for entry in entries)


async def test_wallet_check_reports_the_first_broken_link(world: World) -> None:
    client, provider = await world.funded(1_000)
    await world.charge(provider, client, 100)
    path = world.service.settings.db
    assert check_database(path) == []
    with world.database() as database:  # an attacker with write access past the triggers
        if database.postgres:
            database.execute("SET session_replication_role = replica")  # triggers off, this session
        else:
            database.execute("DROP TRIGGER audit_log_append_only_update")
        victim = database.execute("SELECT seq FROM audit_log ORDER BY seq LIMIT 1 OFFSET 3")[0][0]
        database.execute("UPDATE audit_log SET data = '{\"forged\":true}' WHERE seq = ?", victim)
    breaches = check_database(path)
    assert breaches == [f"audit entry {victim}: its content does not match its hash"]
    world.check = lambda: None  # type: ignore[method-assign]  # this database is broken on purpose
