"""The monthly credit run's unit of work, written in bulk.

A step credits (and, at a month boundary, expires) the lines of up to ``batch`` budgets: it reads
its inputs in a handful of queries, works the step out in memory exactly as ``ledger_rows.post``
would one transfer at a time, writes each table with multi-row ``INSERT``s (``bulk.Insert``), moves
each account once by its net change, then reads the balances back to compare. The unique keys on
``credits``, ``staged_credits`` and ``expiries`` make a step safe to repeat after a crash.

One month of money at a time: a run ahead of its month (``month > current_month``) posts nothing;
it *stages* each line's credit (``staged_credits``). The run of the month itself *releases* it: the
credit is posted then, with the staged amount, after the line's expiry at the boundary and in the
same transaction. Until then no path can spend it: it is not on the wallet line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

import structlog

from wallet.ids import new_id
from wallet.ledger.accounts import FUNDING_ACCOUNT, AccountKind, check_line, wallet_account
from wallet.ledger.audit import GENESIS, canonical, link_hash
from wallet.ledger.errors import InvariantViolation
from wallet.ledger.months import UnusedPolicy, expires_at_boundary, expiry_amount, previous_month
from wallet.ledger.transactions import Posting, Transaction, TransactionType
from wallet.storage.port import ACTOR, Record
from wallet.storage.sql import audit, bulk
from wallet.storage.sql.bulk import Insert, ListStatement, RowValues
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.units import Unit, unit_of_work

log = structlog.get_logger(__name__)

_BUDGETS = (
    "SELECT seq, id, client_id, start_month, end_month, unused FROM budgets"
    " WHERE seq > ? AND start_month <= ? AND end_month >= ? ORDER BY seq LIMIT ?"
)
# A line's amount for the month: its row in ``budget_months`` where the budget has them (a plan, a
# change: ``wallet.storage.sql.decisions``), else the line's one monthly amount.
_LINES = ListStatement(
    lambda dialect: (
        "SELECT l.budget_id, l.category, COALESCE(m.amount, l.monthly_amount) FROM budget_lines l"
        " LEFT JOIN budget_months m ON m.budget_id = l.budget_id AND m.category = l.category AND m.month = ?"
        f" WHERE l.budget_id {dialect.in_list} ORDER BY l.budget_id, l.category"
    )
)
_WALLET = AccountKind.WALLET.value
STAGED_ACTION = "credit.staged"  # the audit log's entry for a credit staged ahead of its month

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
    transactions: list[RowValues] = field(default_factory=list)
    postings: list[RowValues] = field(default_factory=list)
    events: list[RowValues] = field(default_factory=list)
    audit: list[RowValues] = field(default_factory=list)
    credits: list[RowValues] = field(default_factory=list)
    expiries: list[RowValues] = field(default_factory=list)
    staged: list[RowValues] = field(default_factory=list)

    def post(self, transaction: Transaction, client_id: str, category: str, month: str) -> str:
        """``ledger_rows.post`` in memory: the same checks, the same rows. ``transaction`` comes from
        ``Transaction.transfer``, which has checked it (``ledger_rows.post`` checks again; a million times
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

    def stage(self, account_id: str, month: str, budget_id: str, amount: int) -> None:
        """A credit staged ahead of its month: its row and its audit entry (``audit.append`` in memory)."""
        self.staged.append((account_id, month, budget_id, amount, self.now))
        data = canonical({"amount": amount, "budget_id": budget_id, "month": month})
        entry_hash = link_hash(self.previous_hash, self.now, self.actor, STAGED_ACTION, account_id, data)
        self.audit.append((self.now, self.actor, STAGED_ACTION, account_id, data, self.previous_hash, entry_hash))
        self.previous_hash = entry_hash

    def _event(self, account_id: str, account: _Account, type_: str, amount: int, transaction_id: str) -> None:
        """``events.append`` in memory: the line and the whole wallet as they stand after the change."""
        if account.client_id is None:
            raise InvariantViolation(f"wallet event on {account_id}, which is not a wallet line")
        totals = self.wallet_totals[account.client_id]
        totals[0] += amount
        self.events.append(
            (
                account.client_id,
                type_,
                account.category,
                amount,
                None,
                None,
                transaction_id,
                None,
                account.balance,
                account.balance - account.held,
                totals[0],
                totals[0] - totals[1],
                self.now,
            )
        )


def ledger_data(postings: Sequence[Posting], month: str) -> str:
    """The audit entry's data for a credit or expiry, as ``ledger_rows.post`` writes it (``audit.ledger_data``)."""
    return audit.ledger_data(postings, None, None, month)


@dataclass(frozen=True)
class _Inputs:
    """Everything a step's rows follow from, as read inside one transaction (rows sorted, so that
    two reads of the same data compare equal)."""

    budgets: list[_Budget]
    lines: list[_Line]
    accounts: list[_AccountRow]  # every wallet line of the step's clients, and funding
    credited_before: list[str]  # lines of these clients credited for the month already
    expired_before: list[str]  # lines expired at this boundary already
    credited_from_month: list[tuple[str, int]]  # credits for this month or later, by expiring line
    staged_before: list[tuple[str, str, int]]  # credits staged for this month: line, budget, amount
    head: str  # the audit chain's last hash


@dataclass(frozen=True)
class _Writes:
    """What a step writes: its rows, and each account it moves with the balance it must reach."""

    transactions: list[RowValues]
    postings: list[RowValues]
    events: list[RowValues]
    audit: list[RowValues]
    credits: list[RowValues]
    expiries: list[RowValues]
    staged: list[RowValues]
    moved: list[tuple[str, bool, int, int]]  # account id, a wallet line, balance change, balance after


@dataclass(frozen=True)
class CreditPlan:
    """A step worked out ahead, outside the writer (``plan_step``), from a read of its inputs.

    The writer applies it only if its own read of the inputs, inside the writing transaction, is
    equal, and the actor is the same: then its rows are the rows the writer would work out (only the
    ids, which are random, differ). Otherwise the writer works the step out itself."""

    month: str
    current_month: str
    after_budget_seq: int
    batch: int
    now: str
    actor: str
    inputs: _Inputs
    writes: _Writes
    result: Record
    clients: frozenset[str]
    funding_after: int  # funding's balance after the step: the next plan's starting point
    last_hash: str  # the audit chain's head after the step: the next plan's too


def _work(budgets: list[_Budget], lines: list[_Line], month: str, current_month: str) -> list[_Work]:
    """The step's lines in order: each with its budget, amount, account and whether it expires."""
    boundary_is_now = month <= current_month
    lines_of: dict[str, list[_Line]] = {}
    for line in lines:
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
    return work


# Every wallet line of the step's clients (their totals are the events' ``balance``), and funding.
_STATE_SQL = ListStatement(
    lambda dialect: (
        "SELECT id, kind, client_id, category, balance, held FROM accounts"
        f" WHERE client_id {dialect.in_list} AND kind = 'wallet'"
        " UNION ALL SELECT id, kind, client_id, category, balance, held FROM accounts WHERE id = ?"
    )
)
_CREDITED_FROM_SQL = ListStatement(
    lambda dialect: (
        "SELECT account_id, SUM(amount) FROM credits"
        f" WHERE month >= ? AND account_id {dialect.in_list} GROUP BY account_id"
    )
)
_CREDITED_SQL = ListStatement(
    lambda dialect: f"SELECT account_id FROM credits WHERE month = ? AND account_id {dialect.in_list}"
)
_STAGED_SQL = ListStatement(
    lambda dialect: (
        "SELECT account_id, budget_id, amount FROM staged_credits"
        f" WHERE month = ? AND account_id {dialect.in_list} ORDER BY account_id"
    )
)
_EXPIRED_SQL = ListStatement(
    lambda dialect: f"SELECT account_id FROM expiries WHERE boundary_month = ? AND account_id {dialect.in_list}"
)


def _read_inputs(
    connection: Connection,
    month: str,
    current_month: str,
    after_budget_seq: int,
    batch: int,
    *,
    open_missing: bool,
) -> tuple[_Inputs, list[_Work]] | None:
    """The step's inputs, and its lines in order (``_work``, which follows from them). A line whose
    account the budget did not open is opened first, as the one-by-one path would
    (``open_missing``); a planner may not write, and gets ``None``."""
    dialect = connection.dialect
    budgets = cast(
        list[_Budget], connection.fetch_tuples(_BUDGETS, (after_budget_seq, month, previous_month(month), batch))
    )
    lines = cast(
        list[_Line], connection.fetch_tuples(_LINES(dialect), (month, json.dumps([budget[1] for budget in budgets])))
    )
    work = _work(budgets, lines, month, current_month)
    clients = json.dumps(sorted({budget[2] for budget in budgets}))
    accounts = cast(list[_AccountRow], connection.fetch_tuples(_STATE_SQL(dialect), (clients, FUNDING_ACCOUNT)))
    known = {row[0] for row in accounts}
    missing = [
        (account_id, budget[2], category) for budget, category, _, account_id, _ in work if account_id not in known
    ]
    if missing:
        if not open_missing:
            return None
        connection.executemany(
            "INSERT INTO accounts (id, kind, client_id, category) VALUES (?, 'wallet', ?, ?) ON CONFLICT (id) DO NOTHING",
            missing,
        )
        accounts = cast(list[_AccountRow], connection.fetch_tuples(_STATE_SQL(dialect), (clients, FUNDING_ACCOUNT)))
        known = {row[0] for row in accounts}
    accounts.sort()
    credited_before = sorted(_account_set(connection, _CREDITED_SQL, month, known))
    staged_before = cast(
        list[tuple[str, str, int]],
        connection.fetch_tuples(_STAGED_SQL(dialect), (month, json.dumps(sorted(known)))),
    )
    expiring = {account_id for _, _, _, account_id, expires in work if expires}
    expired_before: list[str] = []
    credited_from_month: list[tuple[str, int]] = []
    if expiring:
        expired_before = sorted(_account_set(connection, _EXPIRED_SQL, month, expiring))
        credited_from_month = sorted(
            cast(
                list[tuple[str, int]],
                connection.fetch_tuples(_CREDITED_FROM_SQL(dialect), (month, json.dumps(sorted(expiring)))),
            )
        )
    last = connection.execute(audit.HEAD_SQL).fetchone()
    head = str(last[0]) if last else GENESIS
    inputs = _Inputs(
        budgets, lines, accounts, credited_before, expired_before, credited_from_month, staged_before, head
    )
    return inputs, work


def _work_out(
    inputs: _Inputs,
    work: list[_Work],
    month: str,
    current_month: str,
    after_budget_seq: int,
    batch: int,
    now: str,
    actor: str,
) -> tuple[_Step, Record]:
    """The step's rows from its inputs, in memory, exactly as posting each transfer on its own would."""
    accounts: dict[str, _Account] = {}
    wallet_totals: dict[str, list[int]] = {}
    for account_id, kind, client_id, category, balance, held in inputs.accounts:
        accounts[account_id] = _Account(kind, client_id, category, balance, held, balance)
        if client_id is not None:
            totals = wallet_totals.get(client_id)
            if totals is None:
                wallet_totals[client_id] = [balance, held]
            else:
                totals[0] += balance
                totals[1] += held
    step = _Step(now, actor, inputs.head, accounts, wallet_totals)
    credited_before = set(inputs.credited_before)
    expired_before = set(inputs.expired_before)
    credited_from_month = dict(inputs.credited_from_month)  # not to be expired
    staged_before = {account_id: (budget_id, amount) for account_id, budget_id, amount in inputs.staged_before}
    ahead = month > current_month  # stage, post nothing: the money is not the client's before its month
    credited = expired = released = 0
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
        if start_month <= month <= end_month and monthly_amount > 0 and account_id not in credited_before:
            credited_before.add(account_id)  # once per line per month, even if two budgets name it
            staged = staged_before.get(account_id)
            if ahead:
                if staged is None:
                    staged_before[account_id] = (budget_id, monthly_amount)
                    step.stage(account_id, month, budget_id, monthly_amount)
                    credited += 1
                continue
            # The month has begun: post its credit, the staged one if the month was run ahead.
            credit_budget_id, amount = staged if staged is not None else (budget_id, monthly_amount)
            transfer = Transaction.transfer(TransactionType.CREDIT, FUNDING_ACCOUNT, account_id, amount)
            transaction_id = step.post(transfer, client_id, category, month)
            step.credits.append((account_id, month, credit_budget_id, amount, transaction_id))
            credited_from_month[account_id] = credited_from_month.get(account_id, 0) + amount
            if staged is None:
                credited += 1
            else:
                released += 1
    budgets = inputs.budgets
    last_seq = budgets[-1][0] if budgets else after_budget_seq
    result = {
        "last_budget_seq": last_seq,
        "done": len(budgets) < batch,
        "credited_now": credited,
        "expired_now": expired,
        "released_now": released,
        "budgets": len(budgets),
    }
    return step, result


@unit_of_work
def credit_run_step(
    month: str, current_month: str, after_budget_seq: int, batch: int, now: str, plan: CreditPlan | None = None
) -> Unit:
    """Credit (and expire, at a real month boundary) the lines of up to ``batch`` budgets.

    Budgets are taken in ``seq`` order after ``after_budget_seq``. With a ``plan`` made for this
    very step (``plan_step``), the writer reads the inputs, and writes the plan's rows if they are
    the inputs the plan was made from; else it works the step out itself, as without one.
    """

    def unit(connection: Connection) -> Record:
        connection.execute(
            "INSERT INTO credit_runs (month, started_at) VALUES (?, ?) ON CONFLICT (month) DO NOTHING", (month, now)
        )
        read = _read_inputs(connection, month, current_month, after_budget_seq, batch, open_missing=True)
        assert read is not None  # it opens what is missing
        inputs, work = read
        actor = ACTOR.get()
        planned = (
            plan is not None
            and plan.inputs == inputs
            and plan.actor == actor
            and (plan.month, plan.current_month, plan.after_budget_seq, plan.batch, plan.now)
            == (month, current_month, after_budget_seq, batch, now)
        )
        if plan is not None and planned:
            writes, result = plan.writes, plan.result
        else:
            if plan is not None:
                log.info("credit_run_plan_stale", month=month, after_budget_seq=after_budget_seq)
            step, result = _work_out(inputs, work, month, current_month, after_budget_seq, batch, now, actor)
            writes = _writes(step)
        _write(connection, writes)
        if result["done"]:
            connection.execute("UPDATE credit_runs SET finished_at = ? WHERE month = ?", (now, month))
            if month <= current_month:  # every credit staged for the month is released now
                connection.execute(
                    "INSERT INTO month_releases (month, finished_at) VALUES (?, ?) ON CONFLICT (month) DO NOTHING",
                    (month, now),
                )
        return {**result, "planned": planned}

    return unit


def plan_step(
    connection: Connection,
    month: str,
    current_month: str,
    after_budget_seq: int,
    batch: int,
    now: str,
    actor: str,
    before: CreditPlan | None = None,
) -> CreditPlan | None:
    """Work a step out ahead, on a read-only connection, for the writer to apply (``credit_run_step``).

    ``before`` is the plan of the step just before it, which may not be committed yet: this plan
    starts from where that one leaves funding and the audit chain. ``None`` where a plan cannot be
    made (a line without its account, which only the writer may open; a client in ``before`` too):
    the writer works that step out itself."""
    connection.execute("BEGIN")  # one snapshot for every read
    try:
        read = _read_inputs(connection, month, current_month, after_budget_seq, batch, open_missing=False)
    finally:
        connection.execute("ROLLBACK")
    if read is None:
        return None
    inputs, work = read
    clients = frozenset(budget[2] for budget in inputs.budgets)
    if before is not None:
        if clients & before.clients:
            return None
        accounts = [
            (row[0], row[1], row[2], row[3], before.funding_after, row[5]) if row[0] == FUNDING_ACCOUNT else row
            for row in inputs.accounts
        ]
        inputs = replace(inputs, accounts=accounts, head=before.last_hash)
    step, result = _work_out(inputs, work, month, current_month, after_budget_seq, batch, now, actor)
    funding = step.accounts.get(FUNDING_ACCOUNT)
    if funding is None:
        return None
    return CreditPlan(
        month,
        current_month,
        after_budget_seq,
        batch,
        now,
        actor,
        inputs,
        _writes(step),
        result,
        clients,
        funding.balance,
        step.previous_hash,
    )


def _account_set(connection: Connection, query: ListStatement, month: str, account_ids: Iterable[str]) -> set[str]:
    ids = json.dumps(sorted(set(account_ids)))
    return {str(row[0]) for row in connection.fetch_tuples(query(connection.dialect), (month, ids))}


_EXPIRIES = Insert("expiries", ("account_id", "boundary_month", "amount", "transaction_id"))
_CREDITS = Insert("credits", ("account_id", "month", "budget_id", "amount", "transaction_id"))
_STAGED = Insert("staged_credits", ("account_id", "month", "budget_id", "amount", "staged_at"))


def _writes(step: _Step) -> _Writes:
    moved = [
        (account_id, a.kind == _WALLET, a.balance - a.read_balance, a.balance)
        for account_id, a in step.accounts.items()
        if a.balance != a.read_balance
    ]
    return _Writes(
        step.transactions, step.postings, step.events, step.audit, step.credits, step.expiries, step.staged, moved
    )


def _write(connection: Connection, writes: _Writes) -> None:
    bulk.TRANSACTIONS.write(connection, writes.transactions)
    bulk.POSTINGS.write(connection, writes.postings)
    moved = {account_id: (wallet, expected) for account_id, wallet, _, expected in writes.moved}
    after = bulk.move_balances(connection, [(account_id, change, 0) for account_id, _, change, _ in writes.moved])
    # Checked after writing too: every balance is what the step worked out, and no line went below zero.
    if len(after) != len(moved):
        raise InvariantViolation(f"{len(moved) - len(after)} accounts moved by the step are missing")
    for account_id, balance, held in after:
        wallet, expected = moved[account_id]
        if balance != expected:
            raise InvariantViolation(f"{account_id}: balance {balance} after the step, {expected} expected")
        if wallet:
            check_line(account_id, balance, held)
    bulk.WALLET_EVENTS.write(connection, writes.events)
    audit.forget_head(connection)  # the chain moves here without audit.append
    bulk.AUDIT_LOG.write(connection, writes.audit)
    _EXPIRIES.write(connection, writes.expiries)
    _CREDITS.write(connection, writes.credits)
    _STAGED.write(connection, writes.staged)
