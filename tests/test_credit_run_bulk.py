"""The credit run's bulk step writes exactly what posting each line on its own writes.

``reference_step`` is the one-by-one credit run as it was before the step was written in bulk:
every transfer through ``ledger_rows.post`` (one statement at a time, the running balance read back from
``UPDATE ... RETURNING``, the wallet event and the audit entry appended by their own modules).
Both run from the same database, with the same ids, and every table they touch must come out the
same, row for row, in the same order: transactions, postings (with ``balance_after``), balances,
wallet events, the hash-chained audit log, credits and expiries.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wallet.check import check_database
from wallet.ledger.accounts import FUNDING_ACCOUNT, wallet_account
from wallet.ledger.audit import canonical
from wallet.ledger.charges import IdentityMethod
from wallet.ledger.months import UnusedPolicy, expires_at_boundary, expiry_amount, previous_month
from wallet.ledger.transactions import Transaction, TransactionType
from wallet.storage.port import ChargeCommand, Limits, NewBudget, NewClient, NewProvider, Record
from wallet.storage.sql import audit, charges, credit_runs, ledger_rows, organizer
from wallet.storage.sql.units import Unit
from wallet.storage.sqlite.adapter import migrate
from wallet.storage.sqlite.connection import SqliteConnection
from wallet.storage.sqlite.writer import connect

# The one-by-one path, kept here as the measure of the bulk one.


def reference_step(month: str, current_month: str, after_budget_seq: int, batch: int, now: str) -> Unit:
    boundary_is_now = month <= current_month

    def unit(connection: sqlite3.Connection) -> Record:
        connection.execute(
            "INSERT INTO credit_runs (month, started_at) VALUES (?, ?) ON CONFLICT (month) DO NOTHING", (month, now)
        )
        budgets = connection.execute(
            "SELECT * FROM budgets WHERE seq > ? AND start_month <= ? AND end_month >= ? ORDER BY seq LIMIT ?",
            (after_budget_seq, month, previous_month(month), batch),
        ).fetchall()
        credited = expired = released = 0
        for budget in budgets:
            policy = UnusedPolicy(budget["unused"])
            lines = connection.execute(
                "SELECT category, monthly_amount FROM budget_lines WHERE budget_id = ? ORDER BY category",
                (budget["id"],),
            ).fetchall()
            for line in lines:
                account_id = wallet_account(budget["client_id"], line["category"])
                ledger_rows.ensure_account(
                    connection, account_id, client_id=budget["client_id"], category=line["category"]
                )
                common = {"client_id": budget["client_id"], "category": line["category"]}
                if boundary_is_now and expires_at_boundary(policy, budget["start_month"], budget["end_month"], month):
                    expired += _expire_at_boundary(connection, account_id, month, now, common)
                if budget["start_month"] <= month <= budget["end_month"]:
                    amount = line["monthly_amount"]
                    if boundary_is_now:
                        done_now = _credit(connection, account_id, month, budget["id"], amount, now, common)
                        credited, released = credited + (done_now == "credited"), released + (done_now == "released")
                    else:
                        credited += _stage(connection, account_id, month, budget["id"], amount, now)
        last_seq = budgets[-1]["seq"] if budgets else after_budget_seq
        done = len(budgets) < batch
        if done:
            connection.execute("UPDATE credit_runs SET finished_at = ? WHERE month = ?", (now, month))
            if boundary_is_now:
                connection.execute(
                    "INSERT INTO month_releases (month, finished_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (month, now)
                )
        return {
            "last_budget_seq": last_seq,
            "done": done,
            "credited_now": credited,
            "expired_now": expired,
            "released_now": released,
        }

    return unit


def _expire_at_boundary(
    connection: sqlite3.Connection, account_id: str, month: str, now: str, common: dict[str, str]
) -> int:
    if connection.execute(
        "SELECT 1 FROM expiries WHERE account_id = ? AND boundary_month = ?", (account_id, month)
    ).fetchone():
        return 0
    line = ledger_rows.read_line(connection, account_id)
    already_credited = connection.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM credits WHERE account_id = ? AND month >= ?", (account_id, month)
    ).fetchone()[0]
    amount = expiry_amount(line.available, already_credited)
    transaction_id = None
    if amount > 0:
        transfer = Transaction.transfer(TransactionType.EXPIRY, account_id, FUNDING_ACCOUNT, amount)
        transaction_id = ledger_rows.post(connection, transfer, now, month=previous_month(month), **common)
    connection.execute(
        "INSERT INTO expiries (account_id, boundary_month, amount, transaction_id) VALUES (?, ?, ?, ?)",
        (account_id, month, amount, transaction_id),
    )
    return 1 if amount > 0 else 0


def _credit(
    connection: sqlite3.Connection,
    account_id: str,
    month: str,
    budget_id: str,
    amount: int,
    now: str,
    common: dict[str, str],
) -> str | None:
    """The month has begun: credit the line, with what was staged for it ahead if anything was."""
    if connection.execute("SELECT 1 FROM credits WHERE account_id = ? AND month = ?", (account_id, month)).fetchone():
        return None
    staged = connection.execute(
        "SELECT budget_id, amount FROM staged_credits WHERE account_id = ? AND month = ?", (account_id, month)
    ).fetchone()
    if staged is not None:
        budget_id, amount = staged[0], staged[1]
    transfer = Transaction.transfer(TransactionType.CREDIT, FUNDING_ACCOUNT, account_id, amount)
    transaction_id = ledger_rows.post(connection, transfer, now, month=month, **common)
    connection.execute(
        "INSERT INTO credits (account_id, month, budget_id, amount, transaction_id) VALUES (?, ?, ?, ?, ?)",
        (account_id, month, budget_id, amount, transaction_id),
    )
    return "credited" if staged is None else "released"


def _stage(connection: sqlite3.Connection, account_id: str, month: str, budget_id: str, amount: int, now: str) -> int:
    """Ahead of the month: stage the line's credit, post nothing."""
    for table in ("credits", "staged_credits"):
        if connection.execute(
            f"SELECT 1 FROM {table} WHERE account_id = ? AND month = ?", (account_id, month)
        ).fetchone():
            return 0
    connection.execute(
        "INSERT INTO staged_credits (account_id, month, budget_id, amount, staged_at) VALUES (?, ?, ?, ?, ?)",
        (account_id, month, budget_id, amount, now),
    )
    audit.append(connection, now, "credit.staged", account_id, amount=amount, budget_id=budget_id, month=month)
    return 1


