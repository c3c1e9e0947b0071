"""What a unit of work may ask of a database connection, and the named differences between databases.

Units of work (``wallet/storage/sql``) are plain functions of a ``Connection``; the writer runs
them in its thread, inside one transaction, with no ``await`` anywhere.

Placeholders: units write ``?`` (qmark), positional parameters only. SQLite takes them as they
are; the PostgreSQL connection renders each statement once (cached) to its driver's form with its
dialect's ``render`` hook, which refuses a statement with ``?`` or ``%`` inside a quoted literal.

Everything else that differs between the databases is a field of ``Dialect``, read by name:
``connection.dialect.in_list``, ``connection.dialect.integrity_error``, ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class Row(Protocol):
    """A row read by column name (``row["balance"]``) or by position (``row[0]``)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any:
        """The next ``Row``, or ``None`` when there is none."""

    def fetchall(self) -> list[Any]:
        """The remaining ``Row``s."""

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The write connection a unit of work gets (``SqliteConnection``, ``PostgresConnection``)."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...

    def fetch_tuples(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        """The rows as plain tuples, read by position (the bulk units read thousands at a time)."""

    def execute_pipeline(self, statements: Sequence[tuple[str, Sequence[Any]]], /) -> list[list[Any]]:
        """Run the statements in order, sent in as few round trips as the driver allows (one on
        PostgreSQL): each one's rows as plain tuples, ``[]`` for one that returns none. The first
        error stops the rest and is raised as ``execute`` raises it."""

    def defer(self, sql: str, parameters: Sequence[Any] = ..., /) -> None:
        """Run ``sql`` before the next statement, sent with it where the driver can (PostgreSQL:
        one pipeline; SQLite runs it now). For statements whose result nothing waits for; what
        one raises may be raised by the next statement instead."""

    def begin_write(self, shared: bool = False) -> None:
        """Begin the write transaction, holding the write lock from the start (on PostgreSQL sent
        with the transaction's first statement): exclusively, or with ``shared`` as
        ``dialect.side_by_side.begin`` does (only where the dialect has ``side_by_side``).
        Exclusively on PostgreSQL the lock is tried, not waited for: if another writer holds it,
        the first statement raises ``dialect.write_lock_busy`` and nothing after the try ran."""

    def lock_write(self) -> bool:
        """Begin the write transaction holding the write lock exclusively, taken now (on PostgreSQL
        in a round trip of its own), waiting while another writer holds it; whether one did. What
        is still deferred (a ``ROLLBACK``) goes first, in the same round trip."""

    def close(self) -> None: ...


class Preparable(str):
    """A statement whose plan cannot depend on how many rows a table holds or on its statistics (an
    ``INSERT ... VALUES``, an advisory lock): a connection may plan it once and run that plan again
    (the PostgreSQL writer prepares these, and only these). Any statement that reads a table is
    planned at each run for the table as it is now: a plan cached while a table was small stays."""

    __slots__ = ()


class NeverRaised(Exception):
    """For an error class a database does not have (SQLite has no retryable conflict)."""


@dataclass(frozen=True, eq=False)
class SideBySide:
    """How write transactions of several writers run side by side (PostgreSQL; docs/postgresql-writes.md).

    Such a transaction holds the write lock shared, so a unit holding it exclusively (everything but
    a run of new charges) still runs alone. It locks its idempotency keys first, then its clients
    (whose wallet lines it moves); what must keep one global order (the audit chain's head, the
    ``seq`` numbers consumers resume from, a provider's payable account) it writes last, under the
    order lock held to ``COMMIT``, taken in the pipeline that ends with the ``COMMIT``. Lock order:
    the write lock shared, keys, clients, the order lock."""

    # The statements that begin a write transaction with the write lock held shared.
    begin: tuple[str, ...]
    # The order lock: taken just before the rows that need one global order, held to COMMIT.
    order_lock: str
    # Appended to a ``SELECT``: its rows locked against other writers' updates, not against the
    # foreign-key checks of rows that name them.
    lock_rows: str
    # One statement taking a lock, held to COMMIT, on each idempotency key of one JSON-array
    # parameter of ``[scope, key]``, in one order whatever the order given: a second transaction
    # with one of the keys waits for the first to end, then reads what it stored.
    lock_keys: str
    # Under the order lock, what its order puts in the rows, worked out by the database in the
    # statement that writes them, so no round trip is made while the order lock is held: postings
    # (a JSON array of ``[transaction_id, account_id, amount, balance_after, rebase]``; ``rebase`` 1
    # adds the account's committed balance to ``balance_after``) and audit entries (a JSON array of
    # ``[at, actor, action, subject, data]``, linked to the chain's head and each other).
    rebased_postings: str
    chained_audit: str
    # The locks of the clients of one JSON-array parameter of ids, whose wallet lines a batch reads
    # and moves: tried (the ids whose lock another writer holds, left for the next batch), or
    # taken waiting in one order whatever the order given.
    try_lock_clients: str
    lock_clients: str


@dataclass(frozen=True, eq=False)
class Dialect:
    name: str
    # The statements that begin a write transaction with the write lock held.
    begin_write: tuple[str, ...]
    # A table of the values of one parameter holding a JSON array, in a column named ``value``.
    list_parameter: str
    # ``column`` followed by this: the column's value is one of a JSON-array parameter's values (any
    # number of values, one SQL text), in the form the database's planner answers by index.
    in_list: str
    # Whether ``UPDATE ... RETURNING`` is cheaper than the UPDATE and a SELECT after it (SQLite
    # builds a temporary b-tree for RETURNING rows; PostgreSQL saves a round trip).
    returning_is_cheap: bool
    # One ``UPDATE accounts`` moving many accounts by one JSON-array parameter of ``[id, balance
    # change, held change]``, ``RETURNING id, balance, held`` (``bulk.move_balances``).
    move_accounts: str
    # A broken constraint (unique, check, foreign key): the unit refuses.
    integrity_error: type[Exception]
    # The database is unreachable, full or locked: the whole batch is refused with 503.
    storage_fault: type[Exception]
    # The database gave up on the transaction (serialization failure, deadlock): run it again.
    # A subclass of ``storage_fault``: it fails the whole batch first.
    retryable_conflict: type[Exception]
    # A row when the table named by the one parameter exists (``wallet check`` on an older schema).
    table_exists: str
    # The statement in the driver's own placeholder form (see the module's docstring).
    render: Callable[[str], str]
    # How writers run side by side, or None where the database has one writer at a time (SQLite).
    side_by_side: SideBySide | None = None
    # ``begin_write``'s tried write lock is another writer's (PostgreSQL): roll back, ``lock_write``.
    write_lock_busy: type[Exception] = NeverRaised
    # A statement that fails, so that the transaction cannot commit, unless every account of one
    # JSON-array parameter of ``[id, balance, held]`` has that balance and held now:
    # writes checked by the database itself can go with the ``COMMIT`` (PostgreSQL), unread.
    check_accounts: str | None = None


def as_written(sql: str) -> str:
    return sql
