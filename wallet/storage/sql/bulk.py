"""Writing and reading many rows a statement: what the credit run and the batched charges share.

Multi-row ``INSERT``s rather than ``executemany``: SQLite journals the pages a statement changes
once per statement, so ``ROWS_PER_STATEMENT`` rows a statement pay that once instead of per row.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wallet.storage.sql.connection import Connection, Dialect, Preparable
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


def move_balances_statement(dialect: Dialect, moves: Sequence[tuple[str, int, int]]) -> tuple[str, Sequence[object]]:
    """The one statement adding ``(account_id, balance change, held change)`` to each account (each
    id once), returning each moved account's ``(id, balance, held)`` afterwards, in no particular order."""
    return dialect.move_accounts, (compact_json(moves),)


def move_balances(connection: Connection, moves: Sequence[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """``move_balances_statement`` run (the callers compare the rows with what they worked out)."""
    if not moves:
        return []
    sql, parameters = move_balances_statement(connection.dialect, moves)
    return connection.fetch_tuples(sql, parameters)


@dataclass(frozen=True)
class Insert:
    """``INSERT INTO table (columns)``, ``ROWS_PER_STATEMENT`` rows a statement."""

    table: str
    columns: tuple[str, ...]

    def sql(self, rows: int) -> Preparable:
        values = "(" + ", ".join("?" * len(self.columns)) + ")"
        return Preparable(f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES " + ", ".join([values] * rows))

    def write(self, connection: Connection, rows: list[RowValues]) -> None:
        for statement, values in self.statements(rows):
            connection.execute(statement, values)

    def statements(self, rows: list[RowValues]) -> list[tuple[str, list[object]]]:
        """The statements writing ``rows``, with their parameters."""
        statements: list[tuple[str, list[object]]] = []
        whole = len(rows) - len(rows) % ROWS_PER_STATEMENT
        if whole:
            statement = _statement(self, ROWS_PER_STATEMENT)
            for start in range(0, whole, ROWS_PER_STATEMENT):
                statements.append(
                    (statement, list(itertools.chain.from_iterable(rows[start : start + ROWS_PER_STATEMENT])))
                )
        start = whole
        for size in _REMAINDER_SIZES:  # the rest (< 100) in statements of 64, 32, ..., 1 rows: a few cached texts
            if len(rows) - start >= size:
                statements.append(
                    (_statement(self, size), list(itertools.chain.from_iterable(rows[start : start + size])))
                )
                start += size
        return statements


_STATEMENTS: dict[tuple[Insert, int], Preparable] = {}


def _statement(insert: Insert, rows: int) -> Preparable:
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
