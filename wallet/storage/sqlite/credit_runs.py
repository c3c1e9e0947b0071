"""The monthly credit run's unit of work, written in bulk.

A step credits (and, at a real month boundary, expires) the lines of up to ``batch`` budgets. It
reads everything the step depends on in a handful of queries, works the step out line by line in
memory exactly as posting each transfer on its own would (``ops.post``: the ledger's checks on
every transaction and on every wallet line after every posting, running ``balance_after``, one
wallet event per wallet posting with the wallet's totals after it, one audit entry per
transaction chained in order), then writes each table with multi-row ``INSERT``s and moves each
account's balance once by its net change. Afterwards it reads the balances back and compares
them with what it worked out: checked both ways.

The rows are the very rows the one-by-one path writes, in the same order (a test holds the two
side by side). The unique keys on ``credits (account_id, month)`` and ``expiries (account_id,
boundary_month)`` make a step safe to repeat after a crash: a step is one unit in the writer, so
it is committed whole or not at all, and a rerun skips what is there.

The multi-row ``INSERT``s are ``bulk.Insert``'s (why, there).

Nothing here awaits: the step runs in the writer thread from its first read to its last write.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from wallet.ids import new_id
from wallet.ledger.accounts import FUNDING_ACCOUNT, AccountKind, check_line, wallet_account
from wallet.ledger.audit import GENESIS, link_hash
from wallet.ledger.errors import InvariantViolation
from wallet.ledger.months import UnusedPolicy, expires_at_boundary, expiry_amount, previous_month
from wallet.ledger.transactions import Posting, Transaction, TransactionType
from wallet.storage.port import ACTOR, Record
from wallet.storage.sqlite import audit, bulk
from wallet.storage.sqlite.bulk import IN_JSON, Insert, Row
from wallet.storage.sqlite.writer import Unit, unit_of_work

_BUDGETS = "SELECT seq, id, client_id, start_month, end_month, unused FROM budgets" \
    " WHERE seq > ? AND start_month <= ? AND end_month >= ? ORDER BY seq LIMIT ?"  # fmt: skip
_LINES = "SELECT budget_id, category, monthly_amount FROM budget_lines" \
    " WHERE budget_id IN (SELECT value FROM json_each(?)) ORDER BY budget_id, category"  # fmt: skip
_IN = IN_JSON
_WALLET = AccountKind.WALLET.value

# Rows as read, by position.
_Budget = tuple[int, str, str, str, str, str]  # seq, id, client_id, start_month, end_month, unused
_Line = tuple[str, str, int]  # budget_id, category, monthly_amount
_AccountRow = tuple[str, str, str | None, str | None, int, int]  # id, kind, client_id, category, balance, held
_Work = tuple[_Budget, str, int, str, bool]  # budget, category, monthly amount, account id, expires at the boundary


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
    transactions: list[Row] = field(default_factory=list)
    postings: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    audit: list[Row] = field(default_factory=list)
    credits: list[Row] = field(default_factory=list)
    expiries: list[Row] = field(default_factory=list)

    def post(self, transaction: Transaction, client_id: str, category: str, month: str) -> str:
        """``ops.post`` in memory: the same checks, the same rows. ``transaction`` comes from
        ``Transaction.transfer``, which has checked it (``ops.post`` checks again; a million times
        here is 3 % of the run)."""
        transaction_id = new_id("tx")
        type_ = transaction.type.value
        now = self.now
        self.transactions.append((transaction_id, type_, now, client_id, None, category, None, None, month))
        for posting in transaction.postings:
            account_id, amount = posting.account_id, posting.amount
            account = self.accounts.get(account_id)
            if account is None:
                raise InvariantViolation(f"posting to a missing account {account_id}")
            account.balance += amount
            self.postings.append((transaction_id, account_id, amount, account.balance))
            if account.kind == _WALLET:
                check_line(account_id, account.balance, account.held)
                self._event(account_id, account, type_, amount, transaction_id)
        data = ledger_data(transaction.postings, month)
        action = f"ledger.{type_}"
        entry_hash = link_hash(self.previous_hash, now, self.actor, action, transaction_id, data)
        self.audit.append((now, self.actor, action, transaction_id, data, self.previous_hash, entry_hash))
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


def ledger_data(postings: Sequence[Posting], month: str) -> str:
    """The audit entry's data for a credit or expiry, as ``ops.post`` writes it (``audit.ledger_data``)."""
    return audit.ledger_data(postings, None, None, month)


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
        budgets = cast(list[_Budget], bulk.rows(connection, _BUDGETS, (after_budget_seq, month, previous_month(month),
                                                                   batch)))  # fmt: skip
        lines_of: dict[str, list[_Line]] = {}
        for line in cast(list[_Line], bulk.rows(connection, _LINES, (json.dumps([budget[1] for budget in budgets]),))):
            lines_of.setdefault(line[0], []).append(line)
        expires_of: dict[tuple[str, str, str], bool] = {}  # by (policy, start, end): the same for many budgets
        work: list[_Work] = []
        for budget in budgets:
            _, budget_id, client_id, start_month, end_month, unused = budget
            span = (unused, start_month, end_month)
            expires = expires_of.get(span)
            if expires is None:
                expires = expires_of[span] = boundary_is_now and expires_at_boundary(
                    UnusedPolicy(unused), start_month, end_month, month
                )
            for _, category, amount in lines_of.get(budget_id, ()):
                work.append((budget, category, amount, wallet_account(client_id, category), expires))
        client_ids = {budget[2] for budget in budgets}
        step = _read_state(connection, now, client_ids)
        missing = [(account_id, budget[2], category)
                   for budget, category, _, account_id, _ in work if account_id not in step.accounts]  # fmt: skip
        if missing:  # a line whose account the budget did not open: open it, as the one-by-one path would
            connection.executemany(
                "INSERT INTO accounts (id, kind, client_id, category) VALUES (?, 'wallet', ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                missing,
            )
            step = _read_state(connection, now, client_ids)
        credited_before = _account_set(
            connection, "SELECT account_id FROM credits WHERE month = ? AND account_id", month, step.accounts
        )
        expiring = {account_id for _, _, _, account_id, expires in work if expires}
        expired_before: set[str] = set()
        credited_from_month: dict[str, int] = {}  # credits for this month or later: not to be expired
        if expiring:
            expired_before = _account_set(
                connection, "SELECT account_id FROM expiries WHERE boundary_month = ? AND account_id", month, expiring
            )
            credited_from_month = dict(cast(list[tuple[str, int]], bulk.rows(
                connection,
                "SELECT account_id, SUM(amount) FROM credits"
                f" WHERE month >= ? AND account_id {_IN} GROUP BY account_id",
                (month, json.dumps(sorted(expiring))),
            )))  # fmt: skip
        credited = expired = 0
        before_month = previous_month(month)
        for budget, category, monthly_amount, account_id, expires in work:
            _, budget_id, client_id, start_month, end_month, _ = budget
            if expires and account_id not in expired_before:
                expired_before.add(account_id)  # once per line per boundary, even if two budgets name it
                account = step.accounts[account_id]
                amount = expiry_amount(account.balance - account.held, credited_from_month.get(account_id, 0))
                transaction_id = None
                if amount > 0:
                    transfer = Transaction.transfer(TransactionType.EXPIRY, account_id, FUNDING_ACCOUNT, amount)
                    transaction_id = step.post(transfer, client_id, category, before_month)
                    expired += 1
                step.expiries.append((account_id, month, amount, transaction_id))
            if start_month <= month <= end_month and account_id not in credited_before:
                credited_before.add(account_id)
                transfer = Transaction.transfer(TransactionType.CREDIT, FUNDING_ACCOUNT, account_id, monthly_amount)
                transaction_id = step.post(transfer, client_id, category, month)
                step.credits.append((account_id, month, budget_id, monthly_amount, transaction_id))
                credited_from_month[account_id] = credited_from_month.get(account_id, 0) + monthly_amount
                credited += 1
        _write(connection, step)
        last_seq = budgets[-1][0] if budgets else after_budget_seq
        done = len(budgets) < batch
        if done:
            connection.execute("UPDATE credit_runs SET finished_at = ? WHERE month = ?", (now, month))
        return {"last_budget_seq": last_seq, "done": done, "credited_now": credited, "expired_now": expired,
                "budgets": len(budgets)}  # fmt: skip

    return unit


