"""New charges side by side in one batch, run together: ``charges.charge`` in bulk.

``ChargeBatch`` reads what a run of new charges needs in a handful of statements, works each out in
memory exactly as ``charges.charge`` would (the same checks in the same order, the ledger's own
rules), writes each table with multi-row ``INSERT``s and moves each account once by its net change,
then reads the balances back to compare. The rows and the outcomes are those of the one-by-one path
(``tests/test_charge_batch.py``). What it does not work out itself (a reused idempotency key, a
lockout, a failed identity check, a missing account) it hands to the one-by-one path, in order; a
bug sends the affected charges that way too, each in its savepoint, so one charge's bug undoes only
that charge.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import structlog

from wallet.auth.hashing import equal
from wallet.clock import rfc3339
from wallet.ids import new_id
from wallet.ledger import charges as charge_rules
from wallet.ledger.accounts import LineState, check_line, payable_account, wallet_account
from wallet.ledger.audit import GENESIS, canonical, link_hash
from wallet.ledger.charges import IdentityMethod
from wallet.ledger.errors import (
    CategoryNotAllowed,
    InvariantViolation,
    NotFound,
    OperationError,
    ProviderNotApproved,
    RateLimited,
    Unavailable,
)
from wallet.ledger.transactions import Transaction, TransactionType
from wallet.storage.port import ChargeCommand, Limits, Record, Written
from wallet.storage.sql import audit, bulk, render
from wallet.storage.sql import charges as charge_units
from wallet.storage.sql.bulk import Insert, ListStatement, RowValues
from wallet.storage.sql.connection import Connection, SideBySide
from wallet.storage.sql.idempotency import replay_outcome
from wallet.storage.sql.units import BATCH_RUNNERS, NeedsWriteOrder, RunOne, Task, UnitCall, compact_json

log = structlog.get_logger(__name__)

_CAPTURE = TransactionType.CAPTURE.value
_ACTION = f"ledger.{_CAPTURE}"
_HELD = "charge.held"

_KEYS_SQL = ListStatement(
    lambda dialect: f"SELECT key, fingerprint, outcome FROM idempotency_keys WHERE scope = ? AND key {dialect.in_list}"
)
_PROVIDERS_SQL = ListStatement(lambda dialect: f"SELECT id, status FROM providers WHERE id {dialect.in_list}")
_PROVIDER_CATEGORIES_SQL = ListStatement(
    lambda dialect: f"SELECT provider_id, category FROM provider_categories WHERE provider_id {dialect.in_list}"
)
_CLIENTS_SQL = ListStatement(
    lambda dialect: f"SELECT id, phone_hash, national_id_hash FROM clients WHERE phone_hash {dialect.in_list}"
)
# ``CHARGE_CLIENT_SQL``'s ``budgeted``: a budget of the client's covering the month with a line
# in the category.
_BUDGETED_SQL = ListStatement(
    lambda dialect: (
        "SELECT DISTINCT b.client_id, l.category FROM budgets b JOIN budget_lines l ON l.budget_id = b.id"
        f" WHERE b.client_id {dialect.in_list} AND b.start_month <= ? AND b.end_month >= ?"
    )
)
# The failed identity checks in the earliest window of the run; each charge counts those in its own.


def _failures_sql(column: str) -> ListStatement:
    return ListStatement(
        lambda dialect: f"SELECT {column}, at FROM identity_failures WHERE {column} {dialect.in_list} AND at > ?"
    )


_FAILURES_SQL = {column: _failures_sql(column) for column in ("client_id", "provider_id")}
_ACCOUNTS_SQL = ListStatement(lambda dialect: f"SELECT id, balance, held FROM accounts WHERE id {dialect.in_list}")
_WALLET_TOTALS_SQL = ListStatement(
    lambda dialect: (
        "SELECT client_id, SUM(balance), SUM(held) FROM accounts WHERE kind = 'wallet'"
        f" AND client_id {dialect.in_list} GROUP BY client_id"
    )
)

# Side by side (``SideBySide``): every wallet line of the run's clients, read once their clients'
# locks are held (the lines the charges move and the wallet totals their events carry).
_LINES_SQL = ListStatement(
    lambda dialect: (
        f"SELECT id, client_id, balance, held FROM accounts WHERE kind = 'wallet' AND client_id {dialect.in_list}"
    )
)

_CHARGES = Insert(
    "charges",
    (
        "id",
        "provider_id",
        "client_id",
        "category",
        "account_id",
        "amount",
        "method",
        "status",
        "description",
        "created_at",
        "expires_at",
        "captured_at",
        "otp_hash",
    ),
)
_KEYS = Insert("idempotency_keys", ("scope", "key", "fingerprint", "outcome", "created_at"))


class _OneByOne(Exception):
    """This charge is for the one-by-one path (see the module's docstring)."""


@dataclass
class _Account:
    balance: int
    held: int
    read_balance: int  # as read: the run moves each by the difference
    read_held: int


@dataclass
class _State:
    """What the run's charges read, as read, and then as the charges worked out so far left it."""

    keys: dict[tuple[str, str], dict[str, Any]]  # idempotency keys already stored
    providers: dict[str, str]  # status by id
    approved_for: set[tuple[str, str]]  # (provider, category)
    clients: dict[str, tuple[str, str | None]]  # by phone hash: id, national id hash
    budgeted: dict[str, set[tuple[str, str]]]  # by month: (client, category)
    failures: dict[str, dict[str, list[str]]]  # by column, by owner: the times of failed checks, sorted
    accounts: dict[str, _Account]
    wallet_totals: dict[str, list[int]]  # by client: [balance, held] over its wallet lines
    audit_head: str  # side by side a stand-in: the database links the entries (``_ordered_statements``)
    since: list[str]  # by charge of the run, in order: the start of its identity-failure window
    payables: set[str] = field(default_factory=set)  # the payable accounts of the run's providers
    held_clients: set[str] = field(default_factory=set)  # side by side: clients another writer holds


@dataclass
class _Writes:
    """The rows worked out, in the order the one-by-one path writes them, table by table."""

    charges: list[RowValues] = field(default_factory=list)
    transactions: list[RowValues] = field(default_factory=list)
    postings: list[RowValues] = field(default_factory=list)
    events: list[RowValues] = field(default_factory=list)
    audit: list[RowValues] = field(default_factory=list)
    keys: list[RowValues] = field(default_factory=list)
    keys_used: set[tuple[str, str]] = field(default_factory=set)
    answered: list[tuple[Task, Written | BaseException]] = field(default_factory=list)


def _arguments(task: Task) -> tuple[ChargeCommand, Limits, datetime, str]:
    """``charges.charge``'s arguments (``ChargeBatch.accepts`` took only such units)."""
    command, limits, now, month = cast(UnitCall, task.unit).args
    return command, limits, now, month


class ChargeBatch:
    """The ``BatchRunner`` of ``charges.charge``: captured by national id, or held for a code or approval."""

    def accepts(self, call: UnitCall) -> bool:
        if call.kwargs or len(call.args) != 4:
            return False
        return isinstance(call.args[0], ChargeCommand)  # every method: captured at once, or held

    def run(self, connection: Connection, tasks: list[Task], run_one: RunOne, ends_batch: bool = False) -> None:
        start = 0
        while start < len(tasks):
            start = self._run_from(connection, tasks, start, run_one, ends_batch)

    def run_side_by_side(self, connection: Connection, tasks: list[Task], wait: bool = False) -> list[Task]:
        """All the charges side by side with other writers (``SideBySide``): keys locked, then the
        clients' locks tried and their lines read, each charge worked out; then the order lock and
        everything written. The charges of a client another writer holds are left, without an
        outcome, for the writer's next batch: returned. With ``wait`` (a batch holding charges left
        over before) every client's lock is waited for instead, so a charge is left over once at
        most. What the one-by-one path would take raises ``NeedsWriteOrder`` instead: the writer
        runs the batch again holding the lock alone."""
        order = connection.dialect.side_by_side
        if order is None:
            raise NeedsWriteOrder("the database has one writer at a time")
        keys = [(task.idempotency.scope, task.idempotency.key) for task in tasks if task.idempotency is not None]
        if len(set(keys)) != len(keys):
            raise NeedsWriteOrder("one idempotency key twice in the batch")
        state = _read(connection, tasks, order, wait=wait)
        writes = _Writes()
        left: list[Task] = []
        for task, since in zip(tasks, state.since, strict=True):
            client = state.clients.get(_arguments(task)[0].phone_hash)
            if client is not None and client[0] in state.held_clients:
                left.append(task)
                continue
            try:
                writes.answered.append((task, _charge(task, since, state, writes)))
            except _OneByOne:
                raise NeedsWriteOrder("a charge for the one-by-one path") from None
        _write_side_by_side(connection, order, state, writes)
        return left

    def _run_from(
        self, connection: Connection, tasks: list[Task], start: int, run_one: RunOne, ends_batch: bool
    ) -> int:
        """Work out the charges from ``start`` on, write them; the index to go on from."""
        try:
            state = _read(connection, tasks[start:])
        except connection.dialect.storage_fault:
            raise  # a storage fault fails the whole batch
        except Exception as error:  # a bug: the one-by-one path for all of them, each in its savepoint
            log.error(
                "charge_batch_failed", error_type=type(error).__name__, error=str(error), charges=len(tasks) - start
            )
            for task in tasks[start:]:
                task.outcome = run_one(connection, task)
            return len(tasks)
        writes = _Writes()
        for index in range(start, len(tasks)):
            task = tasks[index]
            try:
                outcome = _charge(task, state.since[index - start], state, writes)
            except Exception as error:  # _OneByOne, or a bug: this charge the one-by-one way, in order
                if not isinstance(error, _OneByOne):
                    log.error("charge_batch_failed", error_type=type(error).__name__, error=str(error), charges=1)
                _write(connection, state, writes, run_one)
                task.outcome = run_one(connection, task)
                return index + 1
            writes.answered.append((task, outcome))
        _write(connection, state, writes, run_one, commits_next=ends_batch)
        return len(tasks)


def _read(connection: Connection, tasks: list[Task], order: SideBySide | None = None, wait: bool = False) -> _State:
    """What the run's charges read, in two round trips on PostgreSQL: what the requests name
    (keys, providers, clients by phone, the audit head), then what the clients found own.

    Side by side (``order``): the keys are locked first (a key another writer holds waits for its
    COMMIT, then is read as stored), the clients' locks are tried (``wait``: taken waiting) before
    their wallet lines are read, and the audit head is left to the order lock."""
    dialect = connection.dialect
    arguments = [_arguments(task) for task in tasks]
    commands = [command for command, _, _, _ in arguments]
    by_scope: dict[str, list[str]] = {}
    for task in tasks:
        if task.idempotency is not None:
            by_scope.setdefault(task.idempotency.scope, []).append(task.idempotency.key)
    provider_ids = compact_json(sorted({command.provider_id for command in commands}))
    head = audit.tracked_head(connection) if order is None else GENESIS  # side by side: a stand-in
    first: list[tuple[str, Sequence[object]]] = []
    if order is not None and by_scope:
        locked = [(scope, key) for scope, keys in by_scope.items() for key in keys]
        first.append((order.lock_keys, (compact_json(locked),)))
    locks = len(first)
    first += [
        (_PROVIDERS_SQL(dialect), (provider_ids,)),
        (_PROVIDER_CATEGORIES_SQL(dialect), (provider_ids,)),
        (_CLIENTS_SQL(dialect), (compact_json(sorted({command.phone_hash for command in commands})),)),
    ]
    first += [(_KEYS_SQL(dialect), (scope, compact_json(wanted))) for scope, wanted in by_scope.items()]
    if head is None:
        first.append((audit.HEAD_SQL, ()))
    found = connection.execute_pipeline(first)[locks:]
    providers = dict(found[0])
    approved_for = {(p, c) for p, c in found[1]}
    clients = {phone_hash: (client_id, national_id_hash) for client_id, phone_hash, national_id_hash in found[2]}
    keys: dict[tuple[str, str], dict[str, Any]] = {}
    for scope, rows in zip(by_scope, found[3 : 3 + len(by_scope)], strict=True):
        for key, fingerprint, outcome in rows:
            keys[(scope, key)] = {"fingerprint": fingerprint, "outcome": outcome}
    if head is None:
        head_rows = found[-1]
        head = str(head_rows[0][0]) if head_rows else GENESIS

    client_ids = compact_json(sorted({client_id for client_id, _ in clients.values()}))
    months = sorted({month for _, _, _, month in arguments})
    since = [_since(now, limits) for _, limits, now, _ in arguments]
    earliest = min(since)
    payables = {payable_account(command.provider_id) for command in commands}
    account_ids = set(payables)
    for command in commands:
        client = clients.get(command.phone_hash)
        if client is not None:
            account_ids.add(wallet_account(client[0], command.category))
    columns = (("client_id", client_ids), ("provider_id", provider_ids))
    second: list[tuple[str, Sequence[object]]] = (
        [(_ACCOUNTS_SQL(dialect), (compact_json(sorted(account_ids)),)), (_WALLET_TOTALS_SQL(dialect), (client_ids,))]
        if order is None
        else [
            (order.lock_clients if wait else order.try_lock_clients, (client_ids,)),
            (_LINES_SQL(dialect), (client_ids,)),
            (_ACCOUNTS_SQL(dialect), (compact_json(sorted(payables)),)),
        ]
    )
    reads = len(second)
    second += [(_FAILURES_SQL[column](dialect), (owners, earliest)) for column, owners in columns]
    second += [(_BUDGETED_SQL(dialect), (client_ids, month, month)) for month in months]
    found = connection.execute_pipeline(second)
    held_clients: set[str] = set()
    if order is None:
        accounts = {account_id: _Account(balance, held, balance, held) for account_id, balance, held in found[0]}
        wallet_totals = {client_id: [balance, held] for client_id, balance, held in found[1]}
    else:
        held_clients = set() if wait else {str(row[0]) for row in found[0]}
        payables = {str(row[0]) for row in found[2]}  # those missing: the charge goes the one-by-one way
        accounts, wallet_totals = _locked_lines(found[1], payables)
    failures: dict[str, dict[str, list[str]]] = {}
    for (column, _), rows in zip(columns, found[reads : reads + 2], strict=True):
        times: dict[str, list[str]] = {}
        for owner, at in rows:
            times.setdefault(owner, []).append(at)
        for listed in times.values():
            listed.sort()
        failures[column] = times
    budgeted = {month: {(c, k) for c, k in rows} for month, rows in zip(months, found[reads + 2 :], strict=True)}
    return _State(
        keys,
        providers,
        approved_for,
        clients,
        budgeted,
        failures,
        accounts,
        wallet_totals,
        head,
        since,
        payables,
        held_clients,
    )


def _locked_lines(rows: list[Any], payables: set[str]) -> tuple[dict[str, _Account], dict[str, list[int]]]:
    """The accounts and wallet totals from the lines (``id, client_id, balance, held``; those of a
    client whose lock another writer holds are read but not used: its charges wait), and
    each payable account as a stand-in at zero: not locked (nothing on the charge path reads its
    balance); its postings' balances are rebased on its committed one under the order lock."""
    accounts: dict[str, _Account] = {}
    totals: dict[str, list[int]] = {}
    for account_id, client_id, balance, held in rows:
        accounts[account_id] = _Account(balance, held, balance, held)
        total = totals.setdefault(client_id, [0, 0])
        total[0] += balance
        total[1] += held
    for account_id in payables:
        accounts[account_id] = _Account(0, 0, 0, 0)
    return accounts, totals


def _since(now: datetime, limits: Limits) -> str:
    return rfc3339(now - _window(limits.identity_failures_window_seconds))


@functools.cache  # the settings have one window: its timedelta built once, not per charge
def _window(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)


def _count_after(times: list[str] | None, since: str) -> int:
    return 0 if not times else len(times) - bisect.bisect_right(times, since)


def _charge(task: Task, since: str, state: _State, writes: _Writes) -> Written | BaseException:
    """One charge, worked out (``since``: its identity-failure window's start, as ``_read`` found
    it): its outcome; its rows added to ``writes`` and its moves to ``state``.
    ``charges.charge`` step by step; what raises before the end leaves ``writes`` and ``state`` as they were."""
    idempotency = task.idempotency
    if idempotency is not None:
        key = (idempotency.scope, idempotency.key)
        if key in writes.keys_used:
            raise _OneByOne
        stored = state.keys.get(key)
        if stored is not None:
            return replay_outcome(stored, idempotency)  # type: ignore[arg-type]  # a mapping, as a row
    command, limits, now, month = _arguments(task)
    try:
        return _work_out(task, command, limits, now, month, since, state, writes)
    except OperationError as error:
        if idempotency is not None and not isinstance(error, (RateLimited, Unavailable)):
            _remember(task, writes, {"error": error.to_record()})
        return error


def _work_out(
    task: Task,
    command: ChargeCommand,
    limits: Limits,
    now: datetime,
    month: str,
    since: str,
    state: _State,
    writes: _Writes,
) -> Written:
    """A new charge: the checks every method shares, then a capture (by national id) or a hold."""
    stamp = rfc3339(now)
    provider_status = state.providers.get(command.provider_id)
    if provider_status is None or provider_status != "approved":
        raise ProviderNotApproved("the provider is not approved to charge")
    if (command.provider_id, command.category) not in state.approved_for:
        raise ProviderNotApproved("the provider is not approved for this category", field="category")
    client = state.clients.get(command.phone_hash)
    if client is None:
        raise NotFound("no wallet for this phone number", field="phone")
    client_id, national_id_hash = client
    if (client_id, command.category) not in state.budgeted[month]:
        raise CategoryNotAllowed("this category is not in the client's budget", field="category")
    client_failures = _count_after(state.failures["client_id"].get(client_id), since)
    provider_failures = _count_after(state.failures["provider_id"].get(command.provider_id), since)
    if client_failures >= limits.identity_failures_max or provider_failures >= limits.provider_identity_failures_max:
        raise _OneByOne  # at the limit: whether it is locked out is ``_check_rate_limit``'s to say
    account_id = wallet_account(client_id, command.category)
    account = state.accounts.get(account_id)
    line = LineState(account_id, account.balance, account.held) if account else LineState(account_id, 0, 0)
    if command.method is not IdentityMethod.NATIONAL_ID:
        return _hold(task, command, stamp, client_id, account_id, account, line, state, writes)
    if (
        national_id_hash is None
        or command.national_id_hash is None
        or not equal(national_id_hash, command.national_id_hash)
    ):
        raise _OneByOne  # a failed check is recorded, and the charges after it count it
    payable_id = payable_account(command.provider_id)
    payable = state.accounts.get(payable_id)
    if (account is None or payable is None) and command.amount <= line.available:
        raise _OneByOne  # ``post`` would find an account missing: a broken database, its error to give
    charge_id = new_id("ch")
    charge_rules.debit(line, command.amount)  # refuses when not available
    if account is None or payable is None:
        raise _OneByOne
    row = charge_units.charge_row(charge_id, command, client_id, account_id, "captured", stamp)
    transfer = Transaction.transfer(TransactionType.CAPTURE, account_id, payable_id, command.amount)  # checked
    transaction_id = new_id("tx")
    # ``post``: the postings in order, each with the balance after it; the wallet line checked
    # after its posting and its event written with the line's and the whole wallet's figures.
    balances = {account_id: account.balance, payable_id: payable.balance}
    postings: list[RowValues] = []
    for posting in transfer.postings:
        balances[posting.account_id] += posting.amount
        postings.append((transaction_id, posting.account_id, posting.amount, balances[posting.account_id]))
    line_balance = balances[account_id]
    check_line(account_id, line_balance, account.held)  # ``LineState.check`` of the line after, unbuilt
    totals = state.wallet_totals.get(client_id)
    if totals is None:
        raise InvariantViolation(f"wallet event on {account_id}, which is not a wallet line")
    wallet_balance = totals[0] - command.amount
    data = audit.ledger_data(transfer.postings, charge_id, None, None)  # what ``post`` writes
    entry_hash = link_hash(state.audit_head, stamp, task.actor, _ACTION, transaction_id, data)
    record = render.charge(row)
    # Nothing raises past this point: the charge is worked out; into the rows and the state.
    writes.charges.append(charge_units.charge_values(row))
    writes.transactions.append(
        (transaction_id, _CAPTURE, stamp, client_id, command.provider_id, command.category, charge_id, None, None)
    )
    writes.postings.extend(postings)
    writes.events.append(
        (
            client_id,
            _CAPTURE,
            command.category,
            -command.amount,
            charge_id,
            command.provider_id,
            transaction_id,
            None,
            line_balance,
            line_balance - account.held,
            wallet_balance,
            wallet_balance - totals[1],
            stamp,
        )
    )
    writes.audit.append((stamp, task.actor, _ACTION, transaction_id, data, state.audit_head, entry_hash))
    state.audit_head = entry_hash
    account.balance = balances[account_id]
    payable.balance = balances[payable_id]
    totals[0] = wallet_balance
    _remember(task, writes, {"value": record})
    return Written(record)


def _hold(
    task: Task,
    command: ChargeCommand,
    stamp: str,
    client_id: str,
    account_id: str,
    account: _Account | None,
    line: LineState,
    state: _State,
    writes: _Writes,
) -> Written:
    """``charges.charge`` for a code or an approval: the amount held on the line, the charge pending."""
    charge_id = new_id("ch")
    after = charge_rules.reserve(line, command.amount)  # refuses when not available
    if account is None:
        raise _OneByOne  # ``change_held`` would find the account missing: its error to give
    totals = state.wallet_totals.get(client_id)
    if totals is None:
        raise InvariantViolation(f"wallet event on {account_id}, which is not a wallet line")
    row = charge_units.charge_row(charge_id, command, client_id, account_id, "pending", stamp)
    data = canonical({"account_id": account_id, "amount": command.amount})  # what ``audit.append`` writes
    entry_hash = link_hash(state.audit_head, stamp, task.actor, _HELD, charge_id, data)
    record = render.charge(row)
    wallet_held = totals[1] + command.amount
    # Nothing raises past this point.
    writes.charges.append(charge_units.charge_values(row))
    writes.audit.append((stamp, task.actor, _HELD, charge_id, data, state.audit_head, entry_hash))
    state.audit_head = entry_hash
    writes.events.append(
        (
            client_id,
            "hold",
            command.category,
            -command.amount,
            charge_id,
            command.provider_id,
            None,
            None,
            after.balance,
            after.available,
            totals[0],
            totals[0] - wallet_held,
            stamp,
        )
    )
    account.held = after.held
    totals[1] = wallet_held
    _remember(task, writes, {"value": record})
    return Written(record)


def _remember(task: Task, writes: _Writes, outcome: Record) -> None:
    """``Writer._remember``: the outcome kept with the idempotency key, in the same transaction."""
    idempotency = task.idempotency
    if idempotency is None:
        return
    writes.keys.append(
        (idempotency.scope, idempotency.key, idempotency.fingerprint, compact_json(outcome), task.created_at)
    )
    writes.keys_used.add((idempotency.scope, idempotency.key))


def _write(connection: Connection, state: _State, writes: _Writes, run_one: RunOne, commits_next: bool = False) -> None:
    """Write what the run worked out and give each charge its outcome; if the writing fails, undo it
    and run those charges one by one. When only the ``COMMIT`` comes next and the database can check
    the moved accounts itself, the writes wait to go with it (``_with_the_commit``)."""
    if not writes.answered:
        return
    check = connection.dialect.check_accounts
    if commits_next and check is not None:
        _with_the_commit(connection, check, state, writes)
        return
    sent = False
    try:
        statements, moves_at, moved = _statements(connection, state, writes)
        sent = True
        results = connection.execute_pipeline(statements)  # one round trip on PostgreSQL
        _check_moved(results[moves_at] if moved else [], moved)
    except connection.dialect.storage_fault:
        raise  # a storage fault fails the whole batch
    except Exception as error:  # a bug: run them the ordinary way, each in its own savepoint
        if sent:
            connection.execute("ROLLBACK TO charges")
            connection.execute("RELEASE charges")
            audit.forget_head(connection)  # the next entry reads the head from the table again
        log.error(
            "charge_batch_failed", error_type=type(error).__name__, error=str(error), charges=len(writes.answered)
        )
        for task, _ in writes.answered:
            task.outcome = run_one(connection, task)
        return
    connection.defer("RELEASE charges")  # sent with the next statement (PostgreSQL)
    audit.restore_head(connection, state.audit_head)  # the writer's remembered head: the run's last entry
    for task, outcome in writes.answered:
        task.outcome = outcome


def _with_the_commit(connection: Connection, check: str, state: _State, writes: _Writes) -> None:
    """What the run worked out, left to go with the writer's ``COMMIT`` in one round trip (nothing
    else runs in the transaction after it): the rows, the moves, the keys with their outcomes and
    ``Dialect.check_accounts``, which fails the transaction unless each moved account holds what was
    worked out. So the write lock is held one round trip less. No savepoint: a failure there fails
    the ``COMMIT``, and the writer undoes the whole batch and runs it again one unit at a time."""
    statements, _, moved = _statements(connection, state, writes, savepoint=False)
    statements += _checked(check, moved)
    for sql, parameters in statements:
        connection.defer(sql, parameters)
    audit.restore_head(connection, state.audit_head)
    for task, outcome in writes.answered:
        task.outcome = outcome


def _write_side_by_side(connection: Connection, order: SideBySide, state: _State, writes: _Writes) -> None:
    """What the run worked out, to be written, all sent with the writer's ``COMMIT`` in one round
    trip: the order lock and the rows under it (``_ordered_statements``), a check that every moved
    wallet line holds what was worked out (a failed check fails the transaction: nothing commits)
    and the outcomes kept with their keys; then the outcomes set. The order lock is held only while
    the database runs them: no round trip, no Python, between taking it and ``COMMIT``."""
    statements: list[tuple[str, Sequence[object]]] = []
    if writes.charges:  # refusals and replays alone write no ordered row: no order lock
        statements, moved = _ordered_statements(connection, order, state, writes)
        check = connection.dialect.check_accounts
        if check is not None:
            statements += _checked(check, {a: moved[a] for a in moved if a not in state.payables})
    statements += _KEYS.statements(writes.keys)  # their locks are held: nobody else writes them
    for sql, parameters in statements:
        connection.defer(sql, parameters)
    for task, outcome in writes.answered:
        task.outcome = outcome


def _checked(check: str, moved: dict[str, _Account]) -> list[tuple[str, Sequence[object]]]:
    """``Dialect.check_accounts`` of the moved accounts as worked out (none when nothing moved)."""
    return [(check, (_expected_accounts(moved),))] if moved else []


def _expected_accounts(moved: dict[str, _Account]) -> str:
    """``[id, balance, held]`` of each moved account as worked out, for ``Dialect.check_accounts``."""
    return compact_json([(account_id, account.balance, account.held) for account_id, account in moved.items()])


def _ordered_statements(
    connection: Connection, order: SideBySide, state: _State, writes: _Writes
) -> tuple[list[tuple[str, Sequence[object]]], dict[str, _Account]]:
    """The order lock, then the run's rows, as ``_statements`` gives them but for two, which take
    from the database what the order puts in them: the postings (``SideBySide.rebased_postings``:
    a payable account's balance after each of its postings counts from its committed balance, as
    the stand-in at zero counted from zero) and the audit entries (``SideBySide.chained_audit``:
    linked to the chain's head). Every account moves by its net change, so a payable account's
    balance needs no reading. The accounts moved."""
    payables = state.payables
    postings = [
        (transaction_id, account_id, amount, balance, 1 if account_id in payables else 0)
        for transaction_id, account_id, amount, balance in writes.postings
    ]
    entries = [row[:5] for row in writes.audit]  # (at, actor, action, subject, data)
    statements, moves_at, moved = _statements(
        connection, state, writes, savepoint=False, keys=False, postings_and_audit=False
    )
    statements[moves_at:moves_at] = [(order.rebased_postings, (compact_json(postings),))]
    statements.append((order.chained_audit, (compact_json(entries),)))
    return [(order.order_lock, ()), *statements], moved


def _statements(
    connection: Connection,
    state: _State,
    writes: _Writes,
    *,
    savepoint: bool = True,
    keys: bool = True,
    postings_and_audit: bool = True,
) -> tuple[list[tuple[str, Sequence[object]]], int, dict[str, _Account]]:
    """The savepoint, the rows, each account moved once by its net change and the keys with their
    outcomes, as statements; the index of the move among them, and the accounts it moves. Without
    the savepoint where a failure undoes the whole transaction; without the keys side by side
    (``_write_side_by_side`` writes them); without the postings and the audit entries when the
    order lock's statements write them (``_ordered_statements``)."""
    moved = {
        account_id: a
        for account_id, a in state.accounts.items()
        if (a.balance, a.held) != (a.read_balance, a.read_held)
    }
    statements: list[tuple[str, Sequence[object]]] = [("SAVEPOINT charges", ())] if savepoint else []
    statements += _CHARGES.statements(writes.charges)
    statements += bulk.TRANSACTIONS.statements(writes.transactions)
    if postings_and_audit:
        statements += bulk.POSTINGS.statements(writes.postings)
    moves_at = len(statements)
    if moved:
        statements.append(
            bulk.move_balances_statement(
                connection.dialect,
                [(account_id, a.balance - a.read_balance, a.held - a.read_held) for account_id, a in moved.items()],
            )
        )
    statements += bulk.WALLET_EVENTS.statements(writes.events)
    if postings_and_audit:
        statements += bulk.AUDIT_LOG.statements(writes.audit)
    if keys:
        statements += _KEYS.statements(writes.keys)
    return statements, moves_at, moved


def _check_moved(after: list[Any], moved: dict[str, _Account]) -> None:
    """Checked after writing too: every balance is what the run worked out (the table's own CHECK
    keeps every wallet line's available at zero or more)."""
    if len(after) != len(moved):
        raise InvariantViolation(f"{len(moved) - len(after)} accounts moved by the charges are missing")
    for account_id, balance, held in after:
        if balance != moved[account_id].balance or held != moved[account_id].held:
            raise InvariantViolation(
                f"{account_id}: balance {balance} after the charges, {moved[account_id].balance} expected"
            )
    for account in moved.values():
        account.read_balance, account.read_held = account.balance, account.held


BATCH_RUNNERS[charge_units.charge] = ChargeBatch()
