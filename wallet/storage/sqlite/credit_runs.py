"""The monthly credit run's unit of work, written in bulk.

A step credits (and, at a real month boundary, expires) the lines of up to ``batch`` budgets. It
reads everything the step depends on in a handful of queries, works the step out line by line in
memory exactly as posting each transfer on its own would (``ops.post``: the ledger's checks on
every transaction and on every wallet line after every posting, running ``balance_after``, one
wallet event per wallet posting with the wallet's totals after it, one audit entry per
transaction chained in order), then writes each table with one ``executemany`` and moves each
account's balance once by its net change. Afterwards it reads the balances back and compares
them with what it worked out: checked both ways.

The rows are the very rows the one-by-one path writes, in the same order (a test holds the two
side by side). The unique keys on ``credits (account_id, month)`` and ``expiries (account_id,
boundary_month)`` make a step safe to repeat after a crash: a step is one unit in the writer, so
it is committed whole or not at all, and a rerun skips what is there.

Nothing here awaits: the step runs in the writer thread from its first read to its last write.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

from wallet.ids import new_id
from wallet.ledger.accounts import FUNDING_ACCOUNT, AccountKind, LineState, wallet_account
from wallet.ledger.audit import GENESIS, canonical, link_hash
from wallet.ledger.errors import InvariantViolation
from wallet.ledger.months import UnusedPolicy, expires_at_boundary, expiry_amount, previous_month
from wallet.ledger.transactions import Transaction, TransactionType
from wallet.storage.port import ACTOR, Record
from wallet.storage.sqlite.writer import Unit, unit_of_work

_BUDGETS = "SELECT seq, id, client_id, start_month, end_month, unused FROM budgets" \
    " WHERE seq > ? AND start_month <= ? AND end_month >= ? ORDER BY seq LIMIT ?"  # fmt: skip
_LINES = "SELECT budget_id, category, monthly_amount FROM budget_lines" \
    " WHERE budget_id IN (SELECT value FROM json_each(?)) ORDER BY budget_id, category"  # fmt: skip
_IN = "IN (SELECT value FROM json_each(?))"


@dataclass
class _Account:
    kind: str
    client_id: str | None
    category: str | None
    balance: int
    held: int
    read_balance: int  # as read at the start of the step


@dataclass
class _Step:
    """What the step writes, row by row in the order the one-by-one path would write them."""

    now: str
    actor: str
    previous_hash: str
    accounts: dict[str, _Account]
    wallet_totals: dict[str, list[int]]  # client → [balance, held] over its wallet lines
    transactions: list[tuple[object, ...]] = field(default_factory=list)
    postings: list[tuple[object, ...]] = field(default_factory=list)
    events: list[tuple[object, ...]] = field(default_factory=list)
    audit: list[tuple[object, ...]] = field(default_factory=list)
    credits: list[tuple[object, ...]] = field(default_factory=list)
    expiries: list[tuple[object, ...]] = field(default_factory=list)

    def post(self, transaction: Transaction, client_id: str, category: str, month: str) -> str:
        """``ops.post`` in memory: the same checks, the same rows."""
        transaction.check()
        transaction_id = new_id("tx")
        self.transactions.append(
            (transaction_id, transaction.type.value, self.now, client_id, None, category, None, None, month)
        )
        for posting in transaction.postings:
            account = self.accounts.get(posting.account_id)
            if account is None:
                raise InvariantViolation(f"posting to a missing account {posting.account_id}")
            account.balance += posting.amount
            self.postings.append((transaction_id, posting.account_id, posting.amount, account.balance))
            if account.kind == AccountKind.WALLET.value:
                LineState(posting.account_id, account.balance, account.held).check()
                self._event(posting.account_id, account, transaction.type.value, posting.amount, transaction_id)
        data = canonical({"postings": [[p.account_id, p.amount] for p in transaction.postings], "charge_id": None,
                          "refund_id": None, "month": month})  # fmt: skip
        action = f"ledger.{transaction.type.value}"
        entry_hash = link_hash(self.previous_hash, self.now, self.actor, action, transaction_id, data)
        self.audit.append((self.now, self.actor, action, transaction_id, data, self.previous_hash, entry_hash))
        self.previous_hash = entry_hash
        return transaction_id

    def _event(self, account_id: str, account: _Account, type_: str, amount: int, transaction_id: str) -> None:
        """``events.append`` in memory: the line and the whole wallet as they stand after the change."""
        if account.client_id is None:
            raise InvariantViolation(f"wallet event on {account_id}, which is not a wallet line")
        totals = self.wallet_totals[account.client_id]
        totals[0] += amount
        self.events.append((
            account.client_id, type_, account.category, amount, None, None, transaction_id, None,
            account.balance, account.balance - account.held, totals[0], totals[0] - totals[1], self.now,
        ))  # fmt: skip


@unit_of_work
def credit_run_step(month: str, current_month: str, after_budget_seq: int, batch: int, now: str) -> Unit:
    """Credit (and expire, at a real month boundary) the lines of up to ``batch`` budgets.

    Budgets are taken in ``seq`` order after ``after_budget_seq``.
    """
    boundary_is_now = month <= current_month

    def unit(connection: sqlite3.Connection) -> Record:
        connection.execute(
            "INSERT INTO credit_runs (month, started_at) VALUES (?, ?) ON CONFLICT (month) DO NOTHING", (month, now)
        )
        budgets = connection.execute(_BUDGETS, (after_budget_seq, month, previous_month(month), batch)).fetchall()
        lines_of: dict[str, list[sqlite3.Row]] = {}
        for line in connection.execute(_LINES, (json.dumps([budget["id"] for budget in budgets]),)):
            lines_of.setdefault(line["budget_id"], []).append(line)
        work = [
            (budget, line, wallet_account(budget["client_id"], line["category"]),
             boundary_is_now and expires_at_boundary(UnusedPolicy(budget["unused"]), budget["start_month"],
                                                     budget["end_month"], month))
            for budget in budgets
            for line in lines_of.get(budget["id"], ())
        ]  # fmt: skip
        step = _read_state(connection, now, [account_id for _, _, account_id, _ in work])
        missing = [(account_id, budget["client_id"], line["category"])
                   for budget, line, account_id, _ in work if account_id not in step.accounts]  # fmt: skip
        if missing:  # a line whose account the budget did not open: open it, as the one-by-one path would
            connection.executemany(
                "INSERT INTO accounts (id, kind, client_id, category) VALUES (?, 'wallet', ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                missing,
            )
            step = _read_state(connection, now, [account_id for _, _, account_id, _ in work])
        credited_before = _account_set(
            connection, "SELECT account_id FROM credits WHERE month = ? AND account_id", month, step.accounts
        )
        expiring = {account_id for _, _, account_id, expires in work if expires}
        expired_before: set[str] = set()
        credited_from_month: dict[str, int] = {}  # credits for this month or later: not to be expired
        if expiring:
            expired_before = _account_set(
                connection, "SELECT account_id FROM expiries WHERE boundary_month = ? AND account_id", month, expiring
            )
            credited_from_month = dict(connection.execute(
                "SELECT account_id, SUM(amount) FROM credits"
                f" WHERE month >= ? AND account_id {_IN} GROUP BY account_id",
                (month, json.dumps(sorted(expiring))),
            ).fetchall())  # fmt: skip
        credited = expired = 0
        for budget, line, account_id, expires in work:
            client_id, category = budget["client_id"], line["category"]
            if expires and account_id not in expired_before:
                expired_before.add(account_id)  # once per line per boundary, even if two budgets name it
                account = step.accounts[account_id]
                amount = expiry_amount(account.balance - account.held, credited_from_month.get(account_id, 0))
                transaction_id = None
                if amount > 0:
                    transfer = Transaction.transfer(TransactionType.EXPIRY, account_id, FUNDING_ACCOUNT, amount)
                    transaction_id = step.post(transfer, client_id, category, previous_month(month))
                    expired += 1
                step.expiries.append((account_id, month, amount, transaction_id))
            if budget["start_month"] <= month <= budget["end_month"] and account_id not in credited_before:
                credited_before.add(account_id)
                amount = line["monthly_amount"]
                transfer = Transaction.transfer(TransactionType.CREDIT, FUNDING_ACCOUNT, account_id, amount)
                transaction_id = step.post(transfer, client_id, category, month)
                step.credits.append((account_id, month, budget["id"], amount, transaction_id))
                credited_from_month[account_id] = credited_from_month.get(account_id, 0) + amount
                credited += 1
        _write(connection, step)
        last_seq = budgets[-1]["seq"] if budgets else after_budget_seq
        done = len(budgets) < batch
        if done:
            connection.execute("UPDATE credit_runs SET finished_at = ? WHERE month = ?", (now, month))
        return {"last_budget_seq": last_seq, "done": done, "credited_now": credited, "expired_now": expired,
                "budgets": len(budgets)}  # fmt: skip

    return unit


def _account_set(connection: sqlite3.Connection, query: str, month: str, account_ids: Iterable[str]) -> set[str]:
    ids = json.dumps(sorted(set(account_ids)))
    return {row[0] for row in connection.execute(f"{query} {_IN}", (month, ids))}


def _read_state(connection: sqlite3.Connection, now: str, account_ids: list[str]) -> _Step:
    wanted = json.dumps(sorted({*account_ids, FUNDING_ACCOUNT}))
    accounts = {
        row["id"]: _Account(row["kind"], row["client_id"], row["category"], row["balance"], row["held"], row["balance"])
        for row in connection.execute(
            f"SELECT id, kind, client_id, category, balance, held FROM accounts WHERE id {_IN}", (wanted,)
        )
    }
    clients = sorted({a.client_id for a in accounts.values() if a.kind == AccountKind.WALLET.value and a.client_id})
    wallet_totals = {
        row[0]: [row[1], row[2]]
        for row in connection.execute(
            "SELECT client_id, SUM(balance), SUM(held) FROM accounts"
            f" WHERE kind = 'wallet' AND client_id {_IN} GROUP BY client_id",
            (json.dumps(clients),),
        )
    }
    last = connection.execute("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return _Step(now, ACTOR.get(), last[0] if last else GENESIS, accounts, wallet_totals)


def _write(connection: sqlite3.Connection, step: _Step) -> None:
    connection.executemany(
        "INSERT INTO transactions (id, type, created_at, client_id, provider_id, category, charge_id, refund_id, month)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        step.transactions,
    )
    connection.executemany(
        "INSERT INTO postings (transaction_id, account_id, amount, balance_after) VALUES (?, ?, ?, ?)", step.postings
    )
    moved = {account_id: a.balance for account_id, a in step.accounts.items() if a.balance != a.read_balance}
    connection.executemany(
        "UPDATE accounts SET balance = balance + ? WHERE id = ?",
        [(balance - step.accounts[account_id].read_balance, account_id) for account_id, balance in moved.items()],
    )
    # Checked after writing too: every balance is what the step worked out, and no line went below zero.
    rows = connection.execute(
        f"SELECT id, kind, balance, held FROM accounts WHERE id {_IN}", (json.dumps(sorted(moved)),)
    ).fetchall()
    if len(rows) != len(moved):
        raise InvariantViolation(f"{len(moved) - len(rows)} accounts moved by the step are missing")
    for row in rows:
        if row["balance"] != moved[row["id"]]:
            expected = moved[row["id"]]
            raise InvariantViolation(f"{row['id']}: balance {row['balance']} after the step, {expected} expected")
        if row["kind"] == AccountKind.WALLET.value:
            LineState(row["id"], row["balance"], row["held"]).check()
    connection.executemany(
        "INSERT INTO wallet_events (client_id, type, category, amount, charge_id, provider_id, transaction_id, reason,"
        " line_balance, line_available, balance, available, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        step.events,
    )
    connection.executemany(
        "INSERT INTO audit_log (at, actor, action, subject, data, previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        step.audit,
    )
    connection.executemany(
        "INSERT INTO expiries (account_id, boundary_month, amount, transaction_id) VALUES (?, ?, ?, ?)", step.expiries
    )
    connection.executemany(
        "INSERT INTO credits (account_id, month, budget_id, amount, transaction_id) VALUES (?, ?, ?, ?, ?)",
        step.credits,
    )
