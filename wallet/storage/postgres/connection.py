"""The PostgreSQL write connection: one synchronous psycopg 3 connection, for the writer's thread.

It implements ``wallet.storage.sql.connection.Connection``: units write ``?`` (rendered as ``$1``,
``$2``, ... once per statement text by ``POSTGRES.render``, and sent as written), rows are read by
name or position, ``numeric`` (what ``SUM`` of a ``bigint`` gives) comes back as ``int``, and
PostgreSQL's errors arrive as the dialect's named classes. After a lost connection the next
statement connects again.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.adapt import Loader
from psycopg.rows import RowMaker, tuple_row

from wallet.ledger.errors import NotFound
from wallet.storage.postgres.dialect import (
    BEGIN_SHARED_WRITE,
    BEGIN_TRY_WRITE,
    CHAINED_AUDIT_SQL,
    CHECK_ACCOUNTS_SQL,
    IN_LIST,
    LIST_PARAMETER,
    LOCK_CLIENTS_SQL,
    LOCK_KEYS_SQL,
    LOCK_ROWS,
    MOVE_ACCOUNTS_SQL,
    ORDER_LOCK_SQL,
    REBASED_POSTINGS_SQL,
    TABLE_EXISTS_SQL,
    TRY_LOCK_CLIENTS_SQL,
    TRY_WRITE_LOCK_SQL,
    WAIT_WRITE_LOCK_SQL,
    WRITE_LOCK_BUSY,
    RetryableConflict,
    StorageFault,
    WriteLockBusy,
    render_format,
    render_numbered,
)
from wallet.storage.sql.connection import Dialect, Preparable, SideBySide

POSTGRES = Dialect(
    name="postgresql",
    begin_write=BEGIN_TRY_WRITE,
    list_parameter=LIST_PARAMETER,
    in_list=IN_LIST,
    returning_is_cheap=True,
    move_accounts=MOVE_ACCOUNTS_SQL,
    integrity_error=psycopg.IntegrityError,
    storage_fault=StorageFault,
    retryable_conflict=RetryableConflict,
    table_exists=TABLE_EXISTS_SQL,
    render=render_numbered,
    write_lock_busy=WriteLockBusy,
    side_by_side=SideBySide(
        begin=BEGIN_SHARED_WRITE,
        order_lock=ORDER_LOCK_SQL,
        lock_rows=LOCK_ROWS,
        lock_keys=LOCK_KEYS_SQL,
        rebased_postings=REBASED_POSTINGS_SQL,
        chained_audit=CHAINED_AUDIT_SQL,
        try_lock_clients=TRY_LOCK_CLIENTS_SQL,
        lock_clients=LOCK_CLIENTS_SQL,
    ),
    check_accounts=CHECK_ACCOUNTS_SQL,
)


# psycopg prepares a statement run this many times unless told not to; every execution here tells
# it (``prepare=``), so the count never decides. (``None`` would stop even ``prepare=True``.)
_NOT_BY_COUNT = 2**31


def integral(text: str) -> int:
    """A ``numeric`` as an ``int``: every amount is whole cents."""
    value = Decimal(text)
    if value != value.to_integral_value():
        raise ValueError(f"a fractional number {text!r} where only whole numbers belong")
    return int(value)


class IntegralLoader(Loader):
    def load(self, data: Any) -> int:
        return integral(bytes(data).decode())


class PgRow:
    """A row read by column name or by position, as ``sqlite3.Row``."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __repr__(self) -> str:
        return f"PgRow({dict(zip(self._index, self._values, strict=True))!r})"


def pg_row(cursor: psycopg.Cursor[Any]) -> RowMaker[PgRow]:
    description = cursor.description or []
    index = {column.name: position for position, column in enumerate(description)}

    def make(values: Sequence[Any]) -> PgRow:
        return PgRow(values, index)

    return make


class NoRows:
    """The cursor of a statement that returns no rows (psycopg's would refuse ``fetchall``)."""

    __slots__ = ("rowcount",)

    def __init__(self, rowcount: int) -> None:
        self.rowcount = rowcount

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[Any]:
        return iter(())


def require_storable(parameters: Iterable[Any]) -> None:
    """PostgreSQL text cannot hold NUL (SQLite's can): no row is stored under such a value, so a
    lookup by one (an odd id in a URL) finds nothing, and says so as SQLite would: ``NotFound``."""
    for value in parameters:
        if isinstance(value, str) and "\x00" in value:
            raise NotFound("no such record")