def _account_set(connection: sqlite3.Connection, query: str, month: str, account_ids: Iterable[str]) -> set[str]:
    ids = json.dumps(sorted(set(account_ids)))
    return {str(row[0]) for row in bulk.rows(connection, f"{query} {_IN}", (month, ids))}


# Every wallet line of the step's clients (their totals are the events' ``balance``), and funding.
_STATE_SQL = (
    f"SELECT id, kind, client_id, category, balance, held FROM accounts WHERE client_id {_IN} AND kind = 'wallet'"
    " UNION ALL SELECT id, kind, client_id, category, balance, held FROM accounts WHERE id = ?"
)


def _read_state(connection: sqlite3.Connection, now: str, client_ids: Iterable[str]) -> _Step:
    """The step's accounts and each client's wallet totals, in one read (by ``accounts_by_client``)."""
    read = bulk.rows(connection, _STATE_SQL, (json.dumps(sorted(set(client_ids))), FUNDING_ACCOUNT))
    accounts: dict[str, _Account] = {}
    wallet_totals: dict[str, list[int]] = {}
    for account_id, kind, client_id, category, balance, held in cast(list[_AccountRow], read):
        accounts[account_id] = _Account(kind, client_id, category, balance, held, balance)
        if client_id is not None:
            totals = wallet_totals.get(client_id)
            if totals is None:
                wallet_totals[client_id] = [balance, held]
            else:
                totals[0] += balance
                totals[1] += held
    last = connection.execute(audit.HEAD_SQL).fetchone()
    return _Step(now, ACTOR.get(), str(last[0]) if last else GENESIS, accounts, wallet_totals)


_EXPIRIES = Insert("expiries", ("account_id", "boundary_month", "amount", "transaction_id"))
_CREDITS = Insert("credits", ("account_id", "month", "budget_id", "amount", "transaction_id"))


def _write(connection: sqlite3.Connection, step: _Step) -> None:
    bulk.TRANSACTIONS.write(connection, step.transactions)
    bulk.POSTINGS.write(connection, step.postings)
    moved = {account_id: a for account_id, a in step.accounts.items() if a.balance != a.read_balance}
    after = bulk.move_balances(connection, [(account_id, a.balance - a.read_balance, 0) for account_id, a in moved.items()])
    # Checked after writing too: every balance is what the step worked out, and no line went below zero.
    if len(after) != len(moved):
        raise InvariantViolation(f"{len(moved) - len(after)} accounts moved by the step are missing")
    for account_id, balance, held in after:
        account = moved[account_id]
        if balance != account.balance:
            raise InvariantViolation(f"{account_id}: balance {balance} after the step, {account.balance} expected")
        if account.kind == _WALLET:
            check_line(account_id, balance, held)
    bulk.WALLET_EVENTS.write(connection, step.events)
    audit.forget_head(connection)  # the chain moves here without audit.append
    bulk.AUDIT_LOG.write(connection, step.audit)
    _EXPIRIES.write(connection, step.expiries)
    _CREDITS.write(connection, step.credits)
