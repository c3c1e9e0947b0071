"""The schema of every adapter, from one place: which database a ``WALLET_DB`` names, and how to
bring it to the current schema version.

Both adapters are at the same ``SCHEMA_VERSION`` and hold the same tables and columns (checked by
``tests/test_postgres_schema.py``); each has its schema in its own dialect beside its adapter
(``sqlite/schema.sql``, ``postgres/schema.sql``). A migration is idempotent and safe when several
processes start at once: SQLite runs it under ``BEGIN IMMEDIATE``, PostgreSQL under an advisory
lock, in one transaction.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from wallet.storage.sqlite.adapter import SCHEMA_VERSION
from wallet.storage.sqlite.adapter import migrate as migrate_sqlite

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


async def migrate_postgres(connection: asyncpg.Connection) -> None:
    """Create or bring the schema in the connection's ``search_path`` up to date."""
    async with connection.transaction():
        await connection.execute(_MIGRATION_LOCK_SQL)
        await connection.execute(postgres_schema())
        await connection.execute(
            "INSERT INTO schema_version (version) SELECT $1::integer"
            " WHERE NOT EXISTS (SELECT 1 FROM schema_version)",
            SCHEMA_VERSION,
        )


def migrate(db: str) -> None:
    """For a SQLite path (synchronous). PostgreSQL migrates in ``PostgresStorage.open``."""
    if is_postgres(db):
        raise ValueError("migrate a PostgreSQL database with migrate_postgres on a connection")
    migrate_sqlite(db)
