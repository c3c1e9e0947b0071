"""The PostgreSQL adapter on its own: one schema with SQLite's, migrations that nodes may run at
once, serialization failures run again, a lost connection answered with 503 and healed.

The contract suite (tests/conftest.py) runs the storage and API tests on both adapters; the
several-node tests with real ``wallet serve`` processes are in tests/test_postgres_nodes.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import World, postgres_dsn
from tests.pg import RawDatabase, create_schema
from wallet.check import check_database
from wallet.ledger.errors import Unavailable
from wallet.settings import Settings
from wallet.shapes import requests
from wallet.storage.migrations import migrate
from wallet.storage.postgres import PostgresStorage
from wallet.storage.postgres.adapter import ANALYSED_AFTER_BULK_WRITES
from wallet.storage.sql.writer_process import ProcessWriter
from wallet.storage.sqlite.adapter import SCHEMA_VERSION


def columns(database: RawDatabase) -> dict[str, list[str]]:
    if database.postgres:
        rows = database.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        )
    else:
        tables = [
            row[0]
            for row in database.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sqlite_sequence' ORDER BY name"
            )
        ]
        rows = [(table, row[1]) for table in tables for row in database.execute(f"PRAGMA table_info({table})")]
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    return found


def test_both_adapters_have_the_same_tables_and_columns(tmp_path: Path, postgres_schema: str) -> None:
    """One schema, two dialects: a table or column added to one and not the other fails here."""
    migrate(str(tmp_path / "wallet.db"))
    storage = storage_for(postgres_schema)
    asyncio.run(open_and_close(storage))
    with RawDatabase(str(tmp_path / "wallet.db")) as lite, RawDatabase(postgres_schema) as postgres:
        assert columns(postgres) == columns(lite)
        assert postgres.execute("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


def storage_for(dsn: str) -> PostgresStorage:
    return PostgresStorage(dsn, queue_max=100, batch_max=10, readers=2, retry_attempts=3, lock_timeout_seconds=10)


async def open_and_close(*storages: PostgresStorage) -> None:
    await asyncio.gather(*(storage.open() for storage in storages))
    for storage in storages:
        await storage.close()


def test_closing_ends_a_read_that_does_not_finish(postgres_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read stuck on a lock when the node stops (here: the statement sweep's, behind a lock held
    from outside) does not keep the node from closing, nor its connection and locks alive after."""
    import asyncpg

    from wallet.storage.postgres import adapter
    from wallet.storage.postgres.pool import connect_arguments

    monkeypatch.setattr(adapter, "POOL_CLOSE_SECONDS", 0.5)

    async def scenario() -> None:
        storage = storage_for(postgres_schema)
        await storage.open()
        outside = await asyncpg.connect(**connect_arguments(postgres_schema))

        async def activity(sql: str) -> int:  # read afresh: a transaction keeps its first look otherwise
            await outside.execute("SELECT pg_stat_clear_snapshot()")
            return int(await outside.fetchval(sql, storage.reader_name))

        try:
            async with outside.transaction():
                await outside.execute("LOCK TABLE notices IN ACCESS EXCLUSIVE MODE")
                read = asyncio.create_task(storage.statements_to_store("2026-11", 10))
                waiting = (
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'"
                )
                while not await activity(waiting):
                    assert not read.done(), "the read did not wait for the lock"
                    await asyncio.sleep(0.01)
                await asyncio.wait_for(storage.close(), 30)  # without the bound: waits for the read forever
                with pytest.raises(Unavailable):
                    await read
                alive = "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1"
                assert await activity(alive) == 0
        finally:
            await outside.close()

    asyncio.run(scenario())


def test_nodes_starting_at_once_migrate_once(postgres_schema: str) -> None:
    asyncio.run(open_and_close(*(storage_for(postgres_schema) for _ in range(3))))
    with RawDatabase(postgres_schema) as database:
        assert database.execute("SELECT COUNT(*) FROM schema_version") == [(1,)]
        assert database.execute("SELECT COUNT(*) FROM accounts WHERE id = 'funding'") == [(1,)]


def test_a_set_but_unreachable_server_is_an_error_not_a_skip() -> None:
    """What the fixtures do with WALLET_TEST_POSTGRES_DSN pointing at nothing: raise, so the test fails."""
    with pytest.raises(sqlite3.OperationalError):
        create_schema("postgresql://postgres@127.0.0.1:1/test", "wallet_test_nowhere")


