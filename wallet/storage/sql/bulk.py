"""Writing and reading many rows a statement: what the credit run and the batched charges share.

Multi-row ``INSERT``s rather than ``executemany``: SQLite journals the pages a statement changes
once per statement, so ``ROWS_PER_STATEMENT`` rows a statement pay that once instead of per row.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wallet.storage.sql.connection import Connection, Dialect
from wallet.storage.sql.units import compact_json

# Rows one INSERT statement writes (its parameters: rows × columns, far below SQLite's limit).
ROWS_PER_STATEMENT = 100
RowValues = tuple[object, ...]  # a row to write
_REMAINDER_SIZES = tuple(2**n for n in range(ROWS_PER_STATEMENT.bit_length() - 1, -1, -1))  # 64, 32, ..., 1


class ListStatement:
    """A statement that takes a list (``column IN`` a JSON array, ``Dialect.in_list``): its text for
    each dialect, made once."""

    __slots__ = ("_make", "_texts")

    def __init__(self, make: Callable[[Dialect], str]) -> None:
        self._make = make
        self._texts: dict[Dialect, str] = {}

    def __call__(self, dialect: Dialect) -> str:
        text = self._texts.get(dialect)
        if text is None:
            text = self._texts[dialect] = self._make(dialect)
        return text


# Each account moved by its change, in one statement: the changes as one JSON array of
# ``[id, balance change, held change]``, the rows as they stand after (``RETURNING``). One
# ``UPDATE`` an account (``executemany``) and a read afterwards cost a credit run's writer 7 %.
_MOVE_SQL = (
    "UPDATE accounts SET balance = balance + json_extract(m.value, '$[1]'), held = held + json_extract(m.value, '$[2]')"
    " FROM json_each(?) AS m WHERE accounts.id = json_extract(m.value, '$[0]')"
    " RETURNING accounts.id, accounts.balance, accounts.held"
)
_MOVE_ONE_SQL = "UPDATE accounts SET balance = balance + ?, held = held + ? WHERE id = ?"
_MOVED_SQL = ListStatement(lambda dialect: f"SELECT id, balance, held FROM accounts WHERE id {dialect.in_list}")


def move_balances(connection: Connection, moves: Sequence[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Add ``(account_id, balance change, held change)`` to each account (each id once); what
    ``(id, balance, held)`` each moved account has afterwards, in no particular order (the callers
    compare them with what they worked out). Where the dialect has no ``update_from_json``, an ``UPDATE`` an account
    and a read afterwards: the same rows."""
    if not moves:
        return []
    if not connection.dialect.update_from_json:
        connection.executemany(_MOVE_ONE_SQL, [(balance, held, account_id) for account_id, balance, held in moves])
        moved = connection.fetch_tuples(_MOVED_SQL(connection.dialect), (compact_json(sorted(m[0] for m in moves)),))
        return [tuple(row) for row in moved]
    return connection.fetch_tuples(_MOVE_SQL, (compact_json(moves),))


@dataclass(frozen=True)
class Insert:
    """``INSERT INTO table (columns)``, ``ROWS_PER_STATEMENT`` rows a statement."""

    table: str
    columns: tuple[str, ...]

    def sql(self, rows: int) -> str:
        values = "(" + ", ".join("?" * len(self.columns)) + ")"
        return f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES " + ", ".join([values] * rows)

    def write(self, connection: Connection, rows: list[RowValues]) -> None:
        whole = len(rows) - len(rows) % ROWS_PER_STATEMENT
        if whole:
            statement = _statement(self, ROWS_PER_STATEMENT)
            for start in range(0, whole, ROWS_PER_STATEMENT):
                values = list(itertools.chain.from_iterable(rows[start : start + ROWS_PER_STATEMENT]))
                connection.execute(statement, values)
        start = whole
        for size in _REMAINDER_SIZES:  # the rest (< 100) in statements of 64, 32, ..., 1 rows: a few cached texts
            if len(rows) - start >= size:
                connection.execute(
                    _statement(self, size), list(itertools.chain.from_iterable(rows[start : start + size]))
                )
                start += size


_STATEMENTS: dict[tuple[Insert, int], str] = {}


def _statement(insert: Insert, rows: int) -> str:
    key = (insert, rows)
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = insert.sql(rows)
    return statement


# The ledger's tables as the bulk writers (the credit run, the charges of a batch) fill them.
TRANSACTIONS = Insert(
    "transactions",
    ("id", "type", "created_at", "client_id", "provider_id", "category", "charge_id", "refund_id", "month"),
)
POSTINGS = Insert("postings", ("transaction_id", "account_id", "amount", "balance_after"))
WALLET_EVENTS = Insert(
    "wallet_events",
    (
        "client_id",
        "type",
        "category",
        "amount",
        "charge_id",
        "provider_id",
        "transaction_id",
        "reason",
        "line_balance",
        "line_available",
        "balance",
        "available",
        "created_at",
    ),
)
AUDIT_LOG = Insert("audit_log", ("at", "actor", "action", "subject", "data", "previous_hash", "hash"))