# Running units on a plain connection, as the writer does: each inside its own transaction.

Step = Callable[[str, str, int, int, str], Unit]
LIMITS = Limits(
    identity_failures_max=5,
    identity_failures_window_seconds=900,
    provider_identity_failures_max=20,
    otp_max_attempts=5,
    login_code_max_attempts=5,
    login_requests_max=5,
    login_requests_window_seconds=900,
)
START = datetime(2027, 1, 10, 10, 0, tzinfo=UTC)


def apply(path: Path, unit: Unit) -> Any:
    connection = connect(str(path))
    try:
        connection.execute("BEGIN IMMEDIATE")
        value = unit(connection)
        connection.execute("COMMIT")
        return value
    finally:
        connection.close()


def small_world(path: Path, now: str, clients: int) -> str:
    """On a database with a schema: home care, an approved provider (its id returned), and
    ``clients`` clients ``phone-N`` / ``nid-N``, each with a budget of 40,000 a month from
    January 2027, credited for January."""
    apply(path, organizer.create_category("home_care", "Kotihoito", now))
    provider = apply(
        path, organizer.create_provider(NewProvider("Hoiva Oy", "2077474-0", "FI2112345600000785", ("home_care",)), now)
    )
    apply(path, organizer.set_provider_status(provider["id"], "approved", now))
    for number in range(clients):
        client = apply(
            path, organizer.create_client(NewClient(f"c{number}", f"phone-{number}", "cipher", f"nid-{number}"), now)
        )
        apply(
            path,
            organizer.create_budget(
                NewBudget(client["id"], "2027-01", "2027-12", UnusedPolicy.EXPIRE, (("home_care", 40_000),)), now
            ),
        )
    apply(path, credit_runs.credit_run_step("2027-01", "2027-01", 0, 10, now))
    return str(provider["id"])


def run_month(
    path: Path,
    step: Step,
    month: str,
    current: str,
    now: datetime,
    batch: int,
    after: int = 0,
    steps_max: int | None = None,
) -> tuple[int, int, int]:
    """The service's loop over steps; ``steps_max`` stops early, as a crash between steps would."""
    credited = expired = 0
    for _ in itertools.count() if steps_max is None else range(steps_max):
        result = apply(path, step(month, current, after, batch, now.isoformat()))
        credited, expired = credited + result["credited_now"], expired + result["expired_now"]
        after = result["last_budget_seq"]
        if result["done"]:
            break
    return credited, expired, after


