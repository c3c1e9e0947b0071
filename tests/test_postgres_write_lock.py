"""The exclusive write lock across nodes (PostgreSQL): group commit across nodes.

A node's writer tries the write lock with its batch's first statement. Held by another node, it
rolls back, waits for the lock in a round trip of its own, and once it has it adds to the batch
everything queued meanwhile: what arrived during the wait commits in that batch, not the next.
The tests hold the lock from outside, as another node's batch would, and queue charges behind it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from tests.conftest import World
from tests.pg import RawDatabase
from tests.test_side_by_side import DEADLINE_SECONDS, until, waiting_writer
from wallet.storage.postgres.connection import POSTGRES, PostgresConnection
from wallet.storage.postgres.dialect import TRY_WRITE_LOCK_SQL, WAIT_WRITE_LOCK_SQL, WRITE_LOCK_SQL, render_numbered
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.writer import Writer
from wallet.storage.sql.writer_process import ProcessWriter

pytestmark = pytest.mark.postgres_only

QUEUED = 4
LOCKS_HELD_SQL = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = ?"
WAITING_SQL = "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ? AND wait_event_type = 'Lock'"


def hold_write_lock(held: RawDatabase) -> int:
    """Begin a transaction on ``held`` holding the write lock exclusively, as another node's batch; its pid."""
    held.execute("BEGIN")
    held.execute(WRITE_LOCK_SQL)
    return int(held.execute("SELECT pg_backend_pid()")[0][0])


@pytest.mark.thread_writer  # a writer thread of this process: its queue is read here
async def test_charges_queued_while_another_node_holds_the_write_lock_commit_in_one_batch(world: World) -> None:
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    assert isinstance(writer, Writer)
    await _charges_queued_behind_the_lock(world, lambda: writer.queue_depth == QUEUED)


@pytest.mark.thread_writer  # reads the writer's own session
async def test_the_writer_keeps_prepared_only_its_inserts_of_values_and_its_locks(world: World) -> None:
    """After a batch of charges that waited for the lock and a credit run, what the write connection
    keeps prepared is ``INSERT ... VALUES`` and the advisory locks, whose plans no table's size can
    change; every statement that reads a table is still planned at each run."""
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    await _charges_queued_behind_the_lock(world, lambda: writer.queue_depth == QUEUED)
    await world.credit("2027-02")

    def prepared(connection: Connection) -> list[str]:
        return [row[0] for row in connection.fetch_tuples("SELECT statement FROM pg_prepared_statements", ())]

    statements = (await writer.submit(prepared, None, "now")).value
    inserts = [s for s in statements if s.startswith("INSERT INTO ")]
    assert {s.split()[2] for s in inserts} >= {"charges", "transactions", "postings", "wallet_events", "audit_log"}
    assert all(" VALUES (" in s and "SELECT" not in s and "WHERE" not in s for s in inserts), inserts
    locks = {render_numbered(TRY_WRITE_LOCK_SQL), render_numbered(WAIT_WRITE_LOCK_SQL)}
    assert set(statements) - set(inserts) == locks, statements


async def test_charges_sent_to_a_writer_process_waiting_for_the_write_lock_commit_in_one_batch(world: World) -> None:
    """The same with the writer in a process of its own (the default): what the serving process
    sent over the socket while the writer waited is read in once it has the lock."""
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    assert isinstance(writer, ProcessWriter)
    await _charges_queued_behind_the_lock(world, lambda: writer.queue_depth == 1 + QUEUED and writer.unsent == 0)


async def _charges_queued_behind_the_lock(world: World, queued: Callable[[], bool]) -> None:
    client, provider = await world.funded(1_000)
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    with world.database() as held, world.database() as watch:
        held_pid = hold_write_lock(held)
        batches = writer.batches
        first = asyncio.create_task(world.charge(provider, client, 300, key="first"))
        _, event, blockers = await until(lambda: waiting_writer(watch), "the writer waits for the write lock")
        assert event == "advisory" and blockers == [held_pid]
        more = [asyncio.create_task(world.charge(provider, client, 300, key=f"more-{n}")) for n in range(QUEUED)]
        await until(queued, "the charges queue behind the waiting batch")
        assert writer.batches == batches and not first.done()
        held.execute("COMMIT")
        answers = [await asyncio.wait_for(task, DEADLINE_SECONDS) for task in (first, *more)]
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201, 201, 201, 402, 402], answers  # one line: the charges of the batch see each other
    assert writer.batches == batches + 1 and writer.last_batch_size == 1 + QUEUED  # one commit for all five
    assert (await world.wallet(client))["available"] == 100


def test_a_tried_write_lock_another_holds_runs_nothing_and_lock_write_waits_for_it(postgres_schema: str) -> None:
    """``begin_write`` tries the lock with the first statement: held elsewhere, that statement
    raises ``write_lock_busy`` and nothing sent with it runs. ``lock_write`` then takes the lock,
    waiting, with the ``ROLLBACK`` still deferred in the same round trip, and says whether it waited."""
    connection: Connection = PostgresConnection(postgres_schema)
    other: Connection = PostgresConnection(postgres_schema)
    try:
        connection.execute("CREATE TABLE t (id integer PRIMARY KEY)")
        backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
        other.execute("BEGIN")
        other.execute(WRITE_LOCK_SQL)
        connection.begin_write()
        with pytest.raises(POSTGRES.write_lock_busy):
            connection.execute_pipeline([("INSERT INTO t VALUES (?)", (1,)), ("SELECT 1", ())])
        connection.defer("ROLLBACK")
        waited: list[bool] = []
        locking = threading.Thread(target=lambda: waited.append(connection.lock_write()))
        locking.start()
        try:
            deadline = time.monotonic() + DEADLINE_SECONDS
            while other.fetch_tuples(WAITING_SQL, (backend,)) != [(1,)]:
                assert time.monotonic() < deadline, "lock_write never waited"
                locking.join(0.01)
        finally:
            other.execute("COMMIT")
            locking.join(DEADLINE_SECONDS)
        assert waited == [True]
        assert other.fetch_tuples(LOCKS_HELD_SQL, (backend,)) == [(1,)]
        connection.execute("INSERT INTO t VALUES (?)", (2,))
        connection.execute("COMMIT")
        assert other.fetch_tuples("SELECT id FROM t", ()) == [(2,)]  # the tried INSERT never ran
        assert connection.lock_write() is False  # nobody holds it now
        connection.execute("ROLLBACK")
    finally:
        connection.close()
        other.close()