def test_the_service_does_not_start_on_a_missing_schema() -> None:
    dsn = postgres_dsn()
    storage = storage_for(f"{dsn}{'&' if '?' in dsn else '?'}search_path=wallet_no_such_schema")
    with pytest.raises(Unavailable, match="schema"):
        asyncio.run(storage.open())


def test_a_postgresql_dsn_is_a_valid_wallet_db() -> None:
    settings = Settings.from_env({"WALLET_DB": "postgresql://wallet@db.example:5432/wallet"})
    assert settings.uses_postgres
    assert not Settings.from_env({"WALLET_DB": "data/wallet.db"}).uses_postgres


SERIALIZATION_FAILURE = "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$"


@pytest.mark.postgres_only
@pytest.mark.thread_writer  # a unit of this test's own, and the writer's count of retries
async def test_a_serialization_failure_runs_the_batch_again(world: World) -> None:
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    attempts: list[int] = []

    def flaky(connection: Any) -> dict[str, str]:
        attempts.append(1)
        connection.execute("INSERT INTO categories (code, name, created_at) VALUES ('respite', 'Vapaa', 'now')")
        if len(attempts) == 1:
            connection.execute(SERIALIZATION_FAILURE)
        return {"code": "respite"}

    written = await writer.submit(flaky, None, "now")
    assert written.value == {"code": "respite"} and len(attempts) == 2 and writer.retries == 1
    assert [c["code"] for c in await world.service.list_categories()] == ["respite"]  # written once


@pytest.mark.postgres_only
@pytest.mark.thread_writer  # a unit of this test's own
async def test_serialization_failures_past_the_limit_answer_503_and_write_nothing(world: World) -> None:
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    attempts: list[int] = []

    def doomed(connection: Any) -> None:
        attempts.append(1)
        connection.execute("INSERT INTO categories (code, name, created_at) VALUES ('doomed', 'x', 'now')")
        connection.execute(SERIALIZATION_FAILURE)

    with pytest.raises(Unavailable):
        await writer.submit(doomed, None, "now")
    assert len(attempts) == world.service.settings.postgres_retry_attempts
    assert await world.service.list_categories() == []


@pytest.mark.postgres_only
async def test_a_lost_database_connection_answers_503_and_the_next_write_reconnects(world: World) -> None:
    client, provider = await world.funded(1_000)
    with world.database() as database:  # the server drops the writer's connection (failover, restart)
        killed = database.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?",
            world.service.storage.writer.application_name,  # type: ignore[attr-defined]
        )
    assert any(row[0] for row in killed)
    status, body = await world.charge(provider, client, 100, key="during-the-outage")
    assert status == 503 and body["code"] == "unavailable", body
    status, body = await world.charge(provider, client, 100, key="during-the-outage")
    assert status == 201, body  # reconnected; the refused attempt left nothing behind
    assert (await world.wallet(client))["available"] == 900


def _connection_ports(pid: int) -> set[int]:
    """The local ports of the TCP sockets process ``pid`` holds."""
    from loadtests.pgcpu import _socket_inodes, _tcp_sockets

    sockets = _tcp_sockets()
    return {sockets[inode][0] for inode in _socket_inodes(pid) if inode in sockets}


@pytest.mark.postgres_only
async def test_a_node_writes_from_a_process_of_its_own_that_comes_back_when_killed(world: World) -> None:
    """``WALLET_WRITER_PROCESS`` on PostgreSQL: the write connection is the writer process's (its
    socket, not this process's), and a writer killed with SIGKILL is started again and its write
    lock released with its connection: the next write goes through."""
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    assert isinstance(writer, ProcessWriter) and writer.pid is not None and writer.pid != os.getpid()
    client, provider = await world.funded(1_000)
    status, _ = await world.charge(provider, client, 100)
    assert status == 201
    query = "SELECT client_port FROM pg_stat_activity WHERE application_name = ?"
    [(port,)] = world.sql(query, writer.application_name)
    assert port in _connection_ports(writer.pid) and port not in _connection_ports(os.getpid())

    killed = writer.pid
    os.kill(killed, signal.SIGKILL)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not (writer.alive and writer.pid != killed):
        assert loop.time() < deadline, "the writer process was not started again"
        await asyncio.sleep(0.05)
    status, body = await world.charge(provider, client, 100, key="after-the-kill")
    assert status == 201, body
    assert (await world.wallet(client))["available"] == 800
    [(port,)] = world.sql(query, writer.application_name)  # one write connection: the new process's
    assert port in _connection_ports(writer.pid)


