"""PostgreSQL, for several stateless ``wallet serve`` nodes on one database (``WALLET_DB=postgresql://...``)."""

from wallet.storage.postgres.adapter import PostgresStorage

__all__ = ["PostgresStorage"]
