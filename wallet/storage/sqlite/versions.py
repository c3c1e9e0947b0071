"""The SQLite schema's versions, and the step from each to the next.

``schema.sql`` is the current version, written so that running it again changes nothing
(``IF NOT EXISTS`` throughout). ``upgrade`` runs, in one transaction under ``BEGIN IMMEDIATE``:

1. the steps from the database's version to the current one, in order (none on a new database,
   which has no version yet);
2. ``schema.sql``, which makes whatever is still missing (everything, on a new database);
3. the version, written.

So a step brings what an older version made to exactly what ``schema.sql`` makes today, and
``schema.sql`` may build on it. A second process that starts meanwhile waits for the lock (up to
``MIGRATION_BUSY_TIMEOUT_MS``: rebuilding a big table takes a while), then finds the version
current and changes nothing. A crash midway leaves the database as it was: the transaction is
undone whole. A database of a version newer than this code is refused, never touched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

MIGRATION_BUSY_TIMEOUT_MS = 600_000  # ten minutes: 1 → 2 took 10 s on a 1,000,000-wallet database

# Version N → N + 1, by N.
STEPS: dict[int, str] = {
    # 1 → 2: the audit log without the UNIQUE index on ``hash`` (no query looks an entry up by it,
    # and the hash chain keeps hashes distinct; the index was most of a credit run's disk writes).
    # SQLite drops a column constraint only by rebuilding the table: the same rows, ``seq``s,
    # AUTOINCREMENT counter and triggers.
    1: """
        CREATE TABLE audit_log_v2 (
            seq            INTEGER PRIMARY KEY AUTOINCREMENT,
            at             TEXT NOT NULL,
            actor          TEXT NOT NULL,
            action         TEXT NOT NULL,
            subject        TEXT NOT NULL,
            data           TEXT NOT NULL,
            previous_hash  TEXT NOT NULL,
            hash           TEXT NOT NULL
        ) STRICT;
        INSERT INTO audit_log_v2 (seq, at, actor, action, subject, data, previous_hash, hash)
            SELECT seq, at, actor, action, subject, data, previous_hash, hash FROM audit_log ORDER BY seq;
        CREATE TEMP TABLE audit_log_counter AS SELECT seq FROM sqlite_sequence WHERE name = 'audit_log';
        DROP TABLE audit_log;
        ALTER TABLE audit_log_v2 RENAME TO audit_log;
        DELETE FROM sqlite_sequence WHERE name = 'audit_log';
        INSERT INTO sqlite_sequence (name, seq) SELECT 'audit_log', seq FROM temp.audit_log_counter;
        DROP TABLE temp.audit_log_counter;
        CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # 2 → 3: three indexes fewer, each a random page for every charge to write. A client's
    # history, statement and charges are read from its wallet events instead
    # (``wallet_events_by_client``: one event per posting on a wallet line, and one that each charge
    # is made with, which ``wallet check`` proves). No other read used them.
    2: """
        DROP INDEX IF EXISTS transactions_by_client;
        DROP INDEX IF EXISTS postings_by_account;
        DROP INDEX IF EXISTS charges_by_client;
    """,
}


class SchemaTooNew(RuntimeError):
    """The database was made by a newer version of the service: this one must not write to it."""


def statements(script: str) -> Iterator[str]:
    """Each complete statement of ``script`` (a trigger's ``BEGIN ... END`` is one), comments kept.

    ``executescript`` cannot be used inside the migration's transaction: it commits first."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    rest = "\n".join(line for line in buffer.splitlines() if not line.strip().startswith("--")).strip()
    if rest:
        raise ValueError(f"an incomplete statement at the end of the script: {rest[:80]!r}")


def upgrade(connection: sqlite3.Connection, schema: str, version: int) -> None:
    """Bring the database on ``connection`` (autocommit mode) to ``version``, whose schema is ``schema``."""
    connection.execute(f"PRAGMA busy_timeout = {MIGRATION_BUSY_TIMEOUT_MS}")
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT")
        row = connection.execute("SELECT version FROM schema_version").fetchone()
        found = None if row is None else int(row[0])
        if found is not None and found > version:
            raise SchemaTooNew(f"the database is at schema version {found}; this code knows {version} at most")
        for step in range(found if found is not None else version, version):
            for statement in statements(STEPS[step]):
                connection.execute(statement)
        for statement in statements(schema):
            connection.execute(statement)
        if found is None:
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        elif found != version:
            connection.execute("UPDATE schema_version SET version = ?", (version,))
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
