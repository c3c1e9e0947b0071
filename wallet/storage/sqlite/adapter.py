"""The SQLite adapter: the shared port (``sql.storage``) on one writer (a thread, or the writer
process) and SQLite's readers.

Most reads run on the event loop's own connection: a point read is a few index lookups, cheaper
than a hop to a reader thread and back, and in WAL mode a reader never waits for the writer.
Long scans (exports) use a pool of aiosqlite reader threads.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite
import structlog

from wallet.ledger.errors import Unavailable
from wallet.storage.sql import (
    events,
)
from wallet.storage.sql.connection import Connection, Row
from wallet.storage.sql.reading import Reader
from wallet.storage.sql.storage import SqlStorage
from wallet.storage.sql.writer import Writer
from wallet.storage.sql.writer_process import ProcessWriter, WriterOptions
from wallet.storage.sqlite import versions
from wallet.storage.sqlite.credit_planner import CreditRunPlanner
from wallet.storage.sqlite.writer import STATEMENT_CACHE_SIZE, connect, thread_writer

SCHEMA_VERSION = 3  # the steps from each older version: wallet/storage/sqlite/versions.py
log = structlog.get_logger(__name__)


def migrate(path: str) -> None:
    """Create or bring the schema up to date. Safe to run from several processes at once."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = connect(path)
    try:
        schema = resources.files("wallet.storage.sqlite").joinpath("schema.sql").read_text()
        versions.upgrade(connection, schema, SCHEMA_VERSION)
    finally:
        connection.close()


class SqliteStorage(SqlStorage):
    def __init__(
        self,
        path: str,
        *,
        queue_max: int,
        batch_max: int,
        readers: int,
        writer_process: bool = False,
        log_format: str = "json",
        log_level: str = "info",
        writer_socket: str | None = None,
    ) -> None:
        writer: Writer | ProcessWriter = (
            ProcessWriter(
                WriterOptions(db=path, batch_max=batch_max),
                queue_max=queue_max,
                log_format=log_format,
                log_level=log_level,
                connect_to=writer_socket,
            )
            if writer_process or writer_socket is not None
            else thread_writer(path, queue_max=queue_max, batch_max=batch_max)
        )
        self._planner = CreditRunPlanner(path, self._write)
        super().__init__(path, writer, self._planner)
        self.writer: Writer | ProcessWriter = writer
        self._reader_count = readers
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._loop_connection: sqlite3.Connection | None = None
        self._loop_reader: _LoopReader | None = None
        self._loop_reader_busy = False

    async def open(self) -> None:
        await asyncio.to_thread(migrate, self.path)
        loop = asyncio.get_running_loop()
        last_seq = await asyncio.to_thread(last_event_seq, self.path)
        if isinstance(self.writer, ProcessWriter):
            self.writer.on_fresh_events = self._announce  # on this loop, after each COMMIT
            await self.writer.start(last_seq)
        else:
            self._start_thread_writer(loop, events.Watermark(last_seq))
        for _ in range(self._reader_count):
            reader = await aiosqlite.connect(self.path, timeout=10.0)
            reader.row_factory = sqlite3.Row
            await reader.execute("PRAGMA query_only = ON")
            await reader.execute("PRAGMA busy_timeout = 10000")
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)
        self._loop_connection = _loop_connection(self.path)
        self._loop_reader = _LoopReader(self._loop_connection)

    def _start_thread_writer(self, loop: asyncio.AbstractEventLoop, watermark: events.Watermark) -> None:
        writer = self.writer
        assert isinstance(writer, Writer)

        def announce(connection: Connection) -> None:  # in the writer thread, after COMMIT
            fresh = watermark.advance(connection)
            if fresh and self._event_listeners:
                try:
                    loop.call_soon_threadsafe(self._announce, fresh)
                except RuntimeError:  # the event loop has closed: nobody listens any more
                    pass

        writer.after_commit = announce
        writer.start()

    async def close(self) -> None:
        await self._planner.close()
        await self.writer.stop()
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._loop_connection is not None:
            self._loop_connection.close()
            self._loop_connection = self._loop_reader = None

    @asynccontextmanager
    async def _read(self, *, scan: bool = False) -> AsyncIterator[Reader]:
        """A reader for one consistent snapshot: everything inside sees one committed state.

        A short read gets the event loop's own connection; a ``scan`` (or a read that finds it in
        use, when a read awaits something else inside) gets a pooled reader thread."""
        loop_reader = self._loop_reader
        if not scan and loop_reader is not None and not self._loop_reader_busy:
            self._loop_reader_busy = True
            try:
                with loop_reader.snapshot():
                    yield loop_reader
            except sqlite3.OperationalError as error:  # locked past the short timeout, or an I/O fault
                log.warning("loop_read_failed", error=str(error))
                raise Unavailable("the database cannot be read now", retry_after_seconds=1) from error
            finally:
                self._loop_reader_busy = False
            return
        reader = await self._readers.get()
        try:
            await reader.execute("BEGIN")
            try:
                yield reader
            finally:
                await reader.execute("COMMIT")
        finally:
            self._readers.put_nowait(reader)

    async def _read_statement(self, sql: str, parameters: tuple[Any, ...]) -> list[Row]:
        """The rows of one statement. A single statement reads one committed snapshot by itself, so
        on the loop's connection it needs no BEGIN and COMMIT around it (nor the context manager):
        the same answer as ``_read``, at a third of the calls into SQLite. (The PostgreSQL adapter,
        which shares these reads, has no loop connection: its ``_read`` answers.)"""
        loop_reader = self._loop_reader
        if loop_reader is not None and not self._loop_reader_busy:
            try:
                return loop_reader.fetch(sql, parameters)
            except sqlite3.OperationalError as error:  # as in _read: locked past the short timeout, or an I/O fault
                log.warning("loop_read_failed", error=str(error))
                raise Unavailable("the database cannot be read now", retry_after_seconds=1) from error
        async with self._read() as reader:
            return list(await reader.execute_fetchall(sql, parameters))


class _LoopReader:
    """The reader interface the queries use (``execute_fetchall``), answered at once on the calling
    thread: awaiting it never suspends, so nothing else runs on the loop in the middle of a read."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        self._connection.execute("BEGIN")
        try:
            yield
        finally:
            self._connection.execute("COMMIT")

    async def execute_fetchall(self, sql: str, parameters: Iterable[Any] | None = None) -> list[Row]:
        return self._connection.execute(sql, tuple(parameters) if parameters is not None else ()).fetchall()

    def fetch(self, sql: str, parameters: tuple[Any, ...]) -> list[Row]:
        """One statement outside any BEGIN: it reads one snapshot of its own."""
        return self._connection.execute(sql, parameters).fetchall()


# A read on the loop thread waits at most this long for a lock (a WAL reader waits only in rare
# cases, such as recovery after a crash); beyond it the read fails with 503 rather than stall the loop.
LOOP_READ_BUSY_TIMEOUT_MS = 200


def _loop_connection(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, isolation_level=None, timeout=LOOP_READ_BUSY_TIMEOUT_MS / 1000, cached_statements=STATEMENT_CACHE_SIZE
    )
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA query_only = ON")
    connection.execute(f"PRAGMA busy_timeout = {LOOP_READ_BUSY_TIMEOUT_MS}")
    return connection


def last_event_seq(path: str) -> int:
    connection = connect(path)
    try:
        return int(connection.execute(events.LAST_SEQ_SQL).fetchone()[0])
    finally:
        connection.close()
