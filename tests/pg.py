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


def drop_schema(dsn: str, schema: str) -> None:
    with RawDatabase(dsn) as database:
        database.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
