"""A client's history, statement and charges are read from its wallet events (schema 3): every
posting on a wallet line has exactly one event with its amount and balance after, every charge
exactly one event it was made with (its hold, or its capture when captured at once), ``wallet
check`` proves both, and the reads find a client's rows by ``wallet_events_by_client`` rather than
scanning.

What this replaced: indexes of transactions by client, of postings by account and of charges by
client, each a random page for every charge to write (versions.py, step 2 → 3; docs/performance.md).
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.test_credit_run_bulk import LIMITS, apply, small_world
from wallet.check import check_database
from wallet.ledger.charges import IdentityMethod
from wallet.storage.port import ChargeCommand
from wallet.storage.sql import charges, events, statements
from wallet.storage.sql.reads import CLIENT_CHARGES_SQL, HISTORY_SQL
from wallet.storage.sqlite.adapter import migrate

NOW = datetime(2027, 1, 10, 10, 0, tzinfo=UTC)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """Two clients credited, one charged twice and refunded once, one charge waiting for its code."""
    path = tmp_path / "wallet.db"
    migrate(str(path))
    provider = {"id": small_world(path, NOW.isoformat(), 2)}
    charged = []
    for amount in (1_234, 2_000):
        charged.append(
            apply(
                path,
                charges.charge(
                    ChargeCommand(
                        provider["id"],
                        "phone-1",
                        amount,
                        "home_care",
                        None,
                        IdentityMethod.NATIONAL_ID,
                        national_id_hash="nid-1",
                    ),
                    LIMITS,
                    NOW,
                    "2027-01",
                ),
            )
        )
    apply(path, charges.refund(provider["id"], charged[0]["id"], 500, NOW))
    apply(
        path,
        charges.charge(
            ChargeCommand(
                provider["id"],
                "phone-0",
                300,
                "home_care",
                None,
                IdentityMethod.OTP,
                otp_hash="otp",
                otp_expires_at=datetime(2027, 1, 10, 10, 10, tzinfo=UTC),
            ),
            LIMITS,
            NOW,
            "2027-01",
        ),
    )
    assert check_database(str(path)) == []
    return path


def rows(path: Path, sql: str, *parameters: object) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def test_every_posting_on_a_wallet_line_has_its_event_and_a_hold_has_none(database: Path) -> None:
    postings = rows(
        database,
        "SELECT p.transaction_id, p.amount, p.balance_after FROM postings p"
        " WHERE p.account_id LIKE 'wallet:%' ORDER BY p.seq",
    )
    carried = rows(
        database,
        "SELECT transaction_id, amount, line_balance FROM wallet_events WHERE transaction_id IS NOT NULL ORDER BY seq",
    )
    assert carried == postings and len(postings) == 5  # two credits, two captures, a refund
    assert rows(database, "SELECT type FROM wallet_events WHERE transaction_id IS NULL") == [("hold",)]


def tampered(database: Path, tmp_path: Path, *statements_: str) -> list[str]:
    copy = tmp_path / "tampered.db"
    shutil.copyfile(database, copy)
    connection = sqlite3.connect(copy, isolation_level=None)
    try:
        connection.execute("DROP TRIGGER wallet_events_append_only_update")
        for statement in statements_:
            connection.execute(statement)
    finally:
        connection.close()
    return check_database(str(copy))


def test_check_names_an_event_whose_amount_differs_from_its_posting(database: Path, tmp_path: Path) -> None:
    (seq, transaction_id) = rows(database, "SELECT seq, transaction_id FROM wallet_events WHERE type = 'refund'")[0]
    breaches = tampered(database, tmp_path, f"UPDATE wallet_events SET amount = amount + 1 WHERE seq = {seq}")
    assert len(breaches) == 2, breaches
    assert f"transaction {transaction_id} has no wallet event with its amount and balance after" in breaches[0]
    assert f"transaction {transaction_id} has a wallet event that matches none of its postings" in breaches[1]
    assert breaches[1].endswith(", home_care, 501, 37266)"), breaches  # 40,000 - 1,234 - 2,000 + 500


def test_check_names_a_posting_without_its_event_and_a_second_event_for_one(database: Path, tmp_path: Path) -> None:
    (seq, transaction_id) = rows(database, "SELECT seq, transaction_id FROM wallet_events WHERE type = 'capture'")[0]
    missing = tampered(
        database,
        tmp_path,
        "DROP TRIGGER IF EXISTS wallet_events_append_only_delete",
        f"DELETE FROM wallet_events WHERE seq = {seq}",
    )
    (charge_id,) = rows(database, f"SELECT charge_id FROM wallet_events WHERE seq = {seq}")[0]
    # The capture of a charge by national id is also the event it was made with.
    assert [breach.split(" (")[0] for breach in missing] == [
        "5 postings on wallet lines but 4 wallet events with a transaction",
        "3 charges but 2 wallet events that make a charge",
        f"transaction {transaction_id} has no wallet event with its amount and balance after",
        f"charge {charge_id} has no wallet event it was made with, of its client and amount",
    ], missing
    doubled = tampered(
        database,
        tmp_path,
        "INSERT INTO wallet_events (client_id, type, category, amount, charge_id,"
        " provider_id, transaction_id, reason, line_balance, line_available, balance, available,"
        f" created_at) SELECT client_id, type, category, amount, charge_id, provider_id, transaction_id,"
        f" reason, line_balance, line_available, balance, available, created_at FROM wallet_events"
        f" WHERE seq = {seq}",
    )
    assert doubled == [
        "5 postings on wallet lines but 6 wallet events with a transaction",
        "3 charges but 4 wallet events that make a charge",
    ], doubled


@pytest.mark.parametrize(
    ("name", "sql", "parameters"),
    [
        ("history", HISTORY_SQL, ("c", 2**62, 51)),
        ("balances", statements.BALANCES_BEFORE_SQL, ("c", "2027-02-01T00:00:00Z")),
        ("movements", statements.MOVEMENTS_SQL, ("c", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z")),
        ("stream", events.EVENTS_AFTER_SQL, ("c", 0, 100)),
        ("charges", CLIENT_CHARGES_SQL + " AND c.status = ? ORDER BY e.seq DESC LIMIT ?", ("c", 2**62, "pending", 51)),
        ("held", statements.HELD_AT_SQL, ("c", "2027-02-01T00:00:00Z", "2027-02-01T00:00:00Z", "2027-02-01T00:00:00Z")),
    ],
)
def test_a_clients_reads_seek_its_events_and_scan_no_table(
    database: Path, name: str, sql: str, parameters: tuple[object, ...]
) -> None:
    plan = [row[3] for row in rows(database, f"EXPLAIN QUERY PLAN {sql}", *parameters)]
    assert plan[0].startswith("SEARCH e USING INDEX wallet_events_by_client (client_id=?"), (name, plan)
    assert not any(step.startswith("SCAN") for step in plan), (name, plan)
    assert any(("transactions" in step) == (name in ("history", "balances", "movements")) for step in plan[1:])


def test_every_charge_has_the_one_event_it_was_made_with(database: Path) -> None:
    made = rows(
        database,
        "SELECT c.id, e.type FROM wallet_events e JOIN charges c ON c.id = e.charge_id"
        " WHERE e.type = 'hold' OR (e.type = 'capture' AND c.method = 'national_id') ORDER BY e.seq",
    )
    assert [kind for _, kind in made] == ["capture", "capture", "hold"]
    assert [charge for charge, _ in made] == [row[0] for row in rows(database, "SELECT id FROM charges ORDER BY seq")]


def test_check_names_a_charge_without_the_event_it_was_made_with(database: Path, tmp_path: Path) -> None:
    (seq, charge_id) = rows(database, "SELECT seq, charge_id FROM wallet_events WHERE type = 'hold'")[0]
    breaches = tampered(
        database,
        tmp_path,
        "DROP TRIGGER IF EXISTS wallet_events_append_only_delete",
        f"DELETE FROM wallet_events WHERE seq = {seq}",
    )
    assert breaches[0] == "3 charges but 2 wallet events that make a charge", breaches
    assert breaches[1].startswith(f"charge {charge_id} has no wallet event it was made with"), breaches
    assert len(breaches) == 2, breaches
    moved = tampered(database, tmp_path, f"UPDATE wallet_events SET amount = -301 WHERE seq = {seq}")
    assert [breach.split(" (")[0] for breach in moved] == [
        f"charge {charge_id} has no wallet event it was made with, of its client and amount",
        f"charge {charge_id} has a wallet event that makes it, of another client or amount",
    ], moved
