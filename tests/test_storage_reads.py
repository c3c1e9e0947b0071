"""Reads: short ones on the event loop's own connection, one consistent snapshot each; a read that
finds that connection in use, and every export scan, gets a pooled reader thread instead."""

from __future__ import annotations

import sqlite3

import aiosqlite
import pytest

from tests.conftest import World
from wallet.storage.sqlite.adapter import SqliteStorage

# SQLite's own read paths (the loop connection, the reader threads); PostgreSQL reads from a pool.
pytestmark = pytest.mark.sqlite_only


def storage_of(world: World) -> SqliteStorage:
    storage = world.service.storage
    assert isinstance(storage, SqliteStorage)
    return storage


async def test_a_read_inside_a_read_gets_a_pooled_reader_and_both_see_committed_state(world: World) -> None:
    client, _ = await world.funded(12_345)
    storage = storage_of(world)
    async with storage._read() as outer:
        assert not isinstance(outer, aiosqlite.Connection)  # the loop's own connection
        async with storage._read() as inner:  # as if the outer read had awaited something else
            assert isinstance(inner, aiosqlite.Connection)
            rows = await inner.execute_fetchall(
                "SELECT SUM(balance) FROM accounts WHERE client_id = ?", (client["id"],)
            )
        rows_outer = await outer.execute_fetchall(
            "SELECT SUM(balance) FROM accounts WHERE client_id = ?", (client["id"],)
        )
    assert list(rows)[0][0] == list(rows_outer)[0][0] == 12_345
    async with storage._read(scan=True) as scan:
        assert isinstance(scan, aiosqlite.Connection)


async def test_a_loop_read_sees_one_snapshot_while_the_writer_commits(world: World) -> None:
    client, provider = await world.funded(10_000)
    storage = storage_of(world)
    async with storage._read() as reader:
        before = list(
            await reader.execute_fetchall("SELECT balance FROM accounts WHERE client_id = ?", (client["id"],))
        )
        # A charge commits in the writer thread while this snapshot is open (awaiting the HTTP call
        # suspends this coroutine, but the snapshot stays on its connection).
        await world.charge(provider, client, 2_500)
        during = list(
            await reader.execute_fetchall("SELECT balance FROM accounts WHERE client_id = ?", (client["id"],))
        )
    assert [row[0] for row in during] == [row[0] for row in before]
    _, wallet = await world.call("GET", "/v1/me/wallet", token=client["token"], expect=200)
    assert wallet["balance"] == 7_500


class LockedConnection:
    """Stands in for the loop's connection while the database file is locked (every call fails as
    SQLite fails after its busy timeout); a real lock on a WAL database cannot be taken from a test
    while the service's own connections hold theirs."""

    def execute(self, *_: object) -> None:
        raise sqlite3.OperationalError("database is locked")


async def test_a_read_that_cannot_get_its_snapshot_is_refused_with_503_not_500(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = await world.funded(100)
    storage = storage_of(world)
    monkeypatch.setattr(storage._loop_reader, "_connection", LockedConnection())
    status, body = await world.call("GET", "/v1/me/wallet", token=client["token"])
    assert status == 503 and body["code"] == "unavailable"
    monkeypatch.undo()
    _, body = await world.call("GET", "/v1/me/wallet", token=client["token"], expect=200)
    assert body["balance"] == 100
