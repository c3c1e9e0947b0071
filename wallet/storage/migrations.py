"""The schema of every adapter, from one place: which database a ``WALLET_DB`` names, and how to
bring it to the current schema version.

Both adapters are at the same ``SCHEMA_VERSION`` and hold the same tables and columns (checked by
``tests/test_postgres.py``); each has its schema in its own dialect beside its adapter
(``sqlite/schema.sql``, ``postgres/schema.sql``) and its steps from each older version
(``sqlite/versions.py``, ``POSTGRES_STEPS`` here). A migration is idempotent and safe when several
processes start at once: SQLite runs it under ``BEGIN IMMEDIATE``, PostgreSQL under an advisory
lock, in one transaction.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from wallet.storage.sqlite.adapter import SCHEMA_VERSION
from wallet.storage.sqlite.adapter import migrate as migrate_sqlite
from wallet.storage.sqlite.versions import SchemaTooNew

POSTGRES_SCHEMES = ("postgres://", "postgresql://")
_MIGRATION_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('wallet.migrate:' || current_schema()))"


def is_postgres(db: str) -> bool:
    return db.startswith(POSTGRES_SCHEMES)


def shown(db: str) -> str:
    """``WALLET_DB`` as it may be logged: a DSN's password replaced by ``***``."""
    if not is_postgres(db):
        return db
    parts = urlsplit(db)
    if parts.password is None:
        return db
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def postgres_schema() -> str:
    return resources.files("wallet.storage.postgres").joinpath("schema.sql").read_text()


# Version N → N + 1, by N: what an older schema made, brought to what ``postgres/schema.sql``
# makes today. The same versions as SQLite's (``sqlite/versions.py`` says why each step).
POSTGRES_STEPS: dict[int, str] = {
    # 1 → 2: the audit log without the UNIQUE index on ``hash`` (the chain keeps hashes distinct).
    1: "ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_hash_key",
    # 2 → 3: no index of transactions by client, of postings by account or of charges by client
    # (history, statements and a client's charges read the wallet events).
    2: "DROP INDEX IF EXISTS transactions_by_client; DROP INDEX IF EXISTS postings_by_account;"
    " DROP INDEX IF EXISTS charges_by_client",
}


async def migrate_postgres(connection: asyncpg.Connection) -> None:
    """Create or bring the schema in the connection's ``search_path`` up to date: the steps from
    the schema's version (none on a new schema), then ``schema.sql`` for whatever is missing, then
    the version, in one transaction under the lock, as SQLite does (``sqlite/versions.py``)."""
    async with connection.transaction():
        await connection.execute(_MIGRATION_LOCK_SQL)
        await connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        found = await connection.fetchval("SELECT version FROM schema_version")
        if found is not None and found > SCHEMA_VERSION:
            raise SchemaTooNew(f"the database is at schema version {found}; this code knows {SCHEMA_VERSION} at most")
        for step in range(found if found is not None else SCHEMA_VERSION, SCHEMA_VERSION):
            await connection.execute(POSTGRES_STEPS[step])
        await connection.execute(postgres_schema())
        if found is None:
            await connection.execute("INSERT INTO schema_version (version) VALUES ($1::integer)", SCHEMA_VERSION)
        elif found != SCHEMA_VERSION:
            await connection.execute("UPDATE schema_version SET version = $1::integer", SCHEMA_VERSION)


def migrate(db: str) -> None:
    """For a SQLite path (synchronous). PostgreSQL migrates in ``PostgresStorage.open``."""
    if is_postgres(db):
        raise ValueError("migrate a PostgreSQL database with migrate_postgres on a connection")
    migrate_sqlite(db)