# What the dialect names a storage fault: unreachable, full, lock timeout, cancelled (the batch is
# refused; the next one reconnects). A broken constraint stays ``psycopg.IntegrityError``.
FAULTS = (psycopg.OperationalError, psycopg.InterfaceError, OSError)
STREAM_ROWS = 10_000  # rows a server-side cursor hands over at a time (``stream``)
# Statements a write connection keeps prepared: the ``Preparable`` texts, a few sizes of each bulk
# ``INSERT`` and the locks (about 80 on the current schema); past it psycopg drops the least used.
PREPARED_MAX = 500
_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected, pg_errors.TransactionRollback)


def as_dialect_error(error: Exception) -> StorageFault:
    """One of ``FAULTS`` as the dialect names it: a retryable conflict (serialization failure,
    deadlock) or a storage fault."""
    if isinstance(error, _RETRYABLE):
        return RetryableConflict(str(error))
    return StorageFault(f"{type(error).__name__}: {error}")


@functools.cache
def _libpq_keywords() -> frozenset[str]:
    return frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())


def split_dsn(dsn: str) -> tuple[str, dict[str, str]]:
    """A URL's query parameters that are not libpq's (``?search_path=...``, which asyncpg takes as
    server settings) as settings of their own; libpq would refuse them."""
    url = urlsplit(dsn)
    if url.scheme not in ("postgresql", "postgres") or not url.query:
        return dsn, {}
    keep: list[tuple[str, str]] = []
    settings: dict[str, str] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        if key in _libpq_keywords():
            keep.append((key, value))
        else:
            settings[key] = value
    return urlunsplit(url._replace(query=urlencode(keep))), settings


def connect_options(settings: dict[str, str], lock_timeout_seconds: int | None) -> str:
    """libpq's ``options``: each server setting as ``-c name=value`` (spaces escaped)."""
    settings = {**settings, "timezone": "UTC"}
    if lock_timeout_seconds is not None:
        settings["lock_timeout"] = f"{lock_timeout_seconds}s"
    return " ".join(f"-c {name}={value.replace(' ', chr(92) + ' ')}" for name, value in settings.items())


