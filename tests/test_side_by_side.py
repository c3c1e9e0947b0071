"""Write transactions side by side on PostgreSQL (docs/postgresql-writes.md, ``Dialect.side_by_side``).

A batch of new charges holds the write lock shared, locks its idempotency keys and its clients'
wallet lines, and writes what needs one order under the order lock. The tests hold a transaction
open from outside, as another node's batch would in its reading phase (the write lock shared, a
client's lines locked), and watch in ``pg_stat_activity`` what the node's writer waits for: a charge
on another client commits meanwhile, one on the held line waits for exactly that transaction.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from tests.conftest import OTHER_NATIONAL_ID, World
from tests.pg import RawDatabase
from tests.test_charge_batch import _AT_GATE, _GATE, a_batch_s_round_trips, behind_the_gate, gate
from wallet.ledger.audit import AuditEntry, canonical, link_hash, verify_chain
from wallet.storage.postgres.dialect import (
    CHAINED_AUDIT_SQL,
    CHECK_ACCOUNTS_SQL,
    LOCK_CLIENTS_SQL,
    ORDER_LOCK_SQL,
    REBASED_POSTINGS_SQL,
    SHARED_WRITE_LOCK_SQL,
)
from wallet.storage.sql import charge_batch
from wallet.storage.sql.units import compact_json

# The writer's mode is switched and its figures read here: a writer thread of the test's process.
pytestmark = [pytest.mark.postgres_only, pytest.mark.thread_writer]

DEADLINE_SECONDS = 10.0
T = TypeVar("T")

# This process's writer, when it waits for a lock: its pid, what it waits for, and who holds it.
WAITING_WRITER_SQL = (
    "SELECT pid, wait_event, pg_blocking_pids(pid) FROM pg_stat_activity"
    " WHERE application_name LIKE ? AND wait_event_type = 'Lock'"
)


@pytest.fixture(autouse=True)
def side_by_side(world: World) -> None:
    """``WALLET_POSTGRES_SIDE_BY_SIDE`` on, whatever its default."""
    world.service.storage.writer.side_by_side = True  # type: ignore[attr-defined]


async def until(condition: Callable[[], T | None], what: str) -> T:
    """``condition()`` once it is true, polled without blocking the event loop the service runs on."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {DEADLINE_SECONDS:.0f} s")
        await asyncio.sleep(0.01)


def waiting_writer(watch: RawDatabase) -> tuple[int, str, list[int]] | None:
    rows = watch.execute(WAITING_WRITER_SQL, f"wallet-writer-{os.getpid()}-%")
    return (rows[0][0], rows[0][1], list(rows[0][2])) if rows else None


def hold_client(held: RawDatabase, client_id: str, write_lock: bool = True) -> int:
    """Begin a transaction on ``held`` that holds what another node's batch in its reading phase
    holds: the write lock shared (unless not ``write_lock``) and the client's lock
    (``SideBySide.lock_clients``); its pid."""
    held.execute("BEGIN")
    if write_lock:
        held.execute(SHARED_WRITE_LOCK_SQL)
    held.execute(LOCK_CLIENTS_SQL, json.dumps([client_id]))
    return int(held.execute("SELECT pg_backend_pid()")[0][0])


async def two_clients(world: World) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    first, provider = await world.funded(1_000)
    second = await world.client(phone="+358401112231")
    await world.budget(second["id"], {"home_care": 1_000})
    await world.credit()
    return first, second, provider


async def test_a_charge_on_another_client_commits_while_a_client_is_held_and_one_on_it_waits(world: World) -> None:
    held_client, free_client, provider = await two_clients(world)
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    with world.database() as held, world.database() as watch:
        held_pid = hold_client(held, held_client["id"])
        # Beside the held transaction: the write lock is not exclusive, the other client is free.
        status, free_charge = await asyncio.wait_for(world.charge(provider, free_client, 300), DEADLINE_SECONDS)
        assert status == 201 and free_charge["status"] == "captured", free_charge
        waiting = asyncio.create_task(world.charge(provider, held_client, 400))
        _, event, blockers = await until(lambda: waiting_writer(watch), "the charge on the held client waits")
        assert event == "advisory" and blockers == [held_pid]  # for the client, not the write lock
        assert writer.left_over == 1  # tried once and left for the next batch, which waits
        assert not waiting.done()
        held.execute("COMMIT")
        status, held_charge = await asyncio.wait_for(waiting, DEADLINE_SECONDS)
        assert status == 201 and held_charge["status"] == "captured", held_charge
    assert (await world.wallet(free_client))["available"] == 700
    assert (await world.wallet(held_client))["available"] == 600
    assert writer.in_order_reruns == 0 and writer.left_over == 1


