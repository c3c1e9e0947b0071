"""The SQLite write connection: ``sqlite3.Connection`` itself (its C ``execute``), with a dialect."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from wallet.storage.sql.connection import Dialect, NeverRaised, as_written

SQLITE = Dialect(
    name="sqlite",
    begin_write=("BEGIN IMMEDIATE",),
    list_parameter="json_each(?)",
    in_list="IN (SELECT value FROM json_each(?))",
    returning_is_cheap=False,
    move_accounts=(
        "UPDATE accounts SET balance = balance + json_extract(m.value, '$[1]'),"
        " held = held + json_extract(m.value, '$[2]')"
        " FROM json_each(?) AS m WHERE accounts.id = json_extract(m.value, '$[0]')"
        " RETURNING accounts.id, accounts.balance, accounts.held"
    ),
    integrity_error=sqlite3.IntegrityError,
    storage_fault=sqlite3.OperationalError,
    retryable_conflict=NeverRaised,
    table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
    render=as_written,
)


class SqliteConnection(sqlite3.Connection):
    """Made by ``sqlite3.connect(..., factory=SqliteConnection)``: no Python between a unit and SQLite."""

    dialect = SQLITE

    def begin_write(self, shared: bool = False) -> None:
        if shared:  # SQLite has one writer at a time: its dialect has no ``side_by_side``
            raise ValueError("SQLite has no shared write lock")
        self.execute("BEGIN IMMEDIATE")

    def lock_write(self) -> bool:
        self.begin_write()  # one writer process: nobody else's to wait for
        return False

    def defer(self, sql: str, parameters: Sequence[Any] = (), /) -> None:
        self.execute(sql, parameters)

    def execute_pipeline(self, statements: Sequence[tuple[str, Sequence[Any]]], /) -> list[list[Any]]:
        return [self.fetch_tuples(sql, parameters) for sql, parameters in statements]

    def fetch_tuples(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        # Plain tuples: building a ``sqlite3.Row`` for each of thousands of rows costs more.
        cursor = self.cursor()
        cursor.row_factory = None
        try:
            return cursor.execute(sql, parameters).fetchall()
        finally:
            cursor.close()