# wallet migrate-to: a SQLite database copied to PostgreSQL and verified.


@pytest.mark.sqlite_only
async def test_migrate_to_copies_every_row_and_the_copy_serves_on(world: World, postgres_schema: str) -> None:
    from wallet.bootstrap import open_service
    from wallet.storage.postgres.transfer import TransferError, transfer

    client, provider = await world.funded(10_000)
    _, first = await world.charge(provider, client, 1_200, key="a")
    await world.charge(provider, client, 300, method="otp", key="b")
    await world.call("POST", f"/v1/charges/{first['id']}/refunds", provider["token"], {"amount": 200}, expect=201)
    await world.call("POST", "/v1/settlements", provider["token"], expect=201)
    before = await world.wallet(client)

    report = await asyncio.to_thread(transfer, world.service.settings.db, postgres_schema)

    assert report.breaches == []
    with world.database() as lite:
        for table, count in report.rows.items():
            assert lite.execute(f"SELECT COUNT(*) FROM {table}") == [(count,)], table
    assert report.rows["postings"] > 0 and report.rows["audit_log"] > 0 and report.rows["settlement_items"] == 2
    with RawDatabase(postgres_schema) as copied:  # analysed, as after a credit run (reltuples -1: never)
        analysed = copied.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
            " AND relkind = 'r' AND reltuples >= 0 ORDER BY relname"
        )
    assert [row[0] for row in analysed] == sorted(ANALYSED_AFTER_BULK_WRITES)
    copy = dataclasses.replace(world.service.settings, db=postgres_schema)
    async with open_service(copy, clock=world.clock, sms=world.sms) as service:
        wallet = await service.storage.get_wallet(client["id"], service.current_month())
        fields = ("balance", "held", "available", "lines", "last_event_id")
        assert {key: wallet[key] for key in fields} == {key: before[key] for key in fields}
        charges = await service.storage.list_charges(provider["id"], 10, None, None)
        assert len(charges.data) == 2
        # New rows follow the copied ones: ids, the event stream and the audit chain go on.
        await service.create_category(requests.NewCategory("transport", "Kuljetus"))
    assert check_database(postgres_schema) == []
    with pytest.raises(TransferError, match="not empty"):  # never over data already there
        await asyncio.to_thread(transfer, world.service.settings.db, postgres_schema)


@pytest.mark.postgres_only
async def test_a_node_that_loses_its_listen_connection_listens_again(world: World) -> None:
    from tests.test_events import charge_id, stream

    client, provider = await world.funded(10_000)
    storage = world.service.storage
    name = storage.listener_name  # type: ignore[attr-defined]

    def listening_pids() -> list[int]:
        return [row[0] for row in world.sql("SELECT pid FROM pg_stat_activity WHERE application_name = ?", name)]

    async with stream(world, client["token"]) as events:
        assert (await events.next_change())["event"] == "wallet"
        [before] = listening_pids()
        assert world.sql("SELECT pg_terminate_backend(?)", before) == [(True,)]
        charge = await charge_id(world, provider, client, 1_000)  # committed while the node may not listen
        event = await events.next_change()
        assert event["event"] == "capture" and event["data"]["charge_id"] == charge
        deadline = asyncio.get_running_loop().time() + 10
        while not (pids := listening_pids()) or pids == [before]:
            assert asyncio.get_running_loop().time() < deadline, "the node did not listen again"
            await asyncio.sleep(0.05)
        second = await charge_id(world, provider, client, 500)  # heard through the new connection
        event = await events.next_change()
        assert event["event"] == "capture" and event["data"]["charge_id"] == second


def test_a_dsn_password_never_reaches_the_log() -> None:
    from wallet.storage.migrations import shown

    assert shown("postgresql://wallet:s3cr3t@db.internal:5432/wallet?search_path=w") == (
        "postgresql://wallet:***@db.internal:5432/wallet?search_path=w"
    )
    assert shown("postgresql://postgres@127.0.0.1:5432/test") == "postgresql://postgres@127.0.0.1:5432/test"
    assert shown("data/wallet.db") == "data/wallet.db"


