"""The PostgreSQL adapter: the same port, the same units of work, for several ``wallet serve`` nodes.

Every write is a unit of work from ``wallet/storage/sql``, run on a ``PostgresConnection``
(psycopg 3, synchronous, in the writer's thread); every read is the SQLite adapter's read, on an
asyncpg pool. The money rules (``wallet/ledger``) and the SQL that applies them exist once.

What differs:

- Writes. Each node has one writer thread, as with SQLite (batches, a savepoint a unit). Every
  write transaction first takes the cluster-wide write lock (``dialect.WRITE_LOCK_SQL``), so the
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

log = structlog.get_logger(__name__)

LISTEN_RETRY_SECONDS = 1.0
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
    ) -> None:
        # How this node's writer shows in pg_stat_activity.
        writer_name = f"wallet-writer-{os.getpid()}-{secrets.token_hex(3)}"
        writer = Writer(
            lambda: PostgresConnection(dsn, lock_timeout_seconds=lock_timeout_seconds, application_name=writer_name),
            queue_max=queue_max,
            batch_max=batch_max,
            attempts=retry_attempts,
            application_name=writer_name,
        )
        writer.side_by_side = side_by_side
        super().__init__(dsn, writer)  # every credit-run step is worked out by the writer
        self.writer: Writer = writer
        self._reader_count = readers
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._relisten: asyncio.Task[None] | None = None
        self._closing = False
        self._heard_up_to = 0  # the newest wallet event id this node has heard of
        self.schema = ""
        self.listener_name = f"wallet-listener-{os.getpid()}-{secrets.token_hex(3)}"

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
            **connect_arguments(self.path), min_size=1, max_size=self._reader_count, init=prepare_connection
        )
        async with self._read() as reader:
            self._heard_up_to = list(await reader.execute_fetchall(LAST_SEQ_SQL))[0][0]
        await self._listen()
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
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def _read(self, *, scan: bool = False) -> AsyncIterator[Reader]:
        """One consistent snapshot: everything inside sees one committed state."""
        if self._pool is None:
            raise Unavailable("the service is not open", retry_after_seconds=1)
        try:
            async with self._pool.acquire() as connection:
                async with connection.transaction(isolation="repeatable_read", readonly=True):
                    yield PostgresReader(connection)
        except _CONNECTION_ERRORS as error:
            raise Unavailable("the database is not reachable now", retry_after_seconds=1) from error