def history(path: Path) -> dict[str, str]:
    """Two months of a varied organizer: every case a step meets at the March boundary."""
    migrate(str(path))
    now = START.isoformat()
    apply(path, organizer.create_category("home_care", "Kotihoito", now))
    apply(path, organizer.create_category("transport", "Kuljetus", now))
    provider = apply(
        path,
        organizer.create_provider(
            NewProvider("Hoiva Oy", "2077474-0", "FI2112345600000785", ("home_care", "transport")), now
        ),
    )
    apply(path, organizer.set_provider_status(provider["id"], "approved", now))
    clients = {}
    for name in ("full", "ends", "carry", "starts", "held", "ahead"):
        clients[name] = apply(
            path, organizer.create_client(NewClient(name, f"phone-{name}", f"cipher-{name}", f"nid-{name}"), now)
        )["id"]

    def budget(client: str, start: str, end: str, unused: UnusedPolicy, *lines: tuple[str, int]) -> None:
        apply(path, organizer.create_budget(NewBudget(clients[client], start, end, unused, lines), now))

    budget("full", "2027-01", "2027-12", UnusedPolicy.EXPIRE, ("home_care", 40_000), ("transport", 5_000))
    budget("ends", "2027-01", "2027-02", UnusedPolicy.CARRY_OVER, ("home_care", 30_000))
    budget("carry", "2027-02", "2027-06", UnusedPolicy.CARRY_OVER, ("home_care", 20_000))
    budget("held", "2027-01", "2027-12", UnusedPolicy.EXPIRE, ("home_care", 25_000), ("transport", 7_000))
    budget("ahead", "2027-01", "2027-04", UnusedPolicy.EXPIRE, ("transport", 9_000))
    run_month(path, reference_step, "2027-01", "2027-01", START, batch=2)

    def spend(client: str, category: str, amount: int, method: IdentityMethod, at: datetime) -> None:
        apply(
            path,
            charges.charge(
                ChargeCommand(
                    provider["id"],
                    f"phone-{client}",
                    amount,
                    category,
                    None,
                    method,
                    national_id_hash=f"nid-{client}" if method is IdentityMethod.NATIONAL_ID else None,
                    otp_hash="code" if method is IdentityMethod.OTP else None,
                    otp_expires_at=at + timedelta(days=60) if method is IdentityMethod.OTP else None,
                ),
                LIMITS,
                at,
                at.strftime("%Y-%m"),
            ),
        )

    spend("full", "home_care", 12_345, IdentityMethod.NATIONAL_ID, START)
    spend("ends", "home_care", 1_000, IdentityMethod.NATIONAL_ID, START)
    february = datetime(2027, 2, 3, 9, 0, tzinfo=UTC)
    run_month(path, reference_step, "2027-02", "2027-02", february, batch=2)
    # The same client and category in a budget that ends and one that begins: one wallet line.
    budget("ends", "2027-03", "2027-12", UnusedPolicy.EXPIRE, ("home_care", 33_000), ("transport", 4_000))
    budget("starts", "2027-03", "2027-05", UnusedPolicy.EXPIRE, ("home_care", 15_000))
    # A line whose wallet account was never opened (as in a database older than opening it with
    # the budget): the step opens it.
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "INSERT INTO budget_lines (budget_id, category, monthly_amount)"
            " SELECT id, 'transport', 3000 FROM budgets WHERE client_id = ?",
            (clients["starts"],),
        )
    connection.close()
    spend("full", "transport", 2_500, IdentityMethod.NATIONAL_ID, february)
    spend("held", "home_care", 20_000, IdentityMethod.OTP, february)  # a hold over the boundary
    spend("held", "transport", 7_000, IdentityMethod.NATIONAL_ID, february)  # the whole line spent
    # Next month credited ahead of time for one budget (its step only), the rest not yet.
    run_month(path, reference_step, "2027-03", "2027-02", february, batch=1, steps_max=1)
    return clients


