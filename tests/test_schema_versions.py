"""Schema versions: a database made at an older version opens, is brought to the current one with
every row kept, and works on; a failed migration leaves it as it was; a newer one is refused.

Version 1 → 2 rebuilt SQLite's audit log without the UNIQUE index on ``hash`` (and dropped the
constraint on PostgreSQL); 2 → 3 dropped the indexes of transactions by client, of postings by
account and of charges by client, on both: see wallet/storage/sqlite/versions.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.pg import RawDatabase
from tests.test_credit_run_bulk import LIMITS, apply, small_world
from wallet.check import check_database
from wallet.ledger.charges import IdentityMethod
from wallet.storage.port import ChargeCommand
from wallet.storage.postgres import PostgresStorage
from wallet.storage.sql import charges, credit_runs
from wallet.storage.sqlite import versions
from wallet.storage.sqlite.adapter import SCHEMA_VERSION, migrate

V1_SCHEMA = Path(__file__).parent / "fixtures" / "sqlite-schema-v1.sql"
CURRENT_SCHEMA = Path(versions.__file__).parent / "schema.sql"
ADDED_WITHOUT_A_STEP = ("staged_credits", "month_releases", "budget_months")
NOW = datetime(2027, 1, 10, 10, 0, tzinfo=UTC)


def version_1_database(path: Path) -> None:
    """A database as version 1 made it, with a history written by today's units of work."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.executescript(f"BEGIN;\n{V1_SCHEMA.read_text()}\nINSERT INTO schema_version VALUES (1);\nCOMMIT;")
    # Tables added since, with no version step (new tables only), that today's credit run writes.
    for statement in versions.statements(CURRENT_SCHEMA.read_text()):
        if any(table in statement for table in ADDED_WITHOUT_A_STEP):
            connection.execute(statement)
    connection.close()
    provider_id = small_world(path, NOW.isoformat(), 3)
    apply(
        path,
        charges.charge(
            ChargeCommand(
                provider_id, "phone-1", 1_234, "home_care", None, IdentityMethod.NATIONAL_ID, national_id_hash="nid-1"
            ),
            LIMITS,
            NOW,
            "2027-01",
        ),
    )


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (and the AUTOINCREMENT counters), in order."""
    connection = sqlite3.connect(path)
    try:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        found = {table: connection.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall() for table in tables}
        found["sqlite_sequence"] = connection.execute("SELECT * FROM sqlite_sequence ORDER BY name").fetchall()
        return found
    finally:
        connection.close()


def schema_objects(path: Path) -> list[tuple[str, str, str]]:
    """Tables, indexes and triggers: type, name, table. (Their SQL text may differ in spacing.)"""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%' ORDER BY type, name"
        ).fetchall()
    finally:
        connection.close()


DROPPED_IN_3 = ["charges_by_client", "postings_by_account", "transactions_by_client"]


def indexes(path: Path, table: str = "%") -> list[str]:
    """The names of the indexes (SQLite's own for UNIQUE constraints too) on tables named like ``table``."""
    connection = sqlite3.connect(path)
    try:
        return [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name LIKE ? ORDER BY name", (table,)
            )
        ]
    finally:
        connection.close()


def audit_indexes(path: Path) -> list[str]:
    return indexes(path, "audit_log")


def test_a_version_1_database_is_migrated_with_every_row_kept(tmp_path: Path) -> None:
    old = tmp_path / "v1.db"
    version_1_database(old)
    assert audit_indexes(old) == ["sqlite_autoindex_audit_log_1"]  # the UNIQUE index on hash
    before = dump(old)
    assert len(before["audit_log"]) > 10 and before["schema_version"] == [(1,)]
    assert set(DROPPED_IN_3) <= set(indexes(old))

    migrate(str(old))

    after = dump(old)
    assert after.pop("schema_version") == [(SCHEMA_VERSION,)] == [(3,)]
    before.pop("schema_version")
    # Every row, the same seqs, the same AUTOINCREMENT counters; tables added since are there, empty.
    assert {table: rows for table, rows in after.items() if table in before} == before
    assert {table: rows for table, rows in after.items() if table not in before and rows} == {}
    assert audit_indexes(old) == []
    assert set(DROPPED_IN_3).isdisjoint(indexes(old))
    fresh = tmp_path / "fresh.db"
    migrate(str(fresh))
    assert schema_objects(old) == schema_objects(fresh)  # what a new database has, no more, no less
    assert check_database(str(old)) == []


