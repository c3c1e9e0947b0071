"""A full write queue answers 503 with Retry-After at once, and the writes it took all commit.

The race is made, not hoped for: the test holds SQLite's write lock, so the writer waits in its
``BEGIN IMMEDIATE`` while the charges pile up; past ``WALLET_WRITER_QUEUE_MAX`` the service refuses
the rest immediately; once the lock is let go, every write it took commits.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import NATIONAL_ID, World
from wallet.settings import Settings

pytestmark = pytest.mark.sqlite_only

QUEUE_MAX = 5
CHARGES = 12


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, writer_queue_max=QUEUE_MAX, writer_batch_max=1, provider_charges_burst=1000)


async def test_a_full_write_queue_answers_503_with_retry_after(world: World) -> None:
    accepted = QUEUE_MAX  # the writer process's queue: every write sent and not yet answered
    client, provider = await world.funded(100_000)

    async def charge(number: int) -> tuple[int, dict[str, str], Any]:
        response = await world.http.post(
            "/v1/charges",
            json={
                "phone": client["phone"],
                "amount": 10,
                "category": "home_care",
                "identity": {"method": "national_id", "national_id": NATIONAL_ID},
            },
            headers=world.auth(provider["token"], **{"Idempotency-Key": f"queue-{number}"}),
        )
        return response.status, dict(response.headers), await response.json()

    blocker = sqlite3.connect(world.service.settings.db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer cannot begin: every write it takes waits
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        tasks = [asyncio.create_task(charge(number)) for number in range(CHARGES)]
        while sum(task.done() for task in tasks) < CHARGES - accepted:
            assert loop.time() < deadline, "the refusals never came"
            await asyncio.sleep(0.01)
        refused = [task.result() for task in tasks if task.done()]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    outcomes = await asyncio.gather(*tasks)
    statuses = sorted(status for status, _, _ in outcomes)
    assert statuses == [201] * accepted + [503] * (CHARGES - accepted), statuses
    for status, headers, body in refused:
        assert status == 503 and headers["Retry-After"] == "1" and body["code"] == "unavailable"
        assert "queued" in body["detail"]
    assert world.sql("SELECT COUNT(*) FROM charges")[0][0] == accepted
    assert (await world.wallet(client))["available"] == 100_000 - 10 * accepted