TABLES = {
    "transactions": "SELECT seq, id, type, created_at, client_id, provider_id, category, charge_id, refund_id, month",
    "postings": "SELECT seq, transaction_id, account_id, amount, balance_after",
    "accounts": "SELECT id, kind, client_id, provider_id, category, balance, held",
    "wallet_events": "SELECT *",
    "audit_log": "SELECT *",
    "credits": "SELECT *",
    "expiries": "SELECT *",
    "credit_runs": "SELECT *",
    "staged_credits": "SELECT *",
    "month_releases": "SELECT *",
}


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    connection = sqlite3.connect(path)
    try:
        return {
            table: connection.execute(f"{columns} FROM {table} ORDER BY 1, 2").fetchall()
            for table, columns in TABLES.items()
        }
    finally:
        connection.close()


def copy(source: Path, target: Path) -> Path:
    connection = sqlite3.connect(source)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    shutil.copyfile(source, target)
    return target


@pytest.mark.parametrize(
    ("month", "current", "batch", "steps_before"),
    [
        ("2027-03", "2027-03", 2, 0),  # the boundary: expiries, ends and starts, a hold, credited ahead
        ("2027-03", "2027-03", 1, 2),  # the same, finishing a run a crash stopped after two steps
        ("2027-03", "2027-03", 500, 0),  # one step for everything
        ("2027-04", "2027-03", 2, 0),  # ahead of time: credits only, nothing expires
    ],
)
def test_a_bulk_step_writes_what_the_one_by_one_path_wrote(
    tmp_path: Path, deterministic_ids: Callable[[int], None], month: str, current: str, batch: int, steps_before: int
) -> None:
    deterministic_ids(0)
    clients = history(tmp_path / "history.db")
    now = datetime(2027, 3, 1, 6, 0, tzinfo=UTC) if month == current else datetime(2027, 3, 20, 6, 0, tzinfo=UTC)
    after = 0
    if steps_before:
        deterministic_ids(50_000)
        _, _, after = run_month(
            tmp_path / "history.db", reference_step, month, current, now, batch, steps_max=steps_before
        )
    one_by_one = copy(tmp_path / "history.db", tmp_path / "one-by-one.db")
    bulk = copy(tmp_path / "history.db", tmp_path / "bulk.db")

    deterministic_ids(100_000)
    expected = run_month(one_by_one, reference_step, month, current, now, batch, after)
    deterministic_ids(100_000)
    got = run_month(bulk, credit_runs.credit_run_step, month, current, now, batch, after)

    assert got == expected
    before, written, wanted = dump(tmp_path / "history.db"), dump(bulk), dump(one_by_one)
    assert written == wanted
    if month == current:  # the step did write something: credits at the boundary, staged credits ahead
        assert len(written["transactions"]) > len(before["transactions"])
        assert written["staged_credits"] and len(written["month_releases"]) > len(before["month_releases"])
    else:
        assert written["transactions"] == before["transactions"]  # ahead: nothing posted, nothing spendable
        assert len(written["staged_credits"]) > len(before["staged_credits"])
    if month == current:
        assert len(written["expiries"]) > len(before["expiries"])
        assert any(row[2] == 0 for row in written["expiries"])  # a line with nothing left: expiry of 0
    assert check_database(str(bulk)) == []
    opened = [row for row in written["accounts"] if row[0] == wallet_account(clients["starts"], "transport")]
    assert opened and opened[0][5] == (3000 if month == current else 0)  # opened by the step, credited or staged


def test_a_repeated_bulk_step_writes_nothing_more(tmp_path: Path, deterministic_ids: Callable[[int], None]) -> None:
    deterministic_ids(0)
    path = tmp_path / "history.db"
    history(path)
    now = datetime(2027, 3, 1, 6, 0, tzinfo=UTC)
    first = run_month(path, credit_runs.credit_run_step, "2027-03", "2027-03", now, batch=2)
    done = dump(path)
    again = run_month(path, credit_runs.credit_run_step, "2027-03", "2027-03", now + timedelta(hours=1), batch=2)
    assert first[0] > 0 and first[1] > 0
    assert again[:2] == (0, 0)
    rerun = dump(path)
    assert rerun.pop("credit_runs")[-1][2] == (now + timedelta(hours=1)).isoformat()  # finished again, later
    done.pop("credit_runs")
    assert rerun == done
    assert check_database(str(path)) == []


