"""The PostgreSQL adapter: the same port, the same units of work, for several ``wallet serve`` nodes.

Every write is a unit of work from ``wallet/storage/sql``, run on a ``PostgresConnection``
(psycopg 3, synchronous, in the writer's thread); every read is the SQLite adapter's read, on an
asyncpg pool. The money rules (``wallet/ledger``) and the SQL that applies them exist once.

What differs:

- Writes. Each node has one writer (a process of its own, or a thread), as with SQLite (batches,
  a savepoint a unit). Every write transaction first takes the cluster-wide write lock
  (``dialect.WRITE_LOCK_SQL``; tried with the first statement, and when another node holds it
  waited for before the batch's work, with what arrived meanwhile added to the batch), so the
  write transactions of all nodes run one at a time, in one order: what the hash-chained audit log
  needs, and what makes each unit's read-check-write safe across nodes. With ``side_by_side``
  (``WALLET_POSTGRES_SIDE_BY_SIDE``) batches of new charges take it shared and order themselves
  by key and row locks and the order lock (``Dialect.side_by_side``, docs/postgresql-writes.md). Constraints stand behind it (``CHECK (balance - held >= 0)``, the primary
  keys of ``idempotency_keys``, ``credits``, ``settlement_items``). A serialization failure or
  deadlock runs the batch again, at most ``postgres_retry_attempts`` times.
- Reads use a pool of connections, each read in one ``REPEATABLE READ READ ONLY`` snapshot.
- Events. A trigger on ``wallet_events`` sends ``NOTIFY wallet_events.<schema>`` with the client
  and event id; PostgreSQL delivers it only after the commit. Every node LISTENs on one connection
  and wakes its streams of that client, whichever node wrote the event. If that connection is
  lost, the node listens again and wakes the wallets whose events it did not hear meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import structlog

from wallet.ledger.errors import Unavailable
from wallet.storage.migrations import migrate_postgres
from wallet.storage.postgres.connection import PostgresConnection
from wallet.storage.postgres.pool import PostgresReader, connect_arguments, prepare_connection
from wallet.storage.sql.events import LAST_SEQ_SQL
from wallet.storage.sql.reading import Reader
from wallet.storage.sql.storage import SqlStorage
from wallet.storage.sql.writer import Writer
from wallet.storage.sql.writer_process import ProcessWriter, WriterOptions

log = structlog.get_logger(__name__)

LISTEN_RETRY_SECONDS = 1.0
# How long closing waits for reads still in flight before it ends their connections: a read stuck
# (on a lock, a dead network) must not keep a stopping node, or its locks, alive.
POOL_CLOSE_SECONDS = 5.0
# What ``gather_statistics`` (after a credit run) and ``wallet migrate-to`` analyse; the docstring
# of ``gather_statistics`` says why these.
ANALYSED_AFTER_BULK_WRITES = ("budgets", "budget_lines", "transactions", "postings")
# A scan's settings (``_read``), one round trip.
SCAN_SETTINGS_SQL = "SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL max_parallel_workers_per_gather = 0"
# Each backend ended and waited for, up to the milliseconds given (PostgreSQL 14).
END_BACKENDS_SQL = (
    "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid, $2)) FROM pg_stat_activity"
    " WHERE application_name = $1 AND pid <> pg_backend_pid()"
)
EVENTS_SINCE_SQL = "SELECT client_id, MAX(seq) AS last FROM wallet_events WHERE seq > ? GROUP BY client_id"

_CONNECTION_ERRORS = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError, OSError)


class PostgresStorage(SqlStorage):
    """The Storage port on PostgreSQL (``WALLET_DB=postgresql://...``)."""

    def __init__(
        self,
        dsn: str,
        *,
        queue_max: int,
        batch_max: int,
        readers: int,
        retry_attempts: int,
        lock_timeout_seconds: int,
        side_by_side: bool = False,
        writer_process: bool = False,
        log_format: str = "json",
        log_level: str = "info",
    ) -> None:
        # How this node's writer shows in pg_stat_activity.
        writer_name = f"wallet-writer-{os.getpid()}-{secrets.token_hex(3)}"
        writer: Writer | ProcessWriter
        if writer_process:
            options = WriterOptions(
                db=dsn,
                batch_max=batch_max,
                attempts=retry_attempts,
                lock_timeout_seconds=lock_timeout_seconds,
                application_name=writer_name,
                side_by_side=side_by_side,
            )
            writer = ProcessWriter(options, queue_max=queue_max, log_format=log_format, log_level=log_level)
        else:
            writer = Writer(
                lambda: PostgresConnection(
                    dsn, lock_timeout_seconds=lock_timeout_seconds, application_name=writer_name
                ),
                queue_max=queue_max,
                batch_max=batch_max,
                attempts=retry_attempts,
                application_name=writer_name,
            )
            writer.side_by_side = side_by_side
        super().__init__(dsn, writer)  # every credit-run step is worked out by the writer
        self.writer: Writer | ProcessWriter = writer
        self._reader_count = readers
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._relisten: asyncio.Task[None] | None = None
        self._closing = False
        self._heard_up_to = 0  # the newest wallet event id this node has heard of
        self.schema = ""
        self.listener_name = f"wallet-listener-{os.getpid()}-{secrets.token_hex(3)}"
        self.reader_name = f"wallet-reader-{os.getpid()}-{secrets.token_hex(3)}"  # the pool's connections

    async def open(self) -> None:
        try:
            connection = await asyncpg.connect(**connect_arguments(self.path))
        except _CONNECTION_ERRORS as error:
            raise Unavailable(f"cannot reach PostgreSQL: {type(error).__name__}", retry_after_seconds=1) from error
        try:
            schema = await connection.fetchval("SELECT current_schema()")
            if schema is None:
                raise Unavailable("the schema named in search_path does not exist", retry_after_seconds=1)
            self.schema = str(schema)
            await migrate_postgres(connection)
        finally:
            await connection.close()
        self._pool = await asyncpg.create_pool(
            **connect_arguments(self.path, application_name=self.reader_name),
            min_size=1,
            max_size=self._reader_count,
            init=prepare_connection,
        )
        async with self._read() as reader:
            self._heard_up_to = list(await reader.execute_fetchall(LAST_SEQ_SQL))[0][0]
        await self._listen()
        if isinstance(self.writer, ProcessWriter):
            await self.writer.start(self._heard_up_to)  # its events reach this node by NOTIFY, as any node's
        else:
            self.writer.start()

    @property
    def event_channel(self) -> str:
        return f"wallet_events.{self.schema}"

    async def _listen(self) -> None:
        listener = await asyncpg.connect(**connect_arguments(self.path, application_name=self.listener_name))
        await listener.add_listener(self.event_channel, self._on_notification)
        listener.add_termination_listener(self._on_listener_lost)
        self._listener = listener

    def _on_notification(self, connection: object, pid: int, channel: str, payload: str) -> None:
        client_id, _, seq = payload.rpartition(":")
        if not (client_id and seq.isdigit()):
            return
        self._heard_up_to = max(self._heard_up_to, int(seq))
        if self._event_listeners:
            self._announce({client_id: int(seq)})

    def _on_listener_lost(self, connection: object) -> None:
        """The LISTEN connection is gone (server restart, failover): listen again, and catch up."""
        if self._closing or self._relisten is not None:
            return
        log.warning("event_listener_lost")
        self._listener = None
        self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        try:
            while not self._closing:
                try:
                    await self._listen()
                    # What was committed while nobody listened: wake those wallets' streams now.
                    async with self._read() as reader:
                        rows = await reader.execute_fetchall(EVENTS_SINCE_SQL, (self._heard_up_to,))
                    fresh = {row["client_id"]: row["last"] for row in rows}
                    if fresh:
                        self._heard_up_to = max(self._heard_up_to, *fresh.values())
                        if self._event_listeners:
                            self._announce(fresh)
                    log.info("event_listener_restored", missed_clients=len(fresh))
                    return
                except (Unavailable, *_CONNECTION_ERRORS) as error:
                    log.warning("event_listener_retry", error=type(error).__name__)
                    await asyncio.sleep(LISTEN_RETRY_SECONDS)
        finally:
            self._relisten = None

    async def close(self) -> None:
        self._closing = True
        await self.writer.stop()
        if self._relisten is not None:
            self._relisten.cancel()
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
            except TimeoutError:
                # A read still holds its connection (and its snapshot's locks): end it. Its caller
                # gets a connection error; nothing was written by a read.
                log.warning("reads_ended_at_close", seconds=POOL_CLOSE_SECONDS)
                pool.terminate()
                await self._end_backends(self.reader_name)

    async def _end_backends(self, application_name: str) -> None:
        """End the server's side of connections this node has dropped: a backend waiting on a lock
        notices its client is gone only when the lock is granted, and holds its own locks until then."""
        try:
            connection = await asyncio.wait_for(asyncpg.connect(**connect_arguments(self.path)), POOL_CLOSE_SECONDS)
            try:
                ended = await connection.fetchval(
                    END_BACKENDS_SQL, application_name, int(POOL_CLOSE_SECONDS * 1000), timeout=2 * POOL_CLOSE_SECONDS
                )
            finally:
                await connection.close()
        except (TimeoutError, asyncpg.PostgresError, *_CONNECTION_ERRORS) as error:
            log.warning("backends_not_ended", error=type(error).__name__)
            return
        log.warning("backends_ended", count=ended)

    async def gather_statistics(self) -> None:
        """``ANALYZE`` what a credit run wrote in bulk and what the charges after it read. Without
        statistics the planner takes any column that is not unique for one of 200 distinct values,
        so a lookup by it for 0.5 % of the table: a charge batch's budgets check
        (``charge_batch._BUDGETED_SQL``) read every budget line by a hash join (15 ms a batch at
        100,000 budgets, inside the write lock), and each page of the transactions export joined a
        sequential scan of every posting (1 s a page at 100,000 transactions). Counted once, the
        share of distinct values holds as the tables grow, and both are index lookups. Not the
        tables keyed by month (``credits``, ``expiries``, ``staged_credits``): their statistics go
        stale at the next month, which they would estimate at one row, and the next run would then
        read ``credits`` by month instead of by account."""
        if self._pool is None:
            raise Unavailable("the service is not open", retry_after_seconds=1)
        started = time.perf_counter()
        try:
            async with self._pool.acquire() as connection:
                await connection.execute(f"ANALYZE {', '.join(ANALYSED_AFTER_BULK_WRITES)}")
        except _CONNECTION_ERRORS as error:
            raise Unavailable("the database is not reachable now", retry_after_seconds=1) from error
        log.info("statistics_gathered", tables=list(ANALYSED_AFTER_BULK_WRITES), seconds=time.perf_counter() - started)

    @asynccontextmanager
    async def _read(self, *, scan: bool = False) -> AsyncIterator[Reader]:
        """One consistent snapshot: everything inside sees one committed state. A ``scan`` (an
        export's page, the unsettled lines) plans each statement for its own values: asyncpg
        prepares every statement, and after five runs PostgreSQL may keep a generic plan made
        without them, which read an export's pages of equal times by ``seq`` from the keyset to the
        end (31,000 rows filtered a page at 110,000 transactions, more as they grow). And without
        parallel workers: a page of 1,000 rows walks an index, and starting two workers for it took
        27 ms a page instead of 6 at a million transactions (the cores are the writers' too)."""
        if self._pool is None:
            raise Unavailable("the service is not open", retry_after_seconds=1)
        try:
            async with self._pool.acquire() as connection:
                async with connection.transaction(isolation="repeatable_read", readonly=True):
                    if scan:
                        await connection.execute(SCAN_SETTINGS_SQL)
                    yield PostgresReader(connection)
        except _CONNECTION_ERRORS as error:
            raise Unavailable("the database is not reachable now", retry_after_seconds=1) from error
