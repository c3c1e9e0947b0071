"""Storage adapters behind one port (``wallet.storage.port.Storage``)."""

POSTGRES_SCHEMES = ("postgres://", "postgresql://")


def is_postgres(db: str) -> bool:
    """``WALLET_DB`` (or a writer's database) is a PostgreSQL DSN rather than a SQLite file path."""
    return db.startswith(POSTGRES_SCHEMES)
