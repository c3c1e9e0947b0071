"""A unit of work cut midway leaves nothing behind; its neighbours in the same commit are unharmed."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from tests.conftest import World
from wallet.storage.sql import charges
from wallet.storage.sql.units import unit_of_work


def count(world: World, table: str) -> int:
    return int(world.sql(f"SELECT COUNT(*) FROM {table}")[0][0])


@pytest.mark.thread_writer  # the patch reaches the units of this process only
async def test_a_charge_cut_after_its_postings_leaves_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    client, provider = await world.funded(1_000)
    before = {table: count(world, table) for table in ("charges", "transactions", "postings")}
    # The one-by-one unit (with WALLET_POSTGRES_SIDE_BY_SIDE a charge alone in its batch goes to the
    # batch runner: tests/test_side_by_side.py cuts that one).
    monkeypatch.setattr(world.service.storage.writer, "batch_runners", False)  # type: ignore[attr-defined]
    real_post = charges.post

    def post_then_crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        real_post(*args, **kwargs)
        raise RuntimeError("power cut between the postings and the end of the unit")

    monkeypatch.setattr(charges, "post", post_then_crash)
    status, body = await world.charge(provider, client, 400)
    assert status == 500 and body["code"] == "internal_error"
    monkeypatch.setattr(charges, "post", real_post)
    assert {table: count(world, table) for table in before} == before
    assert (await world.wallet(client))["available"] == 1_000


@unit_of_work
def good(name: str) -> Any:
    def unit(connection: sqlite3.Connection) -> dict[str, str]:
        connection.execute("INSERT INTO categories (code, name, created_at) VALUES (?, ?, 'now')", (name, name))
        return {"code": name}

    return unit


@unit_of_work
def bad() -> Any:
    def unit(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO categories (code, name, created_at) VALUES ('half', 'half', 'now')")
        raise RuntimeError("cut midway")

    return unit


async def test_one_failing_unit_does_not_undo_its_neighbours(world: World) -> None:
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    results = await asyncio.gather(
        writer.submit(good("a"), None, "now"),
        writer.submit(bad(), None, "now"),
        writer.submit(good("b"), None, "now"),
        return_exceptions=True,
    )
    assert isinstance(results[1], RuntimeError)
    codes = {row["code"] for row in await world.service.list_categories()}
    assert codes == {"a", "b"}


async def test_the_database_refuses_to_rewrite_the_ledger(world: World) -> None:
    client, provider = await world.funded(1_000)
    await world.charge(provider, client, 100)
    with world.database() as database:
        for statement in (
            "UPDATE postings SET amount = amount + 1",
            "DELETE FROM postings",
            "UPDATE transactions SET type = 'credit'",
            "DELETE FROM transactions",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                database.execute(statement)
        with pytest.raises(sqlite3.IntegrityError):
            database.execute("UPDATE accounts SET held = balance + 1 WHERE kind = 'wallet'")


async def test_requests_arriving_during_shutdown_get_503(world: World) -> None:
    from wallet.api.middlewares import SHUTTING_DOWN

    world.http.app[SHUTTING_DOWN].set()
    status, body = await world.call("GET", "/v1/categories", world.admin)
    assert status == 503 and body["code"] == "unavailable"
    world.http.app[SHUTTING_DOWN].clear()
