"""A full disk during a write: 503 with Retry-After, nothing partial, recovery without a restart."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tests.conftest import World
from wallet.storage.sql.units import unit_of_work

# SQLite's page limit stands in for a full disk; PostgreSQL's faults are in test_postgres.py.
pytestmark = pytest.mark.sqlite_only


@unit_of_work
def max_pages(pages: int | None) -> Any:
    """SQLite's own page limit on the writer's connection makes the database 'full' exactly as a
    full disk would (a unit at module level, so that it reaches the writer process too)."""

    def unit(connection: sqlite3.Connection) -> dict[str, int]:
        current = connection.execute("PRAGMA page_count").fetchone()[0]
        limit = pages if pages is not None else 1_073_741_823
        connection.execute(f"PRAGMA max_page_count = {max(limit, current)}")
        return {"pages": current}

    return unit


async def set_max_pages(world: World, pages: int | None) -> None:
    await world.service.storage.writer.submit(max_pages(pages), None, "now")  # type: ignore[attr-defined]


async def test_a_full_database_answers_503_and_recovers(world: World) -> None:
    client, provider = await world.funded(100_000)
    connection = sqlite3.connect(world.service.settings.db)
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.close()
    await set_max_pages(world, pages)
    refused = 0
    for n in range(200):  # fill the last free pages; then every write must be refused whole
        response = await world.http.post(
            "/v1/charges",
            json={
                "phone": client["phone"],
                "amount": 1,
                "category": "home_care",
                "identity": {"method": "national_id", "national_id": "131052-308T"},
                "description": "x" * 400,
            },
            headers=world.auth(provider["token"], **{"Idempotency-Key": f"fill-{n}"}),
        )
        if response.status == 503:
            body = await response.json()
            assert body["code"] == "unavailable" and response.headers["Retry-After"] == "1"
            refused += 1
            break
        assert response.status == 201, await response.text()
    assert refused == 1, "the database never filled up"
    world.check()  # nothing partial was written by the refused request
    await set_max_pages(world, None)
    status, body = await world.charge(provider, client, 1, key="after-the-fault")
    assert status == 201, body
