"""The whole database as a value: a digest of every table's rows, read on a read-only connection.

Tests that send refused requests take it before and after and compare: a refusal writes nothing
(no ledger row, no audit entry, no idempotency key, no counter), whatever table a new feature adds.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path


def database_state(path: str) -> dict[str, tuple[int, str]]:
    """``{table: (row count, digest of its rows)}`` for every table of the database at ``path``."""
    connection = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        connection.execute("BEGIN")  # one snapshot for every table
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        state: dict[str, tuple[int, str]] = {}
        for table in tables:
            rows = sorted(repr(tuple(row)) for row in connection.execute(f'SELECT * FROM "{table}"'))
            state[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
        return state
    finally:
        connection.close()


def changed_tables(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    """The tables whose rows differ (or that appeared or went), with their row counts."""
    return [
        f"{table}: {before.get(table, (None,))[0]} -> {after.get(table, (None,))[0]} rows"
        for table in sorted(set(before) | set(after))
        if before.get(table) != after.get(table)
    ]