@pytest.mark.parametrize(
    "account_id",
    ["wallet:cl_0190a1b2c3d4e5f6a7b8c9d0e1f2:home_care", 'wallet:"quoted"\\back:x', "wallet:äö€😀:\x01\n\t\u2028"],
)
def test_the_audit_data_a_step_writes_is_the_canonical_json(account_id: str) -> None:
    """The step writes its entries' data directly; it must be what ``canonical`` makes, byte for byte
    (any odd character in an id included), or the hash chain would not verify."""
    for transfer in (
        Transaction.transfer(TransactionType.CREDIT, FUNDING_ACCOUNT, account_id, 60_000),
        Transaction.transfer(TransactionType.EXPIRY, account_id, FUNDING_ACCOUNT, 1),
    ):
        expected = canonical(
            {
                "postings": [[p.account_id, p.amount] for p in transfer.postings],
                "charge_id": None,
                "refund_id": None,
                "month": "2027-03",
            }
        )
        assert credit_runs.ledger_data(transfer.postings, "2027-03") == expected


# Plans made ahead (``credit_runs.plan_step``, what ``wallet credit-run`` hands the writer).

ID_BLOCK = 10_000  # ids a step may use: each step's ids from its own block, whichever runs it first


def planner(path: Path) -> SqliteConnection:
    connection = sqlite3.connect(path, isolation_level=None, factory=SqliteConnection)
    connection.execute("PRAGMA query_only = ON")
    return connection


def run_planned(
    path: Path, month: str, current: str, now: datetime, batch: int, ids: Callable[[int], None], after: int = 0
) -> tuple[int, int, list[bool | None]]:
    """The adapter's pipeline, in order: the plan of the step after each one is made *before* that
    one is written (from a snapshot without it), as ``credit_run_step(plan_ahead=clock)`` does.
    Per step, whether the writer applied its plan (``None``: no plan could be made)."""
    reading = planner(path)
    credited = expired = 0
    applied: list[bool | None] = []
    ids(100_000)
    plan = credit_runs.plan_step(reading, month, current, after, batch, now.isoformat(), "system")
    for index in itertools.count():
        step_after = plan.after_budget_seq if plan is not None else after
        following = None
        if plan is not None and not plan.result["done"]:
            ids(100_000 + (index + 1) * ID_BLOCK)
            following = credit_runs.plan_step(
                reading, month, current, int(plan.result["last_budget_seq"]), batch, now.isoformat(), "system", plan
            )
        ids(100_000 + index * ID_BLOCK)  # a step without a plan is worked out here, from its own block
        result = apply(path, credit_runs.credit_run_step(month, current, step_after, batch, now.isoformat(), plan))
        applied.append(result["planned"] if plan is not None else None)
        credited, expired = credited + result["credited_now"], expired + result["expired_now"]
        after = result["last_budget_seq"]
        if result["done"]:
            break
        plan = following
        if plan is None:
            ids(100_000 + (index + 1) * ID_BLOCK)
            plan = credit_runs.plan_step(reading, month, current, after, batch, now.isoformat(), "system")
    reading.close()
    return credited, expired, applied


def run_stepwise(
    path: Path, month: str, current: str, now: datetime, batch: int, ids: Callable[[int], None], after: int = 0
) -> tuple[int, int]:
    """The writer working every step out itself, each step's ids from the same block as above."""
    credited = expired = 0
    for index in itertools.count():
        ids(100_000 + index * ID_BLOCK)
        result = apply(path, credit_runs.credit_run_step(month, current, after, batch, now.isoformat()))
        credited, expired = credited + result["credited_now"], expired + result["expired_now"]
        after = result["last_budget_seq"]
        if result["done"]:
            break
    return credited, expired


