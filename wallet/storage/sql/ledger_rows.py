"""The ledger's primitives in SQL: accounts, their running balances, and posting a transaction."""

from __future__ import annotations

import functools
from typing import Any

from wallet.ids import new_id
from wallet.ledger.accounts import AccountKind, LineState, kind_of
from wallet.ledger.errors import (
    InvariantViolation,
)
from wallet.ledger.transactions import Transaction
from wallet.storage.sql import audit, events
from wallet.storage.sql.connection import Connection, Row


def ensure_account(
    connection: Connection,
    account_id: str,
    *,
    client_id: str | None = None,
    provider_id: str | None = None,
    category: str | None = None,
) -> None:
    connection.execute(
        "INSERT INTO accounts (id, kind, client_id, provider_id, category) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO NOTHING",
        (account_id, kind_of(account_id).value, client_id, provider_id, category),
    )


def read_line(connection: Connection, account_id: str) -> LineState:
    row = connection.execute("SELECT balance, held FROM accounts WHERE id = ?", (account_id,)).fetchone()
    if row is None:
        return LineState(account_id, 0, 0)
    return LineState(account_id, row["balance"], row["held"])


# An account as an UPDATE left it: what its wallet event and its posting need.
ACCOUNT_AFTER_COLUMNS = "balance, held, kind, client_id, category"
ACCOUNT_AFTER_SQL = f"SELECT {ACCOUNT_AFTER_COLUMNS} FROM accounts WHERE id = ?"
CHANGE_BALANCE_SQL = "UPDATE accounts SET balance = balance + ? WHERE id = ?"
CHANGE_HELD_SQL = "UPDATE accounts SET held = held + ? WHERE id = ?"


def _update_account(connection: Connection, update_sql: str, delta: int, account_id: str) -> Row | None:
    """Run ``update_sql`` (``CHANGE_BALANCE_SQL`` or ``CHANGE_HELD_SQL``) on one account; the account
    as it stands after, or ``None`` when there is no such account. Read back in the same
    transaction, by ``RETURNING`` where the dialect finds it cheap, else by a second statement."""
    if connection.dialect.returning_is_cheap:
        returned: Row | None = connection.execute(
            f"{update_sql} RETURNING {ACCOUNT_AFTER_COLUMNS}", (delta, account_id)
        ).fetchone()
        return returned
    connection.execute(update_sql, (delta, account_id))
    after: Row | None = connection.execute(ACCOUNT_AFTER_SQL, (account_id,)).fetchone()
    return after


def change_held(connection: Connection, account_id: str, delta: int) -> Row:
    """Move what is held on a line; the line as it stands after, for its wallet event."""
    row = _update_account(connection, CHANGE_HELD_SQL, delta, account_id)
    if row is None:
        raise InvariantViolation(f"hold on a missing account {account_id}")
    LineState(account_id, row["balance"], row["held"]).check()
    return row


_WALLET = AccountKind.WALLET.value


@functools.cache
def _insert_postings_sql(count: int) -> str:
    """One INSERT for a transaction's ``count`` postings, in their order (one statement, not one each)."""
    return "INSERT INTO postings (transaction_id, account_id, amount, balance_after) VALUES " + ", ".join(
        ["(?, ?, ?, ?)"] * count
    )


def post(
    connection: Connection,
    transaction: Transaction,
    now: str,
    *,
    client_id: str | None = None,
    provider_id: str | None = None,
    category: str | None = None,
    charge_id: str | None = None,
    refund_id: str | None = None,
    month: str | None = None,
) -> str:
    """Append ``transaction`` to the ledger and move the running balances; check both ways."""
    transaction.check()
    transaction_id = new_id("tx")
    connection.execute(
        "INSERT INTO transactions (id, type, created_at, client_id, provider_id, category, charge_id, refund_id, month)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (transaction_id, transaction.type.value, now, client_id, provider_id, category, charge_id, refund_id, month),
    )
    type_ = transaction.type.value
    postings: list[Any] = []
    for posting in transaction.postings:
        row = _update_account(connection, CHANGE_BALANCE_SQL, posting.amount, posting.account_id)
        if row is None:
            raise InvariantViolation(f"posting to a missing account {posting.account_id}")
        postings += (transaction_id, posting.account_id, posting.amount, row["balance"])
        if row["kind"] == _WALLET:
            LineState(posting.account_id, row["balance"], row["held"]).check()
            events.append(
                connection,
                posting.account_id,
                type_,
                posting.amount,
                now,
                charge_id=charge_id,
                provider_id=provider_id,
                transaction_id=transaction_id,
                line=row,
            )
    connection.execute(_insert_postings_sql(len(transaction.postings)), postings)
    # canonical({"postings": [[account_id, amount], ...], "charge_id": ..., "refund_id": ..., "month": ...})
    data = audit.ledger_data(transaction.postings, charge_id, refund_id, month)
    audit.append_canonical(connection, now, f"ledger.{type_}", transaction_id, data)
    return transaction_id