def test_a_migrated_database_works_on_and_its_log_stays_append_only(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    version_1_database(path)
    migrate(str(path))
    entries = len(dump(path)["audit_log"])
    apply(path, credit_runs.credit_run_step("2027-02", "2027-02", 0, 10, datetime(2027, 2, 1, tzinfo=UTC).isoformat()))
    assert len(dump(path)["audit_log"]) > entries  # new entries, chained onto the migrated ones
    assert check_database(str(path)) == []
    connection = sqlite3.connect(path)
    try:
        for statement in ("UPDATE audit_log SET data = '{}' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 1"):
            with pytest.raises(sqlite3.IntegrityError, match="the audit log is append-only"):
                connection.execute(statement)
    finally:
        connection.close()


def test_migrating_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    version_1_database(path)
    migrate(str(path))
    once = dump(path)
    migrate(str(path))
    assert dump(path) == once


def test_a_migration_that_fails_midway_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v1.db"
    version_1_database(path)
    before = dump(path)
    # The rebuild done, the old table dropped, then a statement fails (as a full disk would).
    monkeypatch.setitem(versions.STEPS, 1, versions.STEPS[1] + "\nINSERT INTO no_such_table VALUES (1);\n")
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        migrate(str(path))
    assert dump(path) == before
    assert audit_indexes(path) == ["sqlite_autoindex_audit_log_1"]


def test_a_database_newer_than_the_code_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "wallet.db"
    migrate(str(path))
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    connection.close()
    before = dump(path)
    with pytest.raises(versions.SchemaTooNew):
        migrate(str(path))
    assert dump(path) == before


def test_statements_keep_a_trigger_whole_and_refuse_a_cut_off_script() -> None:
    script = (
        "CREATE TABLE t (a);\n-- a comment\nCREATE TRIGGER x BEFORE DELETE ON t\nBEGIN SELECT 1; END;\n-- the end\n"
    )
    assert list(versions.statements(script)) == [
        "CREATE TABLE t (a);",
        "-- a comment\nCREATE TRIGGER x BEFORE DELETE ON t\nBEGIN SELECT 1; END;",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        list(versions.statements("CREATE TABLE t (a)"))


def test_a_version_1_postgresql_schema_is_migrated(postgres_schema: str) -> None:
    """Version 1 on PostgreSQL differed from 3 only by the UNIQUE constraint on ``audit_log.hash``
    and three indexes: made here by putting them back on a new schema and writing version 1."""

    def storage() -> PostgresStorage:
        return PostgresStorage(
            postgres_schema, queue_max=10, batch_max=10, readers=1, retry_attempts=3, lock_timeout_seconds=10
        )

    async def open_and_close() -> None:
        opened = storage()
        await opened.open()
        await opened.close()

    asyncio.run(open_and_close())
    constraint = "SELECT conname FROM pg_constraint WHERE conrelid = 'audit_log'::regclass AND contype = 'u'"
    dropped = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ANY(?) ORDER BY 1"
    with RawDatabase(postgres_schema) as database:
        assert database.execute(constraint) == []
        assert database.execute(dropped, DROPPED_IN_3) == []
        database.execute("ALTER TABLE audit_log ADD CONSTRAINT audit_log_hash_key UNIQUE (hash)")
        database.execute(
            "CREATE INDEX transactions_by_client ON transactions (client_id, seq) WHERE client_id IS NOT NULL"
        )
        database.execute("CREATE INDEX postings_by_account ON postings (account_id, seq)")
        database.execute("CREATE INDEX charges_by_client ON charges (client_id, seq)")
        database.execute("UPDATE schema_version SET version = 1")
    asyncio.run(open_and_close())
    with RawDatabase(postgres_schema) as database:
        assert database.execute(constraint) == []
        assert database.execute(dropped, DROPPED_IN_3) == []
        assert database.execute("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
        database.execute("UPDATE schema_version SET version = ?", SCHEMA_VERSION + 1)
    with pytest.raises(versions.SchemaTooNew):
        asyncio.run(open_and_close())
