"""The whole database as a value: a digest of every table's rows, read on a read-only connection.

Tests that send refused requests take it before and after and compare: a refusal writes nothing
(no ledger row, no audit entry, no idempotency key, no counter), whatever table a new feature adds.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.pg import RawDatabase
from wallet.storage.migrations import is_postgres


def database_state(path: str) -> dict[str, tuple[int, str]]:
    """``{table: (row count, digest of its rows)}`` for every table of the database ``path`` names
    (a SQLite file, or a PostgreSQL DSN: the tables of its schema)."""
    if is_postgres(path):
        with RawDatabase(path) as database:
            database.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one snapshot
            tables = [
                row[0]
                for row in database.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                    " ORDER BY table_name"
                )
            ]
            state = {table: _digest(database.execute(f'SELECT * FROM "{table}"')) for table in tables}
            database.execute("ROLLBACK")
            return state
    connection = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        connection.execute("BEGIN")  # one snapshot for every table
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {table: _digest(connection.execute(f'SELECT * FROM "{table}"')) for table in tables}
    finally:
        connection.close()


def _digest(rows_read: Iterable[Any]) -> tuple[int, str]:
    rows = sorted(repr(tuple(row)) for row in rows_read)
    return len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()


def changed_tables(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    """The tables whose rows differ (or that appeared or went), with their row counts."""
    return [
        f"{table}: {before.get(table, (None,))[0]} -> {after.get(table, (None,))[0]} rows"
        for table in sorted(set(before) | set(after))
        if before.get(table) != after.get(table)
    ]