async def test_a_batch_leaves_a_held_client_s_charges_for_the_next_and_commits_the_rest(
    world: World,
) -> None:
    """One batch with charges of a client another writer holds and of a free one: the free one's
    commit without waiting; the held one's, in their order, go to the next batch, which waits for
    the client and then sees each of them (no overspending)."""
    held_client, free_client, provider = await two_clients(world)
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    free_answered = asyncio.Event()

    async def free(amount: int) -> tuple[int, Any]:
        answer = await world.charge(provider, free_client, amount)
        free_answered.set()
        return answer

    with world.database() as held, world.database() as watch:
        # The client's lock alone: the batch's gate, a unit of its own, takes the write lock exclusively.
        held_pid = hold_client(held, held_client["id"], write_lock=False)
        burst = [
            world.charge(provider, held_client, 400, key="a"),
            free(300),
            world.charge(provider, held_client, 400, key="b"),
            world.charge(provider, held_client, 400, key="c"),
        ]
        batch = asyncio.create_task(behind_the_gate(world, burst, in_order=True))
        await asyncio.wait_for(free_answered.wait(), DEADLINE_SECONDS)
        _, event, blockers = await until(lambda: waiting_writer(watch), "the held client's charges wait")
        assert event == "advisory" and blockers == [held_pid]
        assert not batch.done() and writer.left_over == 3
        held.execute("ROLLBACK")
        answers = await asyncio.wait_for(batch, DEADLINE_SECONDS)
    assert [status for status, _ in answers] == [201, 201, 201, 402], answers  # 1,000: two of 400, in order
    assert (await world.wallet(free_client))["available"] == 700
    assert (await world.wallet(held_client))["available"] == 200
    assert writer.in_order_reruns == 0 and writer.left_over == 3
    world.check()


async def test_a_charge_left_over_as_the_writer_stops_is_still_answered(world: World) -> None:
    """The writer takes its stop in the same batch as a charge it then leaves over (its client held
    by another writer): it runs the left-over charge before it stops, so the caller is answered."""
    held_client, _, provider = await two_clients(world)
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    _GATE.clear()
    _AT_GATE.clear()
    with world.database() as held, world.database() as watch:
        held_pid = hold_client(held, held_client["id"], write_lock=False)  # the gate takes it exclusively
        gate_answer = asyncio.ensure_future(writer.submit(gate(), None, "now"))
        try:
            assert await asyncio.to_thread(_AT_GATE.wait, DEADLINE_SECONDS)
            charge = asyncio.create_task(world.charge(provider, held_client, 400))
            await until(lambda: writer.queue_depth == 1, "the charge queued behind the gate")
            stopping = asyncio.create_task(writer.stop())
            await until(lambda: writer.queue_depth == 2, "the stop queued behind the charge")
        finally:
            _GATE.set()
        _, event, blockers = await until(lambda: waiting_writer(watch), "the left-over charge waits for its client")
        assert event == "advisory" and blockers == [held_pid] and writer.left_over == 1
        held.execute("ROLLBACK")
        status, body = await asyncio.wait_for(charge, DEADLINE_SECONDS)
        await asyncio.wait_for(stopping, DEADLINE_SECONDS)
    assert (await gate_answer).value == {"opened": True}
    assert status == 201 and body["status"] == "captured", body


async def test_a_batch_takes_the_order_lock_only_in_the_round_trip_that_commits(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three round trips between ``BEGIN`` and ``COMMIT``: the shared lock with the key locks and the
    first reads, the line locks with the second reads, then the order lock, every write, the check
    and the ``COMMIT`` in one pipeline, so the order lock is held for no round trip. The database
    works out what the order puts in the rows: the payable account's balance after each posting
    and the audit chain's links, continuing what committed before."""
    anna, provider = await world.funded(1_000)
    status, _ = await world.charge(provider, anna, 100)  # a batch of its own: the payable account at 100
    assert status == 201
    results, trips = await a_batch_s_round_trips(
        world, monkeypatch, [world.charge(provider, anna, 100) for _ in range(4)]
    )

    assert [status for status, _ in results] == [201] * 4
    assert len(trips) == 3, trips
    assert SHARED_WRITE_LOCK_SQL in trips[0]
    assert trips[-1][0] == ORDER_LOCK_SQL and trips[-1][-1] == "COMMIT"
    assert {REBASED_POSTINGS_SQL, CHAINED_AUDIT_SQL, CHECK_ACCOUNTS_SQL} <= set(trips[-1])
    assert not any(ORDER_LOCK_SQL in sent for sent in trips[:-1])
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    assert writer.in_order_reruns == 0
    payable = f"payable:{provider['id']}"
    postings = world.sql("SELECT balance_after FROM postings WHERE account_id = ? ORDER BY seq", payable)
    assert postings == [(100,), (200,), (300,), (400,), (500,)]
    assert world.sql("SELECT balance FROM accounts WHERE id = ?", payable) == [(500,)]
    world.check()  # the audit chain among the rest


# Text the chain's hash must treat as Python does: non-ASCII, quotes, backslashes, controls, empty.
AWKWARD = ["", "Åsa Ärjänne", 'quote " and \\ backslash', "new\nline\ttab", "\u001f", "€ 𝄞 👵", "'; DROP"]


async def test_the_database_links_audit_entries_as_link_hash_does(world: World) -> None:
    """``SideBySide.chained_audit`` hashes in SQL what ``link_hash`` hashes in Python: every entry,
    whatever its text, links to the head before it, and ``wallet check`` verifies the chain."""
    await world.funded(1_000)  # a chain with entries already: the statement links to its head
    entries = [
        ["2026-12-07T10:00:00.000000Z", actor, f"test.{n}", subject, canonical({"text": text, "n": n})]
        for n, (actor, subject, text) in enumerate(zip(AWKWARD, reversed(AWKWARD), AWKWARD[1:] + AWKWARD[:1]))
    ]
    with world.database() as database:
        head = database.execute("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")[0][0]
        database.execute(CHAINED_AUDIT_SQL, compact_json(entries))
        rows = database.execute(
            "SELECT seq, at, actor, action, subject, data, previous_hash, hash FROM audit_log ORDER BY seq"
        )
    written = rows[-len(entries) :]
    assert [list(row[1:6]) for row in written] == entries
    assert written[0][6] == head
    for row in written:
        assert row[7] == link_hash(row[6], *row[1:6])
    assert verify_chain(AuditEntry(*row) for row in rows) is None
    world.check()


async def test_charges_waiting_on_a_held_line_see_each_other_and_never_overspend(world: World) -> None:
    held_client, _, provider = await two_clients(world)
    with world.database() as held, world.database() as watch:
        held_pid = hold_client(held, held_client["id"])
        first = asyncio.create_task(world.charge(provider, held_client, 400, key="first"))
        await until(lambda: waiting_writer(watch), "the charge waits for the held line")
        assert waiting_writer(watch) is not None and waiting_writer(watch)[2] == [held_pid]  # type: ignore[index]
        more = [asyncio.create_task(world.charge(provider, held_client, 400, key=f"more-{n}")) for n in range(2)]
        held.execute("ROLLBACK")
        answers = [await asyncio.wait_for(task, DEADLINE_SECONDS) for task in (first, *more)]
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201, 201, 402], answers
    assert (await world.wallet(held_client))["available"] == 200


