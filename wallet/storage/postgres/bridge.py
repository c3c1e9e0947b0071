"""A ``sqlite3``-shaped face on one asyncpg connection, so that the units of work run unchanged.

The units of work (``wallet/storage/sqlite/ops.py``, ``settlements.py``, ``reconciliations.py``)
are plain functions of a connection with ``execute(sql, params).fetchone()``: the one place where
the money rules meet SQL. Rather than fork them, PostgreSQL runs the very same functions: this
connection owns a private event loop and drives asyncpg to completion on each call, in the thread
that calls it (the writer's thread, or ``wallet check``'s). There is still no ``await`` inside a
unit, and nothing can come between its reads and its writes.

The dialect differences are kept here and nowhere else:

- ``?`` placeholders become ``$1, $2, ...``, and ``json_each(?)`` (a list passed as JSON)
  ``json_array_elements_text(?::json)``;
- ``BEGIN IMMEDIATE`` (SQLite: take the write lock now) becomes ``BEGIN`` and the cluster-wide
  write lock, a transaction-scoped advisory lock keyed on the schema: one write transaction at a
  time across every node, as SQLite has one at a time across every process;
- ``numeric`` (what ``SUM`` of a ``bigint`` gives) comes back as ``int``: money is integer cents;
- errors become the ``sqlite3`` ones the writer and the units already handle: a broken constraint
  ``sqlite3.IntegrityError``; a lost connection, a full disk, a lock timeout
  ``sqlite3.OperationalError`` (the batch is refused with 503 and the next one reconnects); a
  serialization failure or deadlock ``RetryableConflict`` (the batch is run again).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg

from wallet.ledger.errors import NotFound
from wallet.storage.postgres.dialect import BEGIN_WRITE, LIST_PARAMETER, TABLE_EXISTS_SQL, render_numbered
from wallet.storage.sql.connection import Dialect

T = TypeVar("T")


class RetryableConflict(sqlite3.OperationalError):
    """PostgreSQL gave up on the transaction (serialization failure, deadlock): run it again."""


POSTGRES = Dialect(
    name="postgresql",
    begin_write=BEGIN_WRITE,
    list_parameter=LIST_PARAMETER,
    returning_is_cheap=True,
    update_from_json=False,
    integrity_error=sqlite3.IntegrityError,
    storage_fault=sqlite3.OperationalError,
    retryable_conflict=RetryableConflict,
    table_exists=TABLE_EXISTS_SQL,
    render=render_numbered,
)


def integral(text: str) -> int:
    """A ``numeric`` from PostgreSQL as an ``int``: every amount is whole cents."""
    value = Decimal(text)
    if value != value.to_integral_value():
        raise ValueError(f"a fractional number {text!r} where only whole numbers belong")
    return int(value)


async def prepare_connection(connection: asyncpg.Connection) -> None:
    """What every connection needs before use (asyncpg's pool ``init`` hook, too)."""
    await connection.set_type_codec("numeric", encoder=str, decoder=integral, schema="pg_catalog", format="text")


def connect_arguments(
    dsn: str, *, lock_timeout_seconds: int | None = None, application_name: str = "wallet"
) -> dict[str, Any]:
    settings: dict[str, str] = {"application_name": application_name, "timezone": "UTC"}
    if lock_timeout_seconds is not None:
        settings["lock_timeout"] = f"{lock_timeout_seconds}s"
    return {"dsn": dsn, "server_settings": settings}


translate = render_numbered


def require_storable(parameters: Sequence[Any]) -> None:
    """PostgreSQL text cannot hold NUL (SQLite's can): no row is stored under such a value, so a
    lookup by one (an odd id in a URL) finds nothing, and says so as SQLite would: ``NotFound``.
    (Text that the service stores is validated free of control characters before it gets here.)"""
    for value in parameters:
        if isinstance(value, str) and "\x00" in value:
            raise NotFound("no such record")


def _returns_rows(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in ("SELECT", "WITH", "VALUES") or " RETURNING " in sql.upper()


def _affected(status: str) -> int:
    """The row count of a command tag: ``DELETE 3``, ``INSERT 0 1``, ``UPDATE 2``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


class Cursor:
    def __init__(self, rows: Sequence[asyncpg.Record], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    def fetchone(self) -> asyncpg.Record | None:
        if self._next >= len(self._rows):
            return None
        row = self._rows[self._next]
        self._next += 1
        return row

    def fetchall(self) -> list[asyncpg.Record]:
        rest = list(self._rows[self._next :])
        self._next = len(self._rows)
        return rest

    def __iter__(self) -> Iterator[asyncpg.Record]:
        return iter(self.fetchall())


class SyncConnection:
    """One asyncpg connection used synchronously from one thread at a time."""

    dialect = POSTGRES

    def __init__(self, dsn: str, *, lock_timeout_seconds: int | None = None, application_name: str = "wallet") -> None:
        self._arguments = connect_arguments(
            dsn, lock_timeout_seconds=lock_timeout_seconds, application_name=application_name
        )
        self._loop = asyncio.new_event_loop()
        self._connection: asyncpg.Connection | None = None

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            return self._loop.run_until_complete(coroutine)
        except asyncpg.IntegrityConstraintViolationError as error:
            raise sqlite3.IntegrityError(str(error)) from error
        except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError) as error:
            raise RetryableConflict(str(error)) from error
        except (
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            asyncpg.InsufficientResourcesError,
            asyncpg.OperatorInterventionError,
            asyncpg.LockNotAvailableError,
            asyncpg.QueryCanceledError,
            OSError,
        ) as error:
            self._drop_if_broken()
            raise sqlite3.OperationalError(f"{type(error).__name__}: {error}") from error

    def _drop_if_broken(self) -> None:
        if self._connection is not None and self._connection.is_closed():
            self._connection = None

    def connect(self) -> None:
        async def open_connection() -> asyncpg.Connection:
            connection = await asyncpg.connect(**self._arguments)
            await prepare_connection(connection)
            return connection

        self._connection = self._run(open_connection())

    def _live(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = None
            self.connect()  # after a lost connection: the next batch reconnects
        assert self._connection is not None
        return self._connection

    @property
    def in_transaction(self) -> bool:
        connection = self._connection
        return connection is not None and not connection.is_closed() and connection.is_in_transaction()

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        require_storable(parameters)
        connection = self._live()
        query = translate(sql)
        if _returns_rows(sql):
            rows = self._run(connection.fetch(query, *parameters))
            return Cursor(rows, len(rows))
        status = self._run(connection.execute(query, *parameters))
        return Cursor([], _affected(status))

    def begin_write(self) -> None:
        for statement in POSTGRES.begin_write:
            self.execute(statement)

    def fetch_tuples(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        return self.execute(sql, parameters).fetchall()

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        rows = list(rows)
        for row in rows:
            require_storable(row)
        self._run(self._live().executemany(translate(sql), rows))
        return Cursor([], -1)

    def close(self) -> None:
        try:
            if self._connection is not None and not self._connection.is_closed():
                self._loop.run_until_complete(self._connection.close(timeout=5))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            pass
        finally:
            self._connection = None
            self._loop.close()