def test_a_streamed_read_comes_from_a_server_side_cursor_a_batch_at_a_time() -> None:
    """``PostgresConnection.stream`` (``wallet check``'s reads of every posting and audit entry):
    every row, in order, while the server holds the cursor and the client only a batch of rows."""
    from wallet.storage.postgres.connection import STREAM_ROWS, PostgresConnection

    connection = PostgresConnection(postgres_dsn())
    connection.connect()
    try:
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        total = 2 * STREAM_ROWS + 7
        seen: list[int] = []
        open_cursors = []
        for row in connection.stream("SELECT n FROM generate_series(1, ?) AS n", (total,)):
            seen.append(row["n"])
            if len(seen) in (1, STREAM_ROWS + 1):  # between the server's batches
                open_cursors.append(connection.execute("SELECT name FROM pg_cursors").fetchall())
        connection.execute("ROLLBACK")
    finally:
        connection.close()
    assert seen == list(range(1, total + 1))
    assert [[tuple(row) for row in rows] for rows in open_cursors] == [[("wallet_stream",)]] * 2


# What ``schema.sql`` made before the triggers on ``wallet_events`` ran once a statement: one call a row.
_ROW_TRIGGERS = (
    "DROP TRIGGER wallet_events_notify_statement ON wallet_events",
    "DROP TRIGGER wallet_events_receipt_statement ON wallet_events",
    """CREATE OR REPLACE FUNCTION wallet_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wallet_events.' || TG_TABLE_SCHEMA, NEW.client_id || ':' || NEW.seq);
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION wallet_events_receipt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO receipts (event_seq, client_id, created_at) VALUES (NEW.seq, NEW.client_id, NEW.created_at);
    RETURN NULL;
END $$""",
    "CREATE TRIGGER wallet_events_notify AFTER INSERT ON wallet_events"
    " FOR EACH ROW EXECUTE FUNCTION wallet_events_notify()",
    "CREATE TRIGGER wallet_events_receipt AFTER INSERT ON wallet_events"
    " FOR EACH ROW WHEN (NEW.type IN ('capture', 'refund', 'void')) EXECUTE FUNCTION wallet_events_receipt()",
)
_EVENTS_TRIGGERS_SQL = (
    "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relname = 'wallet_events'"
    " AND c.relnamespace = current_schema()::regnamespace AND t.tgname ~ ? ORDER BY t.tgname"
)


def test_a_schema_with_the_older_triggers_a_row_is_migrated_to_triggers_a_statement(postgres_schema: str) -> None:
    """An existing database, not only a new one: the next start replaces the row-level ``NOTIFY``
    and receipt triggers on ``wallet_events`` with statement-level ones, which still send one
    notification an event and write one receipt a capture, refund or void, in one multi-row INSERT."""
    import psycopg

    asyncio.run(open_and_close(storage_for(postgres_schema)))
    with RawDatabase(postgres_schema) as database:
        for statement in _ROW_TRIGGERS:
            database.execute(statement)
        assert database.execute(_EVENTS_TRIGGERS_SQL, "^wallet_events_(notify|receipt)") == [
            ("wallet_events_notify",),
            ("wallet_events_receipt",),
        ]
    asyncio.run(open_and_close(storage_for(postgres_schema)))
    schema = postgres_schema.rsplit("search_path=", 1)[1]
    with RawDatabase(postgres_schema) as database, psycopg.connect(postgres_dsn(), autocommit=True) as listener:
        assert database.execute(_EVENTS_TRIGGERS_SQL, "^wallet_events_(notify|receipt)") == [
            ("wallet_events_notify_statement",),
            ("wallet_events_receipt_statement",),
        ]
        listener.execute(f'LISTEN "wallet_events.{schema}"')
        database.execute(
            "INSERT INTO clients (id, name, phone_hash, phone_ciphertext, created_at) VALUES ('cl_1', 'A', 'h', 'c', 't')"
        )
        event = "('cl_1', ?, 'home_care', ?, 1, 1, 1, 1, 't')"
        inserted = database.execute(
            "INSERT INTO wallet_events (client_id, type, category, amount, line_balance, line_available, balance,"
            f" available, created_at) VALUES {event}, {event}, {event} RETURNING seq, type",
            "credit",
            100,
            "capture",
            -5,
            "refund",
            5,
        )
        notified = [notice.payload for notice in listener.notifies(timeout=5, stop_after=3)]
        assert notified == [f"cl_1:{seq}" for seq, _ in inserted]
        receipts = database.execute("SELECT event_seq, client_id FROM receipts ORDER BY event_seq")
        assert receipts == [(seq, "cl_1") for seq, kind in inserted if kind != "credit"]