class PostgresConnection:
    """One psycopg connection in autocommit mode: transactions are the writer's own ``BEGIN`` … ``COMMIT``."""

    dialect = POSTGRES

    def __init__(self, dsn: str, *, lock_timeout_seconds: int | None = None, application_name: str = "wallet") -> None:
        self._dsn, settings = split_dsn(dsn)
        self._options = connect_options(settings, lock_timeout_seconds)
        self._application_name = application_name
        self._connection: psycopg.Connection[PgRow] | None = None
        # Statements sent with the next one, in its pipeline (``defer``).
        self._deferred: list[tuple[str, Sequence[Any]]] = []
        self._begin_deferred = False  # BEGIN is among them

    def connect(self) -> None:
        try:
            connection = psycopg.connect(
                self._dsn,
                autocommit=True,
                # ``$1`` placeholders, sent as written: psycopg's ``%s`` form is split in Python at
                # every execution of a statement with over 50 parameters (the batch's INSERTs).
                cursor_factory=psycopg.RawCursor,
                # Only ``Preparable`` statements are prepared (each execution says so: ``prepare=``);
                # the rest is planned for its own values, with the tables as they are now (a generic
                # plan cached while a table was small stays, as nothing replans it without
                # autovacuum, and scanned a provider's every idempotency key). Not ``plan_cache_mode
                # = force_custom_plan``: that also replans, at every row, what PostgreSQL runs inside
                # a statement (each foreign-key check, each trigger's statements and ``pg_notify``),
                # whose cached plans are lookups by key.
                prepare_threshold=_NOT_BY_COUNT,
                row_factory=pg_row,
                application_name=self._application_name,
                options=self._options,
            )
        except FAULTS as error:
            raise as_dialect_error(error) from error
        connection.prepared_max = PREPARED_MAX
        connection.adapters.register_loader("numeric", IntegralLoader)
        self._connection = connection

    def _live(self) -> psycopg.Connection[PgRow]:
        connection = self._connection
        if connection is None or connection.closed or connection.broken:
            self._connection = None
            self.connect()  # after a lost connection: the next batch connects again
            connection = self._connection
            assert connection is not None
        return connection

    @property
    def in_transaction(self) -> bool:
        connection = self._connection
        if self._begin_deferred:
            return True  # begun: BEGIN waits to go with the first statement
        if connection is None or connection.closed or connection.broken:
            return False
        return connection.info.transaction_status != pq.TransactionStatus.IDLE

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[PgRow] | NoRows:
        require_storable(parameters)
        try:
            if self._deferred:
                cursor = self._pipelined([*self._take_deferred(), (sql, parameters)], pg_row)[-1]
            else:
                cursor = self._live().execute(render_numbered(sql), parameters, prepare=isinstance(sql, Preparable))
        except FAULTS as error:
            raise as_dialect_error(error) from error
        if cursor.description is None:
            return NoRows(cursor.rowcount)
        return cursor

    def defer(self, sql: str, parameters: Sequence[Any] = (), /) -> None:
        """Send ``sql`` with the next statement, in one round trip: for a statement whose result
        nothing waits for (``SAVEPOINT``, ``RELEASE``, an ``INSERT`` of a unit's outcome). What it
        raises is raised by that next statement."""
        require_storable(parameters)
        self._deferred.append((sql, parameters))

    def _take_deferred(self) -> list[tuple[str, Sequence[Any]]]:
        deferred, self._deferred, self._begin_deferred = self._deferred, [], False
        return deferred

    def _pipelined(self, statements: Sequence[tuple[str, Sequence[Any]]], rows: Any) -> list[psycopg.Cursor[Any]]:
        """The statements sent in one pipeline; their cursors, results in (the caller closes them)."""
        connection = self._live()
        cursors: list[psycopg.Cursor[Any]] = []
        try:
            with connection.pipeline():
                for sql, parameters in statements:
                    cursor = connection.cursor(row_factory=rows)
                    cursors.append(cursor)
                    cursor.execute(render_numbered(sql), parameters, prepare=isinstance(sql, Preparable))
        except pg_errors.InvalidTextRepresentation as error:
            if (TRY_WRITE_LOCK_SQL, ()) in statements and WRITE_LOCK_BUSY in (error.diag.message_primary or ""):
                raise WriteLockBusy("another writer holds the write lock") from error
            raise
        return cursors

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> NoRows:
        rows = list(parameters)
        for row in rows:
            require_storable(row)
        try:
            if self._deferred:
                self.execute_pipeline([])
            connection = self._live()
            # psycopg's executemany prepares whatever the threshold allows: only a Preparable here.
            connection.prepare_threshold = _NOT_BY_COUNT if isinstance(sql, Preparable) else None
            try:
                with connection.cursor() as cursor:
                    cursor.executemany(render_numbered(sql), rows)
                    return NoRows(cursor.rowcount)
            finally:
                connection.prepare_threshold = _NOT_BY_COUNT
        except FAULTS as error:
            raise as_dialect_error(error) from error

    def fetch_tuples(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        require_storable(parameters)
        if self._deferred:
            return self.execute_pipeline([(sql, parameters)])[0]
        try:
            with self._live().cursor(row_factory=tuple_row) as cursor:
                return cursor.execute(render_numbered(sql), parameters, prepare=isinstance(sql, Preparable)).fetchall()
        except FAULTS as error:
            raise as_dialect_error(error) from error

    def execute_pipeline(self, statements: Sequence[tuple[str, Sequence[Any]]], /) -> list[list[Any]]:
        """The statements in one round trip (psycopg's pipeline mode): what a writer does while it
        holds the write lock is then the database's time, not round trips. After an error the
        transaction is aborted as after any failed statement (``ROLLBACK TO`` a savepoint recovers)."""
        for _, parameters in statements:
            require_storable(parameters)
        deferred = self._take_deferred()
        cursors: list[psycopg.Cursor[Any]] = []
        try:
            cursors = self._pipelined([*deferred, *statements], tuple_row)
            return [cursor.fetchall() if cursor.description is not None else [] for cursor in cursors[len(deferred) :]]
        except FAULTS as error:
            raise as_dialect_error(error) from error
        finally:
            for cursor in cursors:
                cursor.close()

    def begin_write(self, shared: bool = False) -> None:
        # Sent with the transaction's first statement: the lock and the first read in one round trip.
        self._deferred = [(statement, ()) for statement in (BEGIN_SHARED_WRITE if shared else BEGIN_TRY_WRITE)]
        self._begin_deferred = True

    def lock_write(self) -> bool:
        self._deferred.append(("BEGIN", ()))  # after a deferred ROLLBACK, if any
        self._begin_deferred = True
        return bool(self.execute_pipeline([(WAIT_WRITE_LOCK_SQL, ())])[0][0][0])

    def stream(self, sql: str, parameters: Sequence[Any] = (), /) -> Iterator[PgRow]:
        """The rows of one read, ``STREAM_ROWS`` at a time from a server-side cursor, inside the
        caller's transaction: ``execute`` holds a whole result in the client at once (``wallet
        check`` reads every posting and every audit entry, millions at scale)."""
        require_storable(parameters)
        try:
            # A server-side cursor is not the connection's RawCursor: it takes ``%s`` placeholders.
            with self._live().cursor(name="wallet_stream", row_factory=pg_row) as cursor:
                cursor.itersize = STREAM_ROWS
                cursor.execute(render_format(sql), parameters)
                yield from cursor
        except FAULTS as error:
            raise as_dialect_error(error) from error

    def close(self) -> None:
        self._take_deferred()
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except (psycopg.Error, OSError):
                pass