async def test_a_side_by_side_batch_whose_balances_are_not_as_worked_out_does_not_commit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check sent with the COMMIT (``Dialect.check_accounts``) finds a moved account not as
    the batch worked it out: nothing of the batch commits, and it runs again holding the lock alone."""
    client, provider = await world.funded(1_000)
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    real_expected = charge_batch._expected_accounts
    wrong: list[str] = []

    def one_cent_off_once(moved: dict[str, Any]) -> str:
        if wrong:
            return real_expected(moved)
        account_id, account = next(iter(moved.items()))
        wrong.append(account_id)
        account.balance += 1
        try:
            return real_expected(moved)
        finally:
            account.balance -= 1

    monkeypatch.setattr(charge_batch, "_expected_accounts", one_cent_off_once)
    status, charge = await world.charge(provider, client, 400, key="cut")
    assert status == 201 and len(wrong) == 1 and writer.in_order_reruns == 1
    status, replay = await world.charge(provider, client, 400, key="cut")
    assert status == 201 and replay["id"] == charge["id"]
    assert world.sql("SELECT COUNT(*) FROM charges") == [(1,)]
    assert world.sql("SELECT COUNT(*) FROM idempotency_keys WHERE outcome = ''") == [(0,)]
    assert (await world.wallet(client))["available"] == 600


async def test_a_failed_identity_check_in_a_side_by_side_batch_is_counted_as_alone(world: World) -> None:
    client, provider = await world.funded(1_000)
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    status, body = await world.charge(provider, client, 400, national_id=OTHER_NATIONAL_ID, key="wrong")
    assert body["code"] == "identity_check_failed", (status, body)
    assert writer.in_order_reruns == 1  # the batch met a failed check: run again with the lock alone
    assert world.sql("SELECT COUNT(*) FROM identity_failures") == [(1,)]
    status, again = await world.charge(provider, client, 400, national_id=OTHER_NATIONAL_ID, key="wrong")
    assert again["code"] == "identity_check_failed", (status, again)
    assert world.sql("SELECT COUNT(*) FROM identity_failures") == [(1,)]  # a replay, not a second failure


async def test_a_hold_sweep_with_nothing_due_writes_nothing(world: World) -> None:
    client, provider = await world.funded(1_000)
    status, held = await world.charge(provider, client, 400, method="otp")
    assert status == 201 and held["status"] == "pending", held
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    batches = writer.batches
    assert await world.service.sweep_expired_holds() == 0  # the hold has not expired
    assert writer.batches == batches  # no write, so no exclusive write lock taken every few seconds


async def test_with_side_by_side_off_a_charge_waits_for_the_write_lock(world: World) -> None:
    held_client, free_client, provider = await two_clients(world)
    world.service.storage.writer.side_by_side = False  # type: ignore[attr-defined]
    with world.database() as held, world.database() as watch:
        held_pid = hold_client(held, held_client["id"])
        waiting = asyncio.create_task(world.charge(provider, free_client, 300))
        _, event, blockers = await until(lambda: waiting_writer(watch), "the charge waits for the write lock")
        assert event == "advisory" and blockers == [held_pid]
        held.execute("COMMIT")
        status, charge = await asyncio.wait_for(waiting, DEADLINE_SECONDS)
        assert status == 201 and charge["status"] == "captured", charge
