"""The audit log: every money movement and organizer action, hash-chained; `wallet check` finds
the first broken link."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import World
from wallet.check import check_database
from wallet.ledger.audit import AuditEntry, canonical, verify_chain
from wallet.ledger.errors import Conflict
from wallet.ledger.transactions import Posting
from wallet.storage.sql import audit
from wallet.storage.sql.units import Task, unit_of_work
from wallet.storage.sqlite.adapter import migrate
from wallet.storage.sqlite.writer import connect, thread_writer


def rows(world: World) -> list[dict[str, Any]]:
    return world.records("SELECT * FROM audit_log ORDER BY seq")


async def test_actions_are_recorded_with_who_acted(world: World) -> None:
    client, provider = await world.funded(1_000)
    _, charge = await world.charge(provider, client, 100, method="otp")
    await world.call("POST", f"/v1/charges/{charge['id']}/void", provider["token"], expect=201)
    entries = rows(world)
    actions = [entry["action"] for entry in entries]
    for expected in (
        "category.created",
        "client.created",
        "budget.created",
        "ledger.credit",
        "provider.created",
        "provider.approved",
        "charge.held",
        "charge.voided",
    ):
        assert expected in actions, expected
    by_action = {entry["action"]: entry for entry in entries}
    assert by_action["budget.created"]["actor"] == "admin:admin-cli"
    assert by_action["charge.held"]["actor"] == f"provider:{provider['id']}"
    assert client["phone"] not in "".join(entry["data"] for entry in entries)


async def test_wallet_check_reports_the_first_broken_link(world: World) -> None:
    client, provider = await world.funded(1_000)
    await world.charge(provider, client, 100)
    path = world.service.settings.db
    assert check_database(path) == []
    with world.database() as database:  # an attacker with write access past the triggers
        if database.postgres:
            database.execute("SET session_replication_role = replica")  # triggers off, this session
        else:
            database.execute("DROP TRIGGER audit_log_append_only_update")
        victim = database.execute("SELECT seq FROM audit_log ORDER BY seq LIMIT 1 OFFSET 3")[0][0]
        database.execute("UPDATE audit_log SET data = '{\"forged\":true}' WHERE seq = ?", victim)
    breaches = check_database(path)
    assert breaches == [f"audit entry {victim}: its content does not match its hash"]
    world.check = lambda: None  # type: ignore[method-assign]  # this database is broken on purpose


# The writer remembers the chain's head within a write transaction (wallet/storage/sqlite/audit.py):
# a unit undone after its entry, or a whole batch undone, must leave no link to a vanished entry.


@unit_of_work
def _audited(subject: str, then: str) -> Any:
    def unit(connection: sqlite3.Connection) -> dict[str, str]:
        audit.append(connection, "2027-01-01T00:00:00.000Z", "test.entry", subject)
        if then == "refuse":
            raise Conflict("refused after its entry")
        if then == "bug":
            raise RuntimeError("a bug after its entry")
        if then == "fault":
            raise sqlite3.OperationalError("disk I/O error")
        return {"subject": subject}

    return unit


@pytest.mark.sqlite_only
def test_the_chain_holds_across_undone_units_and_undone_batches(tmp_path: Path) -> None:
    path = str(tmp_path / "wallet.db")
    migrate(path)
    writer = thread_writer(path, queue_max=1, batch_max=8)
    connection = connect(path)

    def run(*units: tuple[str, str]) -> list[Any]:
        batch = [Task(_audited(subject, then), None, "2027-01-01T00:00:00.000Z", None, None) for subject, then in units]
        writer.run_guarded(connection, batch)
        return [task.outcome for task in batch]

    first = run(("a", "ok"), ("b", "refuse"), ("c", "ok"), ("d", "bug"), ("e", "ok"))
    assert isinstance(first[1], Conflict) and isinstance(first[3], RuntimeError)
    run(("f", "ok"), ("g", "fault"))  # a storage fault: the whole batch is undone, f too
    run(("h", "ok"), ("i", "refuse"))
    run(("j", "ok"))
    connection.close()
    entries = rows_of(path)
    assert [entry.subject for entry in entries] == ["a", "c", "e", "h", "j"]
    assert verify_chain(entries) is None
    assert check_database(path) == []


def rows_of(path: str) -> list[AuditEntry]:
    connection = sqlite3.connect(path)
    try:
        return [
            AuditEntry(*row)
            for row in connection.execute(
                "SELECT seq, at, actor, action, subject, data, previous_hash, hash FROM audit_log ORDER BY seq"
            )
        ]
    finally:
        connection.close()


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(
    st.lists(st.tuples(_TEXT, st.integers(min_value=-(10**15), max_value=10**15).filter(bool)), min_size=2, max_size=4),
    st.none() | _TEXT,
    st.none() | _TEXT,
    st.none() | _TEXT,
)
def test_a_ledger_entry_s_data_is_the_canonical_json(
    postings: list[tuple[str, int]], charge_id: str | None, refund_id: str | None, month: str | None
) -> None:
    """``ledger_rows.post`` writes its entry's data directly; it must be what ``canonical`` makes, byte for
    byte, whatever the ids hold, or the hash chain would not verify."""
    expected = canonical(
        {"postings": [list(p) for p in postings], "charge_id": charge_id, "refund_id": refund_id, "month": month}
    )
    written = audit.ledger_data([Posting(account, amount) for account, amount in postings], charge_id, refund_id, month)
    assert written == expected
