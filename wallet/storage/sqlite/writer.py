"""SQLite's writer: its write connection (WAL, ``synchronous = FULL``, foreign keys, a statement
cache), and the writer thread on it."""

from __future__ import annotations

import sqlite3

from wallet.storage.sql.writer import Writer
from wallet.storage.sqlite.connection import SqliteConnection

# Prepared statements kept per connection, by SQL text (sqlite3's default is 128). The storage
# has some 150 distinct statements; past the cache's size a statement is parsed and planned again.
STATEMENT_CACHE_SIZE = 512


def connect(path: str, *, check_same_thread: bool = False) -> SqliteConnection:
    """The write connection (``check_same_thread``: only the thread that opens it may use it)."""
    connection = sqlite3.connect(
        path,
        factory=SqliteConnection,
        isolation_level=None,
        check_same_thread=check_same_thread,
        timeout=10.0,
        cached_statements=STATEMENT_CACHE_SIZE,
    )
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA busy_timeout = 10000")
    # Statement journals in memory, not in a temporary file created and unlinked every batch; their
    # size is bounded by what one statement or savepoint changes.
    connection.execute("PRAGMA temp_store = MEMORY")
    return connection


def thread_writer(path: str, *, queue_max: int, batch_max: int) -> Writer:
    """The writer as a thread of this process, on the database file ``path``."""
    return Writer(lambda: connect(path), queue_max=queue_max, batch_max=batch_max)