@pytest.mark.parametrize(
    ("month", "current", "batch"),
    [("2027-03", "2027-03", 1), ("2027-03", "2027-03", 2), ("2027-03", "2027-03", 500), ("2027-04", "2027-03", 2)],
)
def test_steps_planned_ahead_write_what_the_writer_works_out(
    tmp_path: Path, deterministic_ids: Callable[[int], None], month: str, current: str, batch: int
) -> None:
    deterministic_ids(0)
    history(tmp_path / "history.db")
    now = datetime(2027, 3, 1, 6, 0, tzinfo=UTC) if month == current else datetime(2027, 3, 20, 6, 0, tzinfo=UTC)
    stepwise = copy(tmp_path / "history.db", tmp_path / "stepwise.db")
    planned = copy(tmp_path / "history.db", tmp_path / "planned.db")

    expected = run_stepwise(stepwise, month, current, now, batch, deterministic_ids)
    *got, applied = run_planned(planned, month, current, now, batch, deterministic_ids)

    assert tuple(got) == expected
    assert dump(planned) == dump(stepwise)  # row for row: balances, events, the audit chain, ids
    assert False not in applied  # nothing else wrote meanwhile: no plan was stale
    # The line without its account: only the writer may open it, so its step had no plan (in one
    # step of 500, that is the whole run); the writer applied every other step's plan.
    assert None in applied
    if batch < 500:
        assert True in applied
    assert check_database(str(planned)) == []


def test_a_plan_the_data_has_moved_past_is_worked_out_again(
    tmp_path: Path, deterministic_ids: Callable[[int], None]
) -> None:
    """A charge between the plan and the write (the writer's read differs): the writer works the
    step out itself, and the wallet events carry the balance after the charge. (Steps of one
    budget: the first is the client "full"'s.)"""
    deterministic_ids(0)
    clients = history(tmp_path / "history.db")
    now = datetime(2027, 3, 1, 6, 0, tzinfo=UTC)
    month = "2027-03"
    stale, fresh = (
        copy(tmp_path / "history.db", tmp_path / "stale.db"),
        copy(tmp_path / "history.db", tmp_path / "fresh.db"),
    )
    reading = planner(stale)
    deterministic_ids(100_000)
    plan = credit_runs.plan_step(reading, month, month, 0, 1, now.isoformat(), "system")
    reading.close()
    assert plan is not None
    provider = sqlite3.connect(stale).execute("SELECT id FROM providers").fetchone()[0]
    spend = ChargeCommand(
        provider, "phone-full", 1_000, "home_care", None, IdentityMethod.NATIONAL_ID, national_id_hash="nid-full"
    )
    for path in (stale, fresh):
        deterministic_ids(200_000)
        assert apply(path, charges.charge(spend, LIMITS, now, month))["status"] == "captured"

    deterministic_ids(300_000)
    result = apply(stale, credit_runs.credit_run_step(month, month, 0, 1, now.isoformat(), plan))
    deterministic_ids(300_000)
    expected = apply(fresh, credit_runs.credit_run_step(month, month, 0, 1, now.isoformat()))

    assert result.pop("planned") is False and expected.pop("planned") is False
    assert result == expected
    assert dump(stale) == dump(fresh)
    # The plan would have expired what the charge has since spent; the writer expired the rest.
    line = wallet_account(clients["full"], "home_care")
    planned_expiry = next(row[2] for row in plan.writes.expiries if row[0] == line)
    written_expiry = (
        sqlite3.connect(stale)
        .execute("SELECT amount FROM expiries WHERE account_id = ? AND boundary_month = ?", (line, month))
        .fetchone()[0]
    )
    assert written_expiry == planned_expiry - 1_000 > 0
    assert check_database(str(stale)) == []


def test_a_plan_is_applied_only_for_its_own_actor_and_step(tmp_path: Path) -> None:
    from wallet.storage.port import ACTOR

    history(tmp_path / "history.db")
    now = datetime(2027, 3, 1, 6, 0, tzinfo=UTC).isoformat()
    reading = planner(tmp_path / "history.db")
    plan = credit_runs.plan_step(reading, "2027-03", "2027-03", 0, 1, now, "someone-else")
    reading.close()
    assert plan is not None
    other = copy(tmp_path / "history.db", tmp_path / "other.db")
    assert apply(other, credit_runs.credit_run_step("2027-03", "2027-03", 0, 1, now, plan))["planned"] is False
    token = ACTOR.set("someone-else")
    try:
        same = copy(tmp_path / "history.db", tmp_path / "same.db")
        assert apply(same, credit_runs.credit_run_step("2027-03", "2027-03", 0, 1, now, plan))["planned"] is True
        later = copy(tmp_path / "history.db", tmp_path / "later.db")  # another moment than the plan's
        assert (
            apply(later, credit_runs.credit_run_step("2027-03", "2027-03", 0, 1, now + "x", plan))["planned"] is False
        )
    finally:
        ACTOR.reset(token)
    assert check_database(str(other)) == [] and check_database(str(same)) == []
