"""Schema 3 reads a client's history, statement and charges from its wallet events; before, from the
transactions, postings and charges by client. On a history of every kind of movement (credits in
two months with expiry and carry-over, two lines a client, captures at once, holds confirmed,
approved, declined, voided and lapsed, refunds), the reads of both give the same answers, client
by client, in the same order.

The old queries are kept here as they were (``9f803c5``); they still run on schema 3, by scanning.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.test_credit_run_bulk import LIMITS, apply
from tests.test_history_from_events import rows
from wallet.check import check_database
from wallet.clock import rfc3339
from wallet.ledger.charges import IdentityMethod
from wallet.ledger.errors import OperationError
from wallet.ledger.months import UnusedPolicy
from wallet.storage.port import ChargeCommand, NewBudget, NewClient, NewProvider
from wallet.storage.sql import charges, credit_runs, organizer, statements
from wallet.storage.sql.reads import CLIENT_CHARGES_SQL, HISTORY_SQL
from wallet.storage.sqlite.adapter import migrate

OLD_HISTORY_SQL = (
    "SELECT t.seq, t.id, t.type, t.created_at, t.category, t.charge_id, t.refund_id,"
    " p.amount, p.balance_after, pr.name AS provider_name, t.provider_id"
    " FROM transactions t"
    " JOIN postings p ON p.transaction_id = t.id AND p.account_id LIKE 'wallet:%'"
    " LEFT JOIN providers pr ON pr.id = t.provider_id"
    " WHERE t.client_id = ? AND t.seq < ? ORDER BY t.seq DESC, p.seq DESC LIMIT ?"
)
OLD_BALANCES_BEFORE_SQL = (
    "SELECT a.category, COALESCE(SUM(p.amount), 0) AS balance FROM accounts a"
    " JOIN postings p ON p.account_id = a.id"
    " JOIN transactions t ON t.id = p.transaction_id"
    " WHERE a.client_id = ? AND a.kind = 'wallet' AND t.created_at < ?"
    " GROUP BY a.category"
)
OLD_MOVEMENTS_SQL = (
    "SELECT t.type, a.category, t.provider_id, pr.name AS provider_name,"
    " SUM(p.amount) AS amount, COUNT(*) AS count FROM accounts a"
    " JOIN postings p ON p.account_id = a.id"
    " JOIN transactions t ON t.id = p.transaction_id"
    " LEFT JOIN providers pr ON pr.id = t.provider_id"
    " WHERE a.client_id = ? AND a.kind = 'wallet' AND t.created_at >= ? AND t.created_at < ?"
    " GROUP BY t.type, a.category, t.provider_id, pr.name"
    " ORDER BY t.type, a.category, t.provider_id"
)
OLD_HELD_AT_SQL = (
    "SELECT COALESCE(SUM(amount), 0) FROM charges WHERE client_id = ? AND created_at < ?"
    " AND (captured_at IS NULL OR captured_at >= ?) AND (voided_at IS NULL OR voided_at >= ?)"
)
OLD_CLIENT_CHARGES_SQL = (
    "SELECT c.*, p.name AS provider_name FROM charges c JOIN providers p ON p.id = c.provider_id"
    " WHERE c.client_id = ? AND c.seq < ?"
)
CHARGE_COLUMNS = (
    "id",
    "status",
    "amount",
    "category",
    "method",
    "description",
    "created_at",
    "expires_at",
    "captured_at",
    "voided_at",
    "void_reason",
    "refunded_amount",
    "provider_id",
    "provider_name",
)
START = datetime(2027, 1, 3, 9, 0, tzinfo=UTC)
CATEGORIES = ("home_care", "transport")


def build(path: Path, seed: int) -> tuple[list[str], list[datetime]]:
    """A random history over January and February 2027; the clients, and instants to read at."""
    rng = random.Random(seed)
    migrate(str(path))
    stamp = START.isoformat()
    for code in CATEGORIES:
        apply(path, organizer.create_category(code, code.title(), stamp))
    providers = []
    for name in ("Hoiva Oy", "Kyyti Oy"):
        provider = apply(
            path, organizer.create_provider(NewProvider(name, "2077474-0", "FI2112345600000785", CATEGORIES), stamp)
        )
        apply(path, organizer.set_provider_status(provider["id"], "approved", stamp))
        providers.append(provider["id"])
    clients = []
    for number in range(6):
        client = apply(
            path, organizer.create_client(NewClient(f"c{number}", f"phone-{number}", "cipher", f"nid-{number}"), stamp)
        )
        lines = tuple((code, rng.choice((5_000, 20_000, 40_000))) for code in CATEGORIES[: 1 + number % 2])
        policy = UnusedPolicy.EXPIRE if number % 3 else UnusedPolicy.CARRY_OVER
        apply(path, organizer.create_budget(NewBudget(client["id"], "2027-01", "2027-12", policy, lines), stamp))
        clients.append((client["id"], number, [code for code, _ in lines]))
    instants = []
    now = START
    held: list[tuple[str, str, str]] = []  # charge id, provider, method
    captured: list[tuple[str, str]] = []
    for month, current in (("2027-01", "2027-01"), ("2027-02", "2027-02")):
        now = max(now, datetime.fromisoformat(f"{month}-01T08:00:00+00:00")) + timedelta(minutes=5)
        apply(path, credit_runs.credit_run_step(month, current, 0, 100, now.isoformat()))
        instants.append(now)
        for _ in range(100):
            now += timedelta(minutes=rng.randint(1, 300))
            _client_id, number, codes = rng.choice(clients)
            provider = rng.choice(providers)
            action = rng.random()
            try:
                if action < 0.45:
                    method = rng.choice((IdentityMethod.NATIONAL_ID, IdentityMethod.OTP, IdentityMethod.APP))
                    command = ChargeCommand(
                        provider,
                        f"phone-{number}",
                        rng.randint(1, 3_000),
                        rng.choice(codes),
                        rng.choice((None, "käynti")),
                        method,
                        national_id_hash=f"nid-{number}" if method is IdentityMethod.NATIONAL_ID else None,
                        otp_hash="otp" if method is IdentityMethod.OTP else None,
                        otp_expires_at=None if method is IdentityMethod.NATIONAL_ID else now + timedelta(minutes=10),
                    )
                    made = apply(path, charges.charge(command, LIMITS, now, current))
                    if isinstance(made, dict) and made["status"] == "captured":
                        captured.append((made["id"], provider))
                    elif isinstance(made, dict):
                        held.append((made["id"], provider, method.value))
                elif action < 0.75 and held:
                    charge_id, owner, method = held.pop(rng.randrange(len(held)))
                    choice = rng.random()
                    if choice < 0.2:
                        apply(path, charges.void_charge(owner, charge_id, now))
                    elif choice < 0.3:
                        apply(path, charges.expire_pending(now + timedelta(minutes=30), 100))
                    elif method == "otp":
                        apply(path, charges.confirm_charge(owner, charge_id, "otp", LIMITS, now))
                        captured.append((charge_id, owner))
                    else:
                        ((owner_client,),) = rows(path, "SELECT client_id FROM charges WHERE id = ?", charge_id)
                        approve = rng.random() < 0.7
                        apply(path, charges.answer_charge(owner_client, charge_id, approve, now))
                        if approve:
                            captured.append((charge_id, owner))
                elif captured:
                    charge_id, owner = rng.choice(captured)
                    apply(path, charges.refund(owner, charge_id, rng.randint(1, 200), now))
            except OperationError:
                pass  # refused (insufficient funds, lapsed, refunded in full): changes nothing
            if rng.random() < 0.1:
                instants.append(now + timedelta(seconds=1))
    instants.append(now + timedelta(days=1))
    assert check_database(str(path)) == []
    return [client_id for client_id, _, _ in clients], instants


def read(path: Path, sql: str, *parameters: object) -> list[dict[str, Any]]:
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(sql, parameters)]
    finally:
        connection.close()


def test_history_statements_and_charges_read_the_same_from_events_as_from_the_ledger(tmp_path: Path) -> None:
    compared = {"history": 0, "charges": 0, "figures": 0}
    for seed in range(3):
        path = tmp_path / f"wallet-{seed}.db"
        clients, instants = build(path, seed)
        kinds = {row["type"] for row in read(path, "SELECT DISTINCT type FROM wallet_events")}
        assert kinds == {"credit", "expiry", "hold", "capture", "void", "refund"}, kinds
        for client_id in clients:
            old = read(path, OLD_HISTORY_SQL, client_id, 2**62, 10_000)
            new = read(path, HISTORY_SQL, client_id, 2**62, 10_000)
            assert [{k: v for k, v in row.items() if k != "seq"} for row in new] == [
                {k: v for k, v in row.items() if k != "seq"} for row in old
            ], client_id
            compared["history"] += len(new)
            for status in (None, "pending", "captured", "voided"):
                where = "" if status is None else f" AND c.status = '{status}'"
                old_charges = read(path, OLD_CLIENT_CHARGES_SQL + where + " ORDER BY c.seq DESC", client_id, 2**62)
                new_charges = read(path, CLIENT_CHARGES_SQL + where + " ORDER BY e.seq DESC", client_id, 2**62)
                assert [{k: row[k] for k in CHARGE_COLUMNS} for row in new_charges] == [
                    {k: row[k] for k in CHARGE_COLUMNS} for row in old_charges
                ], (client_id, status)
                compared["charges"] += len(new_charges)
            for start, until in itertools.pairwise(instants):
                begin, end = rfc3339(start), rfc3339(until)
                for old_sql, new_sql, parameters in (
                    (OLD_BALANCES_BEFORE_SQL, statements.BALANCES_BEFORE_SQL, (client_id, end)),
                    (OLD_MOVEMENTS_SQL, statements.MOVEMENTS_SQL, (client_id, begin, end)),
                    (OLD_HELD_AT_SQL, statements.HELD_AT_SQL, (client_id, end, end, end)),
                ):
                    old_rows = rows(path, old_sql, *parameters)
                    assert rows(path, new_sql, *parameters) == old_rows, (client_id, new_sql[:40], begin, end)
                    compared["figures"] += len(old_rows)
    assert compared["history"] > 200 and compared["charges"] > 100 and compared["figures"] > 500, compared
