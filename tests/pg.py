"""Raw SQL on the test's database, whichever adapter it runs on, from synchronous test code.

SQLite gets a plain ``sqlite3`` connection in autocommit mode. PostgreSQL gets the bridge the
adapter itself uses (``wallet/storage/postgres/bridge.py``): ``?`` placeholders, ``numeric`` as
``int``, and the same ``sqlite3`` errors (``IntegrityError`` for a refused change), so one test
body serves both. The bridge runs its own event loop, so it lives in a thread of its own here,
out of the way of the test's running loop.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self

from wallet.storage.migrations import is_postgres
from wallet.storage.postgres.bridge import SyncConnection


class RawDatabase:
    def __init__(self, db: str) -> None:
        self.postgres = is_postgres(db)
        if self.postgres:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-sql")
            self._connection: Any = SyncConnection(db)
            try:
                self._call(self._connection.connect)
            except BaseException:
                self.close()
                raise
        else:
            self._connection = sqlite3.connect(db, isolation_level=None)
            self._connection.row_factory = sqlite3.Row

    def _call(self, function: Any, *arguments: Any) -> Any:
        if self.postgres:
            return self._thread.submit(function, *arguments).result()
        return function(*arguments)

    def execute(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        """Run one statement; its rows as tuples."""
        return [tuple(row) for row in self._call(lambda: self._connection.execute(sql, parameters).fetchall())]

    def records(self, sql: str, *parameters: Any) -> list[dict[str, Any]]:
        """Run one statement; its rows as dicts."""
        return [dict(row) for row in self._call(lambda: self._connection.execute(sql, parameters).fetchall())]

    def close(self) -> None:
        self._call(self._connection.close)
        if self.postgres:
            self._thread.shutdown()

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
