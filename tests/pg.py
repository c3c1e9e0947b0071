"""Raw SQL on the test's database, whichever adapter it runs on, from synchronous test code.

SQLite gets a plain ``sqlite3`` connection in autocommit mode. PostgreSQL gets the connection the
writer itself uses (``wallet/storage/postgres/connection.py``): ``?`` placeholders, ``numeric`` as
``int``; its errors are raised here as the ``sqlite3`` ones (``IntegrityError`` for a refused
change, ``OperationalError`` for an unreachable server), so one test body serves both.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Self

from wallet.storage.migrations import is_postgres
from wallet.storage.postgres.connection import POSTGRES, PostgresConnection


class RawDatabase:
    def __init__(self, db: str) -> None:
        self.postgres = is_postgres(db)
        if self.postgres:
            self._connection: Any = PostgresConnection(db)
            self._call(self._connection.connect)
        else:
            self._connection = sqlite3.connect(db, isolation_level=None)
            self._connection.row_factory = sqlite3.Row

    def _call(self, function: Any, *arguments: Any) -> Any:
        if not self.postgres:
            return function(*arguments)
        try:
            return function(*arguments)
        except POSTGRES.integrity_error as error:
            raise sqlite3.IntegrityError(str(error)) from error
        except POSTGRES.storage_fault as error:
            raise sqlite3.OperationalError(str(error)) from error

    def execute(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        """Run one statement; its rows as tuples."""
        return [tuple(row) for row in self._call(lambda: self._connection.execute(sql, parameters).fetchall())]

    def records(self, sql: str, *parameters: Any) -> list[dict[str, Any]]:
        """Run one statement; its rows as dicts."""
        return [dict(row) for row in self._call(lambda: self._connection.execute(sql, parameters).fetchall())]

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def create_schema(dsn: str, schema: str) -> None:
    with RawDatabase(dsn) as database:
        database.execute(f'CREATE SCHEMA "{schema}"')


# How long a test's schema waits to be dropped at its teardown. A test's app may still be running
# then (fixtures are torn down in the reverse order they were set up, and a test may ask for
# ``aiohttp_client`` before the schema), its reads waiting on a loop the synchronous drop blocks:
# such a schema is dropped after the session instead (``drop_left_schemas``).
DROP_LOCK_TIMEOUT = "1s"
# How long a schema left for the session's end waits: longer means a connection outlived its test.
LEFT_LOCK_TIMEOUT = "20s"
# Who holds a lock on one of the schema's tables, with what they are doing.
HOLDERS_SQL = (
    "SELECT DISTINCT a.pid, a.application_name, a.state, a.wait_event_type, a.wait_event, a.query"
    " FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_stat_activity a ON a.pid = l.pid WHERE n.nspname = ? AND l.granted AND l.pid <> pg_backend_pid()"
)
LEFT: list[tuple[str, str]] = []  # (dsn, schema) whose drop waits for the session's end


def drop_schema(dsn: str, schema: str, *, lock_timeout: str = DROP_LOCK_TIMEOUT) -> list[dict[str, Any]]:
    """Drop the schema; or, when a connection holds a lock in it past ``lock_timeout``, leave it
    and answer who holds what (application, state, query)."""
    with RawDatabase(dsn) as database:
        database.execute(f"SET lock_timeout = '{lock_timeout}'")
        try:
            database.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            return []
        except sqlite3.OperationalError:
            return database.records(HOLDERS_SQL, schema)


def drop_schema_later(dsn: str, schema: str) -> None:
    """A test's teardown: drop its schema now, or after the session if its app still holds it."""
    if drop_schema(dsn, schema):
        LEFT.append((dsn, schema))


def drop_left_schemas() -> list[str]:
    """After the session: drop the schemas left; a connection still holding one is ended, the
    schema dropped, and the holder answered as a failure (it outlived every test)."""
    failures = []
    while LEFT:
        dsn, schema = LEFT.pop()
        holders = drop_schema(dsn, schema, lock_timeout=LEFT_LOCK_TIMEOUT)
        if not holders:
            continue
        with RawDatabase(dsn) as database:
            for holder in holders:
                database.execute("SELECT pg_terminate_backend(?, 5000)", holder["pid"])
            database.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        failures.append(f"connections outlived the tests and held locks in {schema}: {holders}")
    return failures
