"""Charges by national id run together (``charge_batch``) give what running them one by one gives.

The same batch of charges, the writer's own batch code, two copies of one database: once with
the batch runner, once with every unit in its own savepoint (``Writer.batch_runners = False``),
with the same ids. Every outcome must be the same, and every table a charge touches the same, row
for row, in the same order: charges, transactions, postings (with ``balance_after``), balances,
wallet events, the hash-chained audit log, idempotency keys and failed identity checks. The batch
holds every case the runner meets or hands back: plain captures, several on one line until it is
spent, refusals of every kind, an idempotency key stored before and one used twice in the batch,
a national id that does not match, a wallet at its failure limit, charges held for a code or an
approval beside captures on the same line.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import World
from tests.test_credit_run_bulk import apply, copy, reference_step, run_month
from wallet.check import check_database
from wallet.ledger.charges import IdentityMethod
from wallet.ledger.errors import OperationError
from wallet.ledger.months import UnusedPolicy
from wallet.storage.port import ChargeCommand, Idempotency, Limits, NewBudget, NewClient, NewProvider, Written
from wallet.storage.postgres.connection import PostgresConnection
from wallet.storage.postgres.dialect import CHECK_ACCOUNTS_SQL, TRY_WRITE_LOCK_SQL
from wallet.storage.sql import charge_batch, charges
from wallet.storage.sql import organizer as organizer_units
from wallet.storage.sql.units import Task, Unit, compact_json, unit_of_work
from wallet.storage.sql.writer import Writer
from wallet.storage.sqlite.adapter import migrate
from wallet.storage.sqlite.writer import connect, thread_writer

LIMITS = Limits(
    identity_failures_max=3,
    identity_failures_window_seconds=900,
    provider_identity_failures_max=50,
    otp_max_attempts=5,
    login_code_max_attempts=5,
    login_requests_max=5,
    login_requests_window_seconds=900,
)
NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
MONTH = "2027-03"
TABLES = (
    "charges",
    "transactions",
    "postings",
    "accounts",
    "wallet_events",
    "audit_log",
    "idempotency_keys",
    "identity_failures",
)


def organizer(path: Path) -> dict[str, str]:
    """Clients with budgets credited for March; an approved provider and one still pending."""
    migrate(str(path))
    now = NOW.replace(day=1).isoformat()
    apply(path, organizer_units.create_category("home_care", "Kotihoito", now))
    apply(path, organizer_units.create_category("transport", "Kuljetus", now))
    names: dict[str, str] = {}
    provider = apply(
        path,
        organizer_units.create_provider(
            NewProvider("Hoiva Oy", "2077474-0", "FI2112345600000785", ("home_care",)), now
        ),
    )
    apply(path, organizer_units.set_provider_status(provider["id"], "approved", now))
    names["provider"] = provider["id"]
    names["pending"] = apply(
        path,
        organizer_units.create_provider(NewProvider("Uusi Oy", "1572860-0", "FI2112345600000785", ("home_care",)), now),
    )["id"]
    for name in ("anna", "bert", "cecilia", "dora", "eino", "locked"):
        names[name] = apply(
            path, organizer_units.create_client(NewClient(name, f"phone-{name}", f"cipher-{name}", f"nid-{name}"), now)
        )["id"]
        apply(
            path,
            organizer_units.create_budget(
                NewBudget(
                    names[name],
                    "2027-01",
                    "2027-12",
                    UnusedPolicy.CARRY_OVER,
                    (("home_care", 10_000), ("transport", 3_000)),
                ),
                now,
            ),
        )
    names["nobudget"] = apply(
        path, organizer_units.create_client(NewClient("x", "phone-nobudget", "cipher-x", "nid-x"), now)
    )["id"]
    run_month(path, reference_step, MONTH, MONTH, NOW.replace(day=1), batch=10)
    # The locked wallet: failed checks up to the limit, inside the window.
    connection = sqlite3.connect(path)
    with connection:
        for minute in range(LIMITS.identity_failures_max):
            at = (NOW - timedelta(minutes=5 - minute)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            connection.execute(
                "INSERT INTO identity_failures (client_id, provider_id, method, at) VALUES (?, ?, ?, ?)",
                (names["locked"], names["provider"], "national_id", at),
            )
    connection.close()
    return names


def charge(
    names: dict[str, str],
    client: str,
    amount: int,
    n: int,
    *,
    category: str = "home_care",
    provider: str = "provider",
    national_id: str | None = None,
    method: IdentityMethod = IdentityMethod.NATIONAL_ID,
    key: str | None = "own",
    body: str = "",
) -> Task:
    """The task the writer gets for a charge; ``key``: ``own`` for a key of its own, None for none."""
    now = NOW + timedelta(milliseconds=n)
    command = ChargeCommand(
        names[provider],
        f"phone-{client}",
        amount,
        category,
        f"visit {n}",
        method,
        national_id_hash=(national_id or f"nid-{client}") if method is IdentityMethod.NATIONAL_ID else None,
        otp_hash="code" if method is IdentityMethod.OTP else None,
        otp_expires_at=now + timedelta(minutes=10) if method is not IdentityMethod.NATIONAL_ID else None,
    )
    idempotency = None
    if key is not None:
        idempotency = Idempotency(
            f"provider:{names[provider]}", f"key-{n}" if key == "own" else key, f"fingerprint-{amount}-{client}{body}"
        )
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return Task(
        charges.charge(command, LIMITS, now, MONTH), idempotency, stamp, None, None, f"provider:{names[provider]}"
    )


def batch(names: dict[str, str]) -> list[Task]:
    return [
        charge(names, "anna", 1_000, 1),
        charge(names, "bert", 2_500, 2),
        charge(names, "anna", 4_000, 3),  # the same line again
        charge(names, "anna", 5_001, 4),  # more than is left on it: refused
        charge(names, "anna", 5_000, 5),  # the rest of it, exactly
        charge(names, "cecilia", 700, 6, key=None),  # no idempotency key
        charge(names, "cecilia", 300, 7, category="transport"),  # a category the provider is not approved for
        charge(names, "dora", 100, 8, provider="pending"),  # a provider not approved
        charge(names, "nobody", 100, 9),  # no such wallet
        charge(names, "nobudget", 100, 10),  # no budget for the category
        charge(names, "bert", 1_000, 11, key="before"),  # a key stored before the batch: replayed
        charge(names, "bert", 1_500, 12, key="twice"),
        charge(names, "bert", 1_500, 13, key="twice"),  # the same key again in the batch: replayed
        charge(names, "bert", 1_600, 14, key="twice", body="other"),  # ... with another request: refused
        charge(names, "dora", 2_000, 15),
        charge(names, "eino", 100, 16, national_id="nid-wrong"),  # does not match: a failed check recorded
        charge(names, "eino", 200, 17),  # counts that failure, below the limit: captured
        charge(names, "locked", 100, 18),  # at the limit: locked out
        charge(names, "dora", 300, 19, method=IdentityMethod.OTP),  # by code: held
        charge(names, "dora", 400, 20),  # captured beside the hold on its line
        charge(names, "cecilia", 9_000, 21),
        charge(names, "eino", 300, 22, method=IdentityMethod.APP),  # held for the client's approval
        charge(names, "anna", 100, 23, method=IdentityMethod.OTP),  # nothing left to hold: refused
        charge(names, "dora", 7_300, 24),  # exactly what the hold and the captures left available
    ]


def run(path: Path, tasks: list[Task], *, together: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], int]:
    """Run ``tasks`` as one batch of the writer; the outcomes and the number of statements it ran."""
    monkeypatch.setattr(Writer, "batch_runners", together)
    writer = thread_writer(str(path), queue_max=100, batch_max=100)
    connection = connect(str(path))
    statements = 0

    def count(_: str) -> None:
        nonlocal statements
        statements += 1

    # The receipts' outbox trigger adds a row to each capture's event insert, not a statement the
    # writer sends; sqlite3 traces each firing as the outer statement again, so it is left out of the
    # count and its rows written after (as it would have, for `wallet check`).
    trigger = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'wallet_events_receipt'").fetchone()[0]
    connection.execute("DROP TRIGGER wallet_events_receipt")

    connection.set_trace_callback(count)
    try:
        writer._run_batch(connection, tasks)
    finally:
        connection.set_trace_callback(None)
        connection.execute(
            "INSERT OR IGNORE INTO receipts (event_seq, client_id, created_at) SELECT seq, client_id, created_at"
            " FROM wallet_events WHERE type IN ('capture', 'refund', 'void')"
        )
        connection.execute(trigger)
        connection.close()
    return [describe(task.outcome) for task in tasks], statements


def describe(outcome: Any) -> Any:
    if isinstance(outcome, Written):
        return ("written", outcome.value, outcome.replayed)
    if isinstance(outcome, OperationError):
        return ("refused", type(outcome).__name__, outcome.to_record())
    return ("failed", repr(outcome))


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    connection = sqlite3.connect(path)
    try:
        return {table: connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() for table in TABLES}
    finally:
        connection.close()


@pytest.fixture
def prepared(tmp_path: Path, deterministic_ids: Callable[[int], None]) -> tuple[Path, Path, dict[str, str]]:
    deterministic_ids(0)
    names = organizer(tmp_path / "start.db")
    stored = charge(names, "bert", 1_000, 11, key="before")
    apply(tmp_path / "start.db", charges.charge(*stored.unit.args))  # type: ignore[attr-defined]
    connection = sqlite3.connect(tmp_path / "start.db")
    with connection:  # the key as the writer keeps it: a replay answers from it
        connection.execute(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, outcome, created_at) VALUES (?, ?, ?, ?, ?)",
            (
                stored.idempotency.scope,
                stored.idempotency.key,
                stored.idempotency.fingerprint,  # type: ignore[union-attr]
                '{"value":{"id":"ch_stored"}}',
                stored.created_at,
            ),
        )
    connection.close()
    return copy(tmp_path / "start.db", tmp_path / "one.db"), copy(tmp_path / "start.db", tmp_path / "bulk.db"), names


def test_charges_run_together_give_what_one_by_one_gives(
    prepared: tuple[Path, Path, dict[str, str]],
    deterministic_ids: Callable[[int], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, together, names = prepared
    deterministic_ids(1_000)
    expected, one_by_one_statements = run(one, batch(names), together=False, monkeypatch=monkeypatch)
    deterministic_ids(1_000)
    got, statements = run(together, batch(names), together=True, monkeypatch=monkeypatch)

    assert got == expected
    assert dump(together) == dump(one)
    kinds = [outcome[0] if outcome[0] == "written" else outcome[1] for outcome in expected]
    assert kinds.count("written") == 15  # 11 captured, 2 held (by code, for approval), 2 replays
    assert {
        "InsufficientFunds",
        "ProviderNotApproved",
        "NotFound",
        "CategoryNotAllowed",
        "IdempotencyKeyReuse",
        "IdentityCheckFailed",
        "RateLimited",
    } <= set(kinds)
    assert statements < one_by_one_statements * 3 / 4  # the runs between the hand-backs went together
    assert check_database(str(together)) == []


def test_a_run_that_fails_to_write_runs_one_by_one(
    prepared: tuple[Path, Path, dict[str, str]],
    deterministic_ids: Callable[[int], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug while writing the run (here: after its rows are in) undoes the run's rows and
    runs its charges one by one, each in its savepoint: nothing of the failed try stays."""
    one, together, names = prepared
    deterministic_ids(1_000)
    expected, _ = run(one, batch(names), together=False, monkeypatch=monkeypatch)
    check_moved = charge_batch._check_moved

    def failing(after: Any, moved: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(charge_batch, "_check_moved", failing)
    deterministic_ids(1_000)
    got, _ = run(together, batch(names), together=True, monkeypatch=monkeypatch)
    monkeypatch.setattr(charge_batch, "_check_moved", check_moved)

    # The same outcomes and the same money; only the ids differ (the failed try drew some).
    assert [shape(outcome) for outcome in got] == [shape(outcome) for outcome in expected]
    after, wanted = dump(together), dump(one)
    assert after["accounts"] == wanted["accounts"]
    assert {table: len(rows) for table, rows in after.items()} == {table: len(rows) for table, rows in wanted.items()}
    assert check_database(str(together)) == []


def shape(outcome: Any) -> Any:
    if outcome[0] == "written":
        value = outcome[1]
        return ("written", value.get("amount"), value.get("status"), outcome[2])
    return outcome[:2]


def test_plain_captures_take_a_few_statements_for_the_whole_run(
    prepared: tuple[Path, Path, dict[str, str]],
    deterministic_ids: Callable[[int], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, together, names = prepared
    clients = ["anna", "bert", "cecilia", "dora", "eino"]

    def tasks():
        return [charge(names, clients[n % 5], 100, n) for n in range(40)]

    deterministic_ids(1_000)
    expected, one_by_one_statements = run(one, tasks(), together=False, monkeypatch=monkeypatch)
    deterministic_ids(1_000)
    got, statements = run(together, tasks(), together=True, monkeypatch=monkeypatch)

    assert got == expected
    assert dump(together) == dump(one)
    assert one_by_one_statements >= 40 * 14
    assert statements <= 40  # BEGIN, the run's reads, its multi-row writes, one update an account, COMMIT


# Through the API, on both adapters: a burst held back until it is all queued, so that it runs as
# one batch, which the runner takes together.

_GATE = threading.Event()
_AT_GATE = threading.Event()  # the writer has taken the gate unit: what is queued now waits behind it


@unit_of_work
def gate() -> Unit:
    """A unit that holds the writer until the test lets it go (bounded: a test never hangs)."""

    def unit(connection: sqlite3.Connection) -> dict[str, bool]:
        _AT_GATE.set()
        return {"opened": _GATE.wait(timeout=30)}

    return unit


async def behind_the_gate(
    world: World, burst: list[Awaitable[tuple[int, Any]]], in_order: bool = False
) -> list[tuple[int, Any]]:
    """The answers to ``burst``, sent while the writer holds a gate unit and let go once all of it is
    queued: the writer takes the burst as one batch (``in_order``: queued in the burst's order)."""
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    _GATE.clear()
    _AT_GATE.clear()
    held = asyncio.ensure_future(writer.submit(gate(), None, "now"))

    async def queued(depth: int) -> None:
        for _ in range(3000):  # until that many requests wait behind the gate
            if writer.queue_depth >= depth:
                break
            await asyncio.sleep(0.01)
        assert writer.queue_depth == depth

    try:
        assert await asyncio.to_thread(_AT_GATE.wait, 30)
        if in_order:
            sent = []
            for depth, each in enumerate(burst, start=1):
                sent.append(asyncio.ensure_future(each))
                await queued(depth)
            answers = asyncio.gather(*sent)
        else:
            answers = asyncio.gather(*burst)
            await queued(len(burst))
    finally:
        _GATE.set()
    assert (await held).value == {"opened": True}
    return list(await answers)


def counted_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """From now on, each run of charges the batch runner takes together: its size, and whether it
    ends its batch (its writes go with the ``COMMIT``)."""
    runs: list[tuple[int, bool]] = []
    run_together = charge_batch.ChargeBatch.run

    def counted(
        self: charge_batch.ChargeBatch,
        connection: sqlite3.Connection,
        tasks: list[Task],
        run_one: Any,
        ends_batch: bool = False,
    ) -> None:
        runs.append((len(tasks), ends_batch))
        run_together(self, connection, tasks, run_one, ends_batch)

    monkeypatch.setattr(charge_batch.ChargeBatch, "run", counted)
    return runs


@pytest.mark.thread_writer  # the gate and the count of runs are in this process
async def test_a_burst_of_charges_runs_together_and_keeps_every_rule(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = counted_runs(monkeypatch)
    anna, provider = await world.funded(1_000)
    bert = await world.client()
    await world.budget(bert["id"], {"home_care": 500})
    await world.credit()
    burst = [world.charge(provider, anna, 100) for _ in range(12)]  # 10 fit on the line
    burst += [
        world.charge(provider, bert, 200),
        world.charge(provider, bert, 200, national_id="010101-123N"),
        world.charge(provider, bert, 50, key="twice"),
        world.charge(provider, bert, 50, key="twice"),
        world.charge(provider, bert, 100, method="otp"),
    ]
    results = await behind_the_gate(world, burst)

    statuses = [status for status, _ in results]
    assert statuses[:12].count(201) == 10 and statuses[:12].count(402) == 2
    assert statuses[12] == 201 and statuses[14] == statuses[15] == 201
    assert results[13] == (422, results[13][1]) and results[13][1]["code"] == "identity_check_failed"
    assert results[14][1]["id"] == results[15][1]["id"]  # the same key: one charge, answered twice
    assert results[16][0] == 201 and results[16][1]["status"] == "pending"  # held for the code
    assert (await world.wallet(anna))["available"] == 0
    wallet = await world.wallet(bert)
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (500 - 200 - 50, 100, 500 - 200 - 50 - 100)
    assert max(size for size, _ in runs) >= 2  # the burst (its national-id charges) ran together


@pytest.mark.thread_writer  # the gate and the count of runs are in this process
async def test_receipt_marks_queued_between_charges_leave_the_charges_one_run_that_ends_the_batch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receipts' marks touch nothing a charge reads, so they run first: the charges queued
    around them stay one run, the batch's last (on PostgreSQL its writes go with the COMMIT)."""
    anna, provider = await world.funded(1_000)
    for _ in range(3):
        assert (await world.charge(provider, anna, 10))[0] == 201
    earlier = [row[0] for row in world.sql("SELECT event_seq FROM receipts WHERE sent_at IS NULL ORDER BY event_seq")]
    assert len(earlier) == 3
    storage = world.service.storage

    async def marked(seq: int) -> tuple[int, Any]:
        await storage.mark_receipts_sent([seq], world.clock.now())
        return 0, seq

    runs = counted_runs(monkeypatch)
    burst: list[Awaitable[tuple[int, Any]]] = []
    for seq in earlier:
        burst += [world.charge(provider, anna, 100), marked(seq)]
    burst.append(world.charge(provider, anna, 100))
    results = await behind_the_gate(world, burst, in_order=True)

    assert [status for status, _ in results] == [201, 0, 201, 0, 201, 0, 201]
    assert runs == [(4, True)]  # the four charges together, and last
    assert (
        world.sql("SELECT count(*) FROM receipts WHERE event_seq IN (?, ?, ?) AND sent_at IS NOT NULL", *earlier)[0][0]
        == 3
    )


@pytest.mark.parametrize("where", ["reading", "working out"])
def test_a_bug_in_the_run_hands_its_charges_to_the_one_by_one_path(
    prepared: tuple[Path, Path, dict[str, str]],
    deterministic_ids: Callable[[int], None],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """A bug while the run reads, or while it works out one charge, fails nothing: those charges go
    the one-by-one way, in order, with the same outcomes and the same rows as with no runner."""
    one, together, names = prepared
    deterministic_ids(1_000)
    expected, _ = run(one, batch(names), together=False, monkeypatch=monkeypatch)
    calls = itertools.count()
    if where == "reading":
        read = charge_batch._read

        def failing_read(connection: sqlite3.Connection, tasks: list[Task]) -> Any:
            if next(calls) == 0:
                raise RuntimeError("a bug while reading")
            return read(connection, tasks)

        monkeypatch.setattr(charge_batch, "_read", failing_read)
    else:
        work_out = charge_batch._work_out

        def failing_capture(*arguments: Any) -> Any:
            if next(calls) == 2:  # the third charge worked out: anna's second
                raise RuntimeError("a bug while working out a charge")
            return work_out(*arguments)

        monkeypatch.setattr(charge_batch, "_work_out", failing_capture)
    deterministic_ids(1_000)
    got, _ = run(together, batch(names), together=True, monkeypatch=monkeypatch)

    assert next(calls) > (0 if where == "reading" else 3)  # the fault was met (and, working out, passed)
    assert got == expected
    assert dump(together) == dump(one)
    assert check_database(str(together)) == []


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(_JSON_VALUES)
def test_an_outcome_is_kept_as_json_dumps_with_compact_separators_writes_it(value: Any) -> None:
    """``compact_json`` (its C encoder built once) gives ``json.dumps``'s text."""
    assert compact_json(value) == json.dumps(value, separators=(",", ":"))
    assert compact_json({"value": {"id": "ch_1", "amount": 5, "description": "caf\u00e9", "x": None}}) == (
        '{"value":{"id":"ch_1","amount":5,"description":"caf\\u00e9","x":null}}'
    )


@unit_of_work
def nothing() -> Unit:
    """A unit that writes nothing: after a run of charges, the run no longer ends the batch."""

    def unit(connection: sqlite3.Connection) -> dict[str, bool]:
        return {"done": True}

    return unit


@pytest.mark.thread_writer  # the gate and the patched statements are in this process
@pytest.mark.parametrize("run_ends_batch", [True, False], ids=["run-ends-batch", "unit-after-run"])
async def test_a_statement_the_database_refuses_in_the_run_s_writes_undoes_them_alone(
    world: World, monkeypatch: pytest.MonkeyPatch, run_ends_batch: bool
) -> None:
    """The run's writes go to the database together (one pipeline on PostgreSQL); when the database
    refuses one of them (here a statement appended after the rows: a broken CHECK), nothing of them
    stays and the charges run one by one: each answered once, the money moved once, every invariant
    kept. Where another unit follows the run, the run's savepoint undoes its rows; where the run
    ends the batch on PostgreSQL its writes went with the ``COMMIT``, so the ``COMMIT`` fails and the
    writer runs the whole batch again one unit at a time."""
    anna, provider = await world.funded(1_000)
    failed: list[int] = []
    statements = charge_batch._statements

    def refused_once(connection: Any, state: Any, writes: Any, **options: bool) -> Any:
        built, moves_at, moved = statements(connection, state, writes, **options)
        if not failed:
            failed.append(len(writes.answered))
            built = [*built, ("UPDATE accounts SET held = balance + 1 WHERE kind = 'wallet'", ())]
        return built, moves_at, moved

    monkeypatch.setattr(charge_batch, "_statements", refused_once)
    writer = world.service.storage.writer  # type: ignore[attr-defined]

    async def written_nothing() -> tuple[int, Any]:
        for _ in range(3000):  # queued behind the charges, which come through HTTP first
            if writer.queue_depth >= 6:
                break
            await asyncio.sleep(0.01)
        return 200, (await writer.submit(nothing(), None, "now")).value

    burst = [world.charge(provider, anna, 100) for _ in range(6)]
    results = await behind_the_gate(world, burst if run_ends_batch else [*burst, written_nothing()])

    assert failed and failed[0] >= 2  # the refused write was a run of several charges
    assert [status for status, _ in results] == [201] * 6 + ([] if run_ends_batch else [200])
    assert len({body["id"] for _, body in results[:6]}) == 6
    assert writer.one_by_one_reruns == (1 if run_ends_batch and world.service.settings.uses_postgres else 0)
    wallet = await world.wallet(anna)
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (400, 0, 400)
    assert world.sql("SELECT COUNT(*) FROM charges")[0][0] == 6
    assert world.sql("SELECT COUNT(*) FROM wallet_events WHERE type = 'capture'")[0][0] == 6
    world.check()


def record_round_trips(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every round trip of this process's PostgreSQL connections from now on, as the statements
    it sent (a statement sent on its own is recorded by a placeholder)."""
    sends: list[list[str]] = []
    live, pipelined = PostgresConnection._live, PostgresConnection._pipelined

    def sending(self: PostgresConnection) -> Any:  # every round trip takes the live connection once
        sends.append(["(a statement on its own)"])
        return live(self)

    def sending_together(self: PostgresConnection, statements: Any, rows: Any) -> Any:
        try:
            return pipelined(self, statements, rows)
        finally:
            sends[-1] = [sql for sql, _ in statements]

    monkeypatch.setattr(PostgresConnection, "_live", sending)
    monkeypatch.setattr(PostgresConnection, "_pipelined", sending_together)
    return sends


async def a_batch_s_round_trips(
    world: World, monkeypatch: pytest.MonkeyPatch, burst: list[Awaitable[tuple[int, Any]]]
) -> tuple[list[tuple[int, Any]], list[list[str]]]:
    """The answers to ``burst``, run as one batch (``behind_the_gate``), and that batch's round
    trips from its ``BEGIN`` to the one that wrote its charges, each as the statements it sent."""
    sends = record_round_trips(monkeypatch)
    results = await behind_the_gate(world, burst)
    monkeypatch.undo()
    writes = next(n for n, sent in enumerate(sends) if any(sql.startswith("INSERT INTO charges ") for sql in sent))
    begun = max(n for n in range(writes + 1) if "BEGIN" in sends[n])
    return results, sends[begun : writes + 1]


@pytest.mark.postgres_only
@pytest.mark.thread_writer  # the connection's sends are recorded in this process
async def test_a_batch_of_charges_holds_the_write_lock_for_three_round_trips(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between ``BEGIN`` and ``COMMIT`` a batch of charges makes three round trips: the lock tried
    with the first reads, the second reads, then every write with the check of the moved accounts
    and the ``COMMIT`` itself (docs/postgresql-writes.md)."""
    anna, provider = await world.funded(1_000)
    results, trips = await a_batch_s_round_trips(
        world, monkeypatch, [world.charge(provider, anna, 100) for _ in range(5)]
    )

    assert [status for status, _ in results] == [201] * 5
    assert len(trips) == 3, trips
    assert trips[-1][-1] == "COMMIT" and CHECK_ACCOUNTS_SQL in trips[-1]
    assert TRY_WRITE_LOCK_SQL in trips[0] and "SAVEPOINT charges" not in trips[-1]
    assert world.service.storage.writer.one_by_one_reruns == 0  # type: ignore[attr-defined]
    assert (await world.wallet(anna))["available"] == 500
