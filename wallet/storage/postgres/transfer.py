"""``wallet migrate-to``: copy a SQLite database into an empty PostgreSQL schema, then verify it.

Every table is copied whole, row for row, in one PostgreSQL transaction, in an order that puts a
row after the rows its foreign keys name (read from SQLite's own catalogue, so a table added later
is copied too). The source is read in one snapshot. After the copy the identity sequences are set
past the copied ids, the row counts of both sides are compared, and ``wallet check`` runs on the
target: the copy is reported good only if every invariant holds there.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from wallet.check import check_database
from wallet.storage.migrations import migrate, migrate_postgres
from wallet.storage.postgres.adapter import ANALYSED_AFTER_BULK_WRITES
from wallet.storage.postgres.pool import connect_arguments

# Tables the migration itself fills (with the same content) rather than the copy.
_MADE_BY_MIGRATION = frozenset({"schema_version"})
# Tables a trigger fills as the rows they follow are copied (a receipt per copied capture, refund or
# void: ``wallet_events_receipt``), emptied before their own copy, which brings the source's state.
_FILLED_BY_TRIGGER = frozenset({"receipts"})
COPY_BATCH_ROWS = 5_000


class TransferError(Exception):
    """The copy cannot start (the target is not empty, the source is missing) or did not verify."""


@dataclass
class TransferReport:
    rows: dict[str, int] = field(default_factory=dict)
    breaches: list[str] = field(default_factory=list)


def tables_in_dependency_order(source: sqlite3.Connection) -> list[str]:
    tables = [
        row[0]
        for row in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    depends = {
        table: {row[2] for row in source.execute(f"PRAGMA foreign_key_list({table})") if row[2] != table}
        for table in tables
    }
    ordered: list[str] = []
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in ordered and depends[t] <= set(ordered)]
        if not ready:
            raise TransferError(f"circular foreign keys among {sorted(set(tables) - set(ordered))}")
        ordered.extend(ready)
    return ordered


def transfer(source_path: str, target_dsn: str) -> TransferReport:
    if not Path(source_path).is_file():
        raise TransferError(f"{source_path}: no such SQLite database")
    migrate(source_path)  # an older SQLite file is brought to the current schema first
    source = sqlite3.connect(f"file:{Path(source_path).resolve()}?mode=ro", uri=True)
    try:
        source.execute("BEGIN")  # one snapshot of the source
        report = asyncio.run(_copy(source, target_dsn))
        source.execute("COMMIT")
    finally:
        source.close()
    report.breaches = check_database(target_dsn)
    return report


async def _copy(source: sqlite3.Connection, target_dsn: str) -> TransferReport:
    report = TransferReport()
    target = await asyncpg.connect(**connect_arguments(target_dsn))
    try:
        if await target.fetchval("SELECT current_schema()") is None:
            raise TransferError("the schema named in search_path does not exist")
        await migrate_postgres(target)
        tables = [t for t in tables_in_dependency_order(source) if t not in _MADE_BY_MIGRATION]
        async with target.transaction():
            for table in tables:
                if table == "accounts":
                    continue
                if await target.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}")'):
                    raise TransferError(f"the target is not empty: {table} has rows; migrate into a fresh schema")
            # The migration made the funding account at zero; the source's own row replaces it.
            if await target.fetchval(
                "SELECT COUNT(*) FROM accounts WHERE id <> 'funding' OR balance <> 0 OR held <> 0"
            ):
                raise TransferError("the target is not empty: accounts has rows; migrate into a fresh schema")
            await target.execute("DELETE FROM accounts")
            for table in tables:
                if table in _FILLED_BY_TRIGGER:
                    await target.execute(f'DELETE FROM "{table}"')
                report.rows[table] = await _copy_table(source, target, table)
            for table in tables:
                await _move_identity_past(target, table)
            for table, count in report.rows.items():
                copied = await target.fetchval(f'SELECT COUNT(*) FROM "{table}"')
                if copied != count:
                    raise TransferError(f"{table}: {count} rows read but {copied} written")
        # A bulk load: the planner's statistics for what the charges and exports look up
        # (``PostgresStorage.gather_statistics`` says why), not left for the next credit run.
        await target.execute(f"ANALYZE {', '.join(ANALYSED_AFTER_BULK_WRITES)}")
    finally:
        await target.close()
    return report


async def _copy_table(source: sqlite3.Connection, target: asyncpg.Connection, table: str) -> int:
    columns = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
    cursor = source.execute(f'SELECT {", ".join(columns)} FROM "{table}" ORDER BY rowid')
    total = 0
    while True:
        rows = cursor.fetchmany(COPY_BATCH_ROWS)
        if not rows:
            return total
        await target.copy_records_to_table(table, records=[tuple(row) for row in rows], columns=columns)
        total += len(rows)


async def _move_identity_past(target: asyncpg.Connection, table: str) -> None:
    """Set the table's identity sequence past the copied ids, so that new rows follow them."""
    column = await target.fetchval(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attidentity <> ''",
        f'"{table}"',
    )
    if column is not None:
        await target.execute(
            f"SELECT setval(pg_get_serial_sequence($1, $2),"
            f' COALESCE((SELECT MAX("{column}") FROM "{table}"), 0) + 1, false)',
            f'"{table}"',
            column,
        )
