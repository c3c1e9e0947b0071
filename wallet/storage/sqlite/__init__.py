"""SQLite, the embedded default: WAL, ``synchronous=FULL``, one writer thread."""

from wallet.storage.sqlite.adapter import SqliteStorage, migrate

__all__ = ["SqliteStorage", "migrate"]
