"""The SQLite adapter: one writer thread for every write; reads on the event loop, or on a pool of
aiosqlite readers for long scans.

Why most reads run on the event loop thread itself: a point read (a wallet's lines, a charge, a
credential) is a few index lookups, tens of microseconds inside SQLite, while handing it to a reader
thread and back costs several times that in queue hops, wake-ups and GIL hand-overs, under load more
than the query itself (measured with ``python -m loadtests.bench``, docs/performance.md). In WAL mode a
reader never waits for the writer, so such a read does not stall the loop. Exports, which scan many
rows, keep to the thread pool.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite
import structlog

from wallet.clock import rfc3339
from wallet.ledger.errors import NotFound, Unavailable
from wallet.ledger.months import previous_month
from wallet.ledger.reconciliation import Invoice
from wallet.ledger.settlements import SettlementStatus
from wallet.storage.port import (
    ACTOR,
    ChargeCommand,
    CommitObserver,
    Idempotency,
    Limits,
    NewBudget,
    NewClient,
    NewProvider,
    NewRepresentation,
    Page,
    Record,
    WriterStats,
    Written,
)
from wallet.storage.sql import (
    charges,
    credit_runs,
    events,
    exports,
    login,
    organizer,
    reconciliations,
    render,
    representatives,
    settlements,
    statements,
    usage,
)
from wallet.storage.sql.connection import Connection, Row
from wallet.storage.sql.idempotency import REPLAY_SQL, purge_idempotency_keys, replay_outcome
from wallet.storage.sql.reading import Reader
from wallet.storage.sql.units import Unit, stored
from wallet.storage.sqlite import versions
from wallet.storage.sqlite.connection import SqliteConnection
from wallet.storage.sqlite.writer import STATEMENT_CACHE_SIZE, Writer, connect
from wallet.storage.sqlite.writer_process import ProcessWriter

SCHEMA_VERSION = 3  # the steps from each older version: wallet/storage/sqlite/versions.py
log = structlog.get_logger(__name__)


def migrate(path: str) -> None:
    """Create or bring the schema up to date. Safe to run from several processes at once."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = connect(path)
    try:
        schema = resources.files("wallet.storage.sqlite").joinpath("schema.sql").read_text()
        versions.upgrade(connection, schema, SCHEMA_VERSION)
    finally:
        connection.close()


class SqliteStorage:
    def __init__(
        self,
        path: str,
        *,
        queue_max: int,
        batch_max: int,
        readers: int,
        writer_process: bool = False,
        log_format: str = "json",
        log_level: str = "info",
        writer_socket: str | None = None,
    ) -> None:
        self.path = path
        self.writer: Writer | ProcessWriter = (
            ProcessWriter(
                path,
                queue_max=queue_max,
                batch_max=batch_max,
                log_format=log_format,
                log_level=log_level,
                connect_to=writer_socket,
            )
            if writer_process or writer_socket is not None
            else Writer(path, queue_max=queue_max, batch_max=batch_max)
        )
        self._reader_count = readers
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._event_listeners: list[Callable[[dict[str, int]], None]] = []
        self._loop_connection: sqlite3.Connection | None = None
        self._loop_reader: _LoopReader | None = None
        self._loop_reader_busy = False
        # The credit run's planner (``credit_run_step(plan_ahead=clock)``): its connection, used by one
        # thread at a time, and the step expected next: being planned, then handed to the writer.
        self._planner: SqliteConnection | None = None
        self._planner_lock = threading.Lock()
        self._ahead: (
            tuple[
                tuple[str, str, int, int], asyncio.Future[tuple[credit_runs.CreditPlan, asyncio.Future[Written]] | None]
            ]
            | None
        ) = None

    async def open(self) -> None:
        await asyncio.to_thread(migrate, self.path)
        loop = asyncio.get_running_loop()
        last_seq = await asyncio.to_thread(_last_event_seq, self.path)
        if isinstance(self.writer, ProcessWriter):
            self.writer.on_fresh_events = self._announce  # on this loop, after each COMMIT
            await self.writer.start(last_seq)
        else:
            self._start_thread_writer(loop, events.Watermark(last_seq))
        for _ in range(self._reader_count):
            reader = await aiosqlite.connect(self.path, timeout=10.0)
            reader.row_factory = sqlite3.Row
            await reader.execute("PRAGMA query_only = ON")
            await reader.execute("PRAGMA busy_timeout = 10000")
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)
        self._loop_connection = _loop_connection(self.path)
        self._loop_reader = _LoopReader(self._loop_connection)

    def _start_thread_writer(self, loop: asyncio.AbstractEventLoop, watermark: events.Watermark) -> None:
        writer = self.writer
        assert isinstance(writer, Writer)

        def announce(connection: Connection) -> None:  # in the writer thread, after COMMIT
            fresh = watermark.advance(connection)
            if fresh and self._event_listeners:
                try:
                    loop.call_soon_threadsafe(self._announce, fresh)
                except RuntimeError:  # the event loop has closed: nobody listens any more
                    pass

        writer.after_commit = announce
        writer.start()

    def watch_wallet_events(self, listener: Callable[[dict[str, int]], None]) -> None:
        self._event_listeners.append(listener)

    def _announce(self, fresh: dict[str, int]) -> None:
        for listener in self._event_listeners:
            listener(fresh)

    async def close(self) -> None:
        if self._ahead is not None:  # a step prepared that nobody asked for (the run failed): let it finish
            prepared = await self._ahead[1]
            self._ahead = None
            if prepared is not None:
                await _settled(prepared[1])
        if self._planner is not None:
            self._planner.close()
            self._planner = None
        await self.writer.stop()
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._loop_connection is not None:
            self._loop_connection.close()
            self._loop_connection = self._loop_reader = None

    @asynccontextmanager
    async def _read(self, *, scan: bool = False) -> AsyncIterator[Reader]:
        """A reader for one consistent snapshot: everything inside sees one committed state.

        A short read gets the event loop's own connection; a ``scan`` (or a read that finds it in
        use, when a read awaits something else inside) gets a pooled reader thread."""
        loop_reader = self._loop_reader
        if not scan and loop_reader is not None and not self._loop_reader_busy:
            self._loop_reader_busy = True
            try:
                with loop_reader.snapshot():
                    yield loop_reader
            except sqlite3.OperationalError as error:  # locked past the short timeout, or an I/O fault
                log.warning("loop_read_failed", error=str(error))
                raise Unavailable("the database cannot be read now", retry_after_seconds=1) from error
            finally:
                self._loop_reader_busy = False
            return
        reader = await self._readers.get()
        try:
            await reader.execute("BEGIN")
            try:
                yield reader
            finally:
                await reader.execute("COMMIT")
        finally:
            self._readers.put_nowait(reader)

    async def _read_statement(self, sql: str, parameters: tuple[Any, ...]) -> list[Row]:
        """The rows of one statement. A single statement reads one committed snapshot by itself, so
        on the loop's connection it needs no BEGIN and COMMIT around it (nor the context manager):
        the same answer as ``_read``, at a third of the calls into SQLite. (The PostgreSQL adapter,
        which shares these reads, has no loop connection: its ``_read`` answers.)"""
        loop_reader = self._loop_reader
        if loop_reader is not None and not self._loop_reader_busy:
            try:
                return loop_reader.fetch(sql, parameters)
            except sqlite3.OperationalError as error:  # as in _read: locked past the short timeout, or an I/O fault
                log.warning("loop_read_failed", error=str(error))
                raise Unavailable("the database cannot be read now", retry_after_seconds=1) from error
        async with self._read() as reader:
            return list(await reader.execute_fetchall(sql, parameters))

    async def _write(self, unit: Unit, now: datetime, idempotency: Idempotency | None = None) -> Written:
        return await self.writer.submit(unit, idempotency, rfc3339(now))

    async def ping(self) -> None:
        async with self._read() as reader:
            await reader.execute_fetchall("SELECT 1")

    def writer_stats(self) -> WriterStats:
        return self.writer.stats()

    def observe_commits(self, observer: CommitObserver) -> None:
        self.writer.observe_commits(observer)

    # Organizer.

    async def create_category(self, code: str, name: str, now: datetime) -> Record:
        return (await self._write(organizer.create_category(code, name, rfc3339(now)), now)).value

    async def list_categories(self) -> list[Record]:
        async with self._read() as reader:
            rows = await reader.execute_fetchall("SELECT code, name, created_at FROM categories ORDER BY code")
        return [dict(row) for row in rows]

    async def create_client(self, client: NewClient, now: datetime) -> Record:
        return (await self._write(organizer.create_client(client, rfc3339(now)), now)).value

    async def get_client(self, client_id: str) -> Record:
        async with self._read() as reader:
            rows = list(await reader.execute_fetchall("SELECT * FROM clients WHERE id = ?", (client_id,)))
        if not rows:
            raise NotFound("no such client")
        return render.client(rows[0])

    async def identity_lockout(self, kind: str, owner_id: str, limits: Limits, now: datetime) -> Record:
        """A wallet's (``client``) or a provider's (``provider``) identity-check lockout."""
        column, maximum = {
            "client": ("client_id", limits.identity_failures_max),
            "provider": ("provider_id", limits.provider_identity_failures_max),
        }[kind]
        window = timedelta(seconds=limits.identity_failures_window_seconds)
        since = rfc3339(now - window)
        async with self._read() as reader:
            count_rows = await reader.execute_fetchall(charges.LOCKOUT_COUNT_SQL[column], (owner_id, since))
            failures = list(count_rows)[0][0]
            nth = None
            if failures >= maximum:
                nth_rows = await reader.execute_fetchall(
                    charges.LOCKOUT_NTH_SQL[column], (owner_id, since, failures - maximum)
                )
                nth = list(nth_rows)[0][0]
        return charges.lockout_record(failures, maximum, nth, window)

    async def create_budget(self, budget: NewBudget, now: datetime) -> Record:
        return (await self._write(organizer.create_budget(budget, rfc3339(now)), now)).value

    async def list_budgets(self, client_id: str, limit: int, before: int | None) -> Page:
        async with self._read() as reader:
            if not list(await reader.execute_fetchall("SELECT 1 FROM clients WHERE id = ?", (client_id,))):
                raise NotFound("no such client")
            rows = list(
                await reader.execute_fetchall(
                    "SELECT * FROM budgets WHERE client_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                    (client_id, before if before is not None else 2**63 - 1, limit + 1),
                )
            )
            budgets = []
            for row in rows[:limit]:
                lines = await reader.execute_fetchall(
                    "SELECT category, monthly_amount FROM budget_lines WHERE budget_id = ? ORDER BY category",
                    (row["id"],),
                )
                budgets.append(render.budget(row, [dict(line) for line in lines]))
        return Page(budgets, rows[limit - 1]["seq"] if len(rows) > limit else None)

    async def end_budget(
        self, client_id: str, budget_id: str, end_month: str, current_month: str, now: datetime
    ) -> Record:
        return (
            await self._write(organizer.end_budget(client_id, budget_id, end_month, current_month, rfc3339(now)), now)
        ).value

    async def create_provider(self, provider: NewProvider, now: datetime) -> Record:
        return (await self._write(organizer.create_provider(provider, rfc3339(now)), now)).value

    async def set_provider_status(self, provider_id: str, status: str, now: datetime) -> Record:
        return (await self._write(organizer.set_provider_status(provider_id, status, rfc3339(now)), now)).value

    async def get_provider(self, provider_id: str) -> Record:
        async with self._read() as reader:
            rows = list(await reader.execute_fetchall("SELECT * FROM providers WHERE id = ?", (provider_id,)))
            if not rows:
                raise NotFound("no such provider")
            categories = await reader.execute_fetchall(
                "SELECT category FROM provider_categories WHERE provider_id = ? ORDER BY category", (provider_id,)
            )
        return render.provider(rows[0], [row["category"] for row in categories])

    async def add_provider_credential(self, provider_id: str, client_id: str, secret_hash: str, now: datetime) -> None:
        await self._write(organizer.add_provider_credential(provider_id, client_id, secret_hash, rfc3339(now)), now)

    async def get_provider_credential(self, client_id: str) -> Record | None:
        async with self._read() as reader:
            rows = list(
                await reader.execute_fetchall(
                    "SELECT c.client_id, c.provider_id, c.secret_hash, p.status FROM provider_credentials c"
                    " JOIN providers p ON p.id = c.provider_id WHERE c.client_id = ?",
                    (client_id,),
                )
            )
        return dict(rows[0]) if rows else None

    # Whether ``credit_run_step(plan_ahead=clock)`` works steps out ahead (``credit_runs.plan_step``).
    plans_credit_runs = True

    async def credit_run_step(
        self,
        month: str,
        current_month: str,
        after_budget_seq: int,
        batch: int,
        now: datetime,
        *,
        plan_ahead: Callable[[], datetime] | None = None,
    ) -> Record:
        """One step of the credit run.

        With ``plan_ahead`` (``wallet credit-run``, where this process has nothing else to do) the
        work of a step is split between two cores: this process works the next step out in a thread
        (``credit_runs.plan_step``) while the writer writes this one, and hands it to the writer
        before this one is answered, so that the writer never waits for it. The writer checks every
        plan against its own read inside the writing transaction (``credit_runs.credit_run_step``)
        and works the step out itself where they differ: the outcome is the same either way. A
        step worked out ahead is stamped with ``plan_ahead()``, the caller's clock, when it is."""
        now_text = rfc3339(now)
        if plan_ahead is None or not self.plans_credit_runs:
            unit = credit_runs.credit_run_step(month, current_month, after_budget_seq, batch, now_text)
            return (await self._write(unit, now)).value
        key = (month, current_month, after_budget_seq, batch)
        ahead, self._ahead = self._ahead, None
        prepared = await ahead[1] if ahead is not None else None
        plan: credit_runs.CreditPlan | None
        if ahead is not None and ahead[0] == key and prepared is not None:
            plan, writing = prepared
        else:
            if prepared is not None:  # a step prepared for another call than this one: let it finish
                await _settled(prepared[1])
            plan = await asyncio.to_thread(self._plan, *key, now_text, ACTOR.get(), None)
            writing = self._submit_step(key, plan, now_text, now)
        if plan is not None and not plan.result["done"]:
            following = (month, current_month, int(plan.result["last_budget_seq"]), batch)
            self._ahead = (following, asyncio.ensure_future(self._prepare_step(following, plan, plan_ahead)))
        return (await writing).value

    async def _prepare_step(
        self, key: tuple[str, str, int, int], before: credit_runs.CreditPlan, clock: Callable[[], datetime]
    ) -> tuple[credit_runs.CreditPlan, asyncio.Future[Written]] | None:
        """Plan the step after ``before`` and hand it to the writer; ``None`` if no plan could be made
        (the call for that step then hands it to the writer without one)."""
        now = clock()
        plan = await asyncio.to_thread(self._plan, *key, rfc3339(now), ACTOR.get(), before)
        if plan is None:
            return None
        return plan, self._submit_step(key, plan, plan.now, now)

    def _submit_step(
        self, key: tuple[str, str, int, int], plan: credit_runs.CreditPlan | None, now_text: str, now: datetime
    ) -> asyncio.Future[Written]:
        unit = credit_runs.credit_run_step(*key, plan.now if plan is not None else now_text, plan)
        return asyncio.ensure_future(self._write(unit, now))

    def _plan(
        self,
        month: str,
        current_month: str,
        after_budget_seq: int,
        batch: int,
        now: str,
        actor: str,
        before: credit_runs.CreditPlan | None,
    ) -> credit_runs.CreditPlan | None:
        """In a thread: a plan, or ``None`` (then the writer works the step out itself)."""
        with self._planner_lock:
            try:
                if self._planner is None:
                    self._planner = _planner_connection(self.path)
                return credit_runs.plan_step(
                    self._planner, month, current_month, after_budget_seq, batch, now, actor, before
                )
            except Exception:  # a plan is only ever a head start: the writer does the step regardless
                log.exception("credit_run_plan_failed", month=month, after_budget_seq=after_budget_seq)
                return None

    async def credit_run_budgets(self, month: str) -> int:
        async with self._read() as reader:
            rows = list(
                await reader.execute_fetchall(
                    "SELECT COUNT(*) FROM budgets WHERE start_month <= ? AND end_month >= ?",
                    (month, previous_month(month)),
                )
            )
        return int(rows[0][0])

    async def credit_run_summary(self, month: str) -> Record:
        async with self._read() as reader:
            rows = list(
                await reader.execute_fetchall(
                    "SELECT COUNT(*) AS credited, COALESCE(SUM(amount), 0) AS amount FROM credits WHERE month = ?",
                    (month,),
                )
            )
        return {"month": month, "credited": rows[0]["credited"], "amount": rows[0]["amount"]}

    async def idempotent_lookup(self, idempotency: Idempotency) -> Written | None:
        async with self._read() as reader:
            rows = list(
                await reader.execute_fetchall(
                    REPLAY_SQL,
                    (idempotency.scope, idempotency.key),
                )
            )
        if not rows:
            return None
        outcome = replay_outcome(rows[0], idempotency)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def idempotent_store(self, idempotency: Idempotency, value: Record, now: datetime) -> Written:
        return await self._write(stored(value), now, idempotency)

    # Providers.

    async def charge(
        self, command: ChargeCommand, limits: Limits, now: datetime, month: str, idempotency: Idempotency | None
    ) -> Written:
        return await self._write(charges.charge(command, limits, now, month), now, idempotency)

    async def confirm_charge(
        self,
        provider_id: str,
        charge_id: str,
        code_hash: str,
        limits: Limits,
        now: datetime,
        idempotency: Idempotency | None,
    ) -> Written:
        return await self._write(
            charges.confirm_charge(provider_id, charge_id, code_hash, limits, now), now, idempotency
        )

    async def void_charge(
        self, provider_id: str, charge_id: str, now: datetime, idempotency: Idempotency | None
    ) -> Written:
        return await self._write(charges.void_charge(provider_id, charge_id, now), now, idempotency)

    async def refund(
        self, provider_id: str, charge_id: str, amount: int, now: datetime, idempotency: Idempotency | None
    ) -> Written:
        return await self._write(charges.refund(provider_id, charge_id, amount, now), now, idempotency)

    async def purge_idempotency_keys(self, older_than: datetime, batch: int, now: datetime) -> int:
        return int((await self._write(purge_idempotency_keys(older_than, batch), now)).value["deleted"])

    async def expire_pending(self, now: datetime, batch: int) -> int:
        return int((await self._write(charges.expire_pending(now, batch), now)).value["voided"])

    async def get_charge(self, provider_id: str, charge_id: str) -> Record:
        async with self._read() as reader:
            rows = list(
                await reader.execute_fetchall(
                    "SELECT * FROM charges WHERE id = ? AND provider_id = ?", (charge_id, provider_id)
                )
            )
        if not rows:
            raise NotFound("no such charge")
        return render.charge(rows[0])

    async def list_charges(self, provider_id: str, limit: int, before: int | None, status: str | None) -> Page:
        query = "SELECT * FROM charges WHERE provider_id = ? AND seq < ?"
        parameters: list[object] = [provider_id, before if before is not None else 2**62]
        if status is not None:
            query += " AND status = ?"
            parameters.append(status)
        query += " ORDER BY seq DESC LIMIT ?"
        parameters.append(limit + 1)
        async with self._read() as reader:
            rows = list(await reader.execute_fetchall(query, parameters))
        return _page(rows, limit, render.charge)

    # Clients.

    async def start_login(
        self, phone_hash: str, code_hash: str, expires_at: datetime, limits: Limits, now: datetime
    ) -> bool:
        written = await self._write(login.start_login(phone_hash, code_hash, expires_at, limits, now), now)
        return bool(written.value["sent"])

    async def verify_login(
        self, phone_hash: str, code_hash: str, client_id: str | None, limits: Limits, now: datetime
    ) -> Record:
        return (await self._write(login.verify_login(phone_hash, code_hash, client_id, limits, now), now)).value

    async def get_wallet(self, client_id: str, month: str) -> Record:
        # One statement, so one snapshot: the wallet's accounts, its budget lines of the month, and
        # the stream position this wallet state stands at (part 0, 1 and 2).
        rows = await self._read_statement(_WALLET_SQL, (client_id, client_id, month, month, client_id))
        return wallet_from_rows(client_id, rows)

    async def list_wallet_events(self, client_id: str, after: int, limit: int) -> list[Record]:
        async with self._read() as reader:
            return await events.read_after(reader, client_id, after, limit)

    async def answer_charge(
        self, client_id: str, charge_id: str, approve: bool, now: datetime, idempotency: Idempotency | None
    ) -> Written:
        return await self._write(charges.answer_charge(client_id, charge_id, approve, now), now, idempotency)

    async def list_client_charges(self, client_id: str, limit: int, before: int | None, status: str | None) -> Page:
        query = CLIENT_CHARGES_SQL
        parameters: list[object] = [client_id, before if before is not None else 2**62]
        if status is not None:
            query += " AND c.status = ?"
            parameters.append(status)
        query += " ORDER BY e.seq DESC LIMIT ?"
        parameters.append(limit + 1)
        async with self._read() as reader:
            rows = list(await reader.execute_fetchall(query, parameters))
        return _page(rows, limit, render.client_charge)

    async def statement_figures(self, client_id: str, start: datetime, until: datetime) -> Record:
        async with self._read() as reader:  # one snapshot: the balances and movements agree
            return await statements.figures(reader, client_id, rfc3339(start), rfc3339(until))

    async def list_transactions(self, client_id: str, limit: int, before: int | None) -> Page:
        async with self._read() as reader:
            parameters = (client_id, before if before is not None else 2**62, limit + 1)
            rows = list(await reader.execute_fetchall(HISTORY_SQL, parameters))

        def item(row: Row) -> Record:
            record = {key: row[key] for key in row.keys() if key != "seq"}
            if record["provider_name"] is None:
                del record["provider_name"], record["provider_id"]
            return record

        return _page(rows, limit, item)

    # Representatives.

    async def create_representation(self, representation: NewRepresentation, now: datetime) -> Record:
        return (await self._write(representatives.create(representation, rfc3339(now)), now)).value

    async def list_representations(self, client_id: str, limit: int, before: int | None) -> Page:
        async with self._read() as reader:
            if not list(await reader.execute_fetchall("SELECT 1 FROM clients WHERE id = ?", (client_id,))):
                raise NotFound("no such client")
            rows, _ = await representatives.list_page(reader, client_id, limit, before)
        return _page(rows, limit, representatives.render)

    async def revoke_representation(self, client_id: str, representation_id: str, now: datetime) -> Record:
        return (await self._write(representatives.revoke(client_id, representation_id, rfc3339(now)), now)).value

    async def active_mandate(self, representative_id: str, client_id: str) -> Record | None:
        async with self._read() as reader:
            rows = list(
                await reader.execute_fetchall(representatives.ACTIVE_MANDATE_SQL, (representative_id, client_id))
            )
        return dict(rows[0]) if rows else None

    async def list_mandates(self, representative_id: str) -> list[Record]:
        async with self._read() as reader:
            rows = await reader.execute_fetchall(representatives.MANDATES_SQL, (representative_id,))
        return [dict(row) for row in rows]

    async def answer_charge_for(
        self,
        representative_id: str,
        client_id: str,
        charge_id: str,
        approve: bool,
        now: datetime,
        idempotency: Idempotency | None,
    ) -> Written:
        unit = charges.answer_charge(client_id, charge_id, approve, now, representative_id=representative_id)
        return await self._write(unit, now, idempotency)

    # The organizer's view of use.

    async def usage_figures(self, month: str, start: datetime, end: datetime) -> Record:
        async with self._read() as reader:  # one snapshot: every figure of the report agrees
            return await usage.figures(reader, month, rfc3339(start), rfc3339(end))

    # Settlements.

    async def settle(
        self, provider_id: str, until: datetime, items_max: int, now: datetime, idempotency: Idempotency | None
    ) -> Written:
        unit = settlements.settle(provider_id, rfc3339(until), rfc3339(now), items_max)
        return await self._write(unit, now, idempotency)

    async def unsettled_by_provider(self, until: datetime) -> list[Record]:
        async with self._read(scan=True) as reader:  # one snapshot; may scan many lines
            return await settlements.unsettled_by_provider(reader, rfc3339(until))

    async def set_settlement_status(
        self,
        settlement_id: str,
        status: SettlementStatus,
        note: str | None,
        now: datetime,
        idempotency: Idempotency | None,
    ) -> Written:
        return await self._write(settlements.set_status(settlement_id, status, rfc3339(now), note), now, idempotency)

    async def get_settlement(
        self, settlement_id: str, provider_id: str | None, lines_limit: int, lines_after: int | None
    ) -> Record:
        async with self._read() as reader:
            return await settlements.get(reader, settlement_id, provider_id, lines_limit, lines_after)

    async def list_settlements(
        self, provider_id: str | None, limit: int, before: int | None, status: str | None
    ) -> Page:
        async with self._read() as reader:
            return await settlements.list_page(reader, provider_id, limit, before, status)

    # Finance exports.

    def export_transactions(
        self, start: datetime | None, end: datetime | None, page_rows: int
    ) -> AsyncIterator[list[Record]]:
        return self._export("transactions", exports.transactions_page, start, end, page_rows)

    def export_settlements(
        self, start: datetime | None, end: datetime | None, page_rows: int
    ) -> AsyncIterator[list[Record]]:
        return self._export("settlements", exports.settlements_page, start, end, page_rows)

    async def _export(
        self, table: str, read_page: exports.PageReader, start: datetime | None, end: datetime | None, page_rows: int
    ) -> AsyncIterator[list[Record]]:
        async with self._read(scan=True) as reader:
            top = await exports.ceiling(reader, table)
        after: exports.Keyset = (exports.EARLIEST, 0)
        start_at, end_at = (rfc3339(start) if start else None), (rfc3339(end) if end else None)
        while True:
            async with self._read(scan=True) as reader:  # one short read a page: no reader is held between them
                page, after = await read_page(reader, start_at, end_at, top, after, page_rows)
            yield page
            if len(page) < page_rows:
                return

    # Invoice reconciliation.

    async def reconcile(
        self, invoices: tuple[Invoice, ...], source: str, now: datetime, idempotency: Idempotency | None
    ) -> Written:
        return await self._write(reconciliations.reconcile(invoices, source, rfc3339(now)), now, idempotency)


class _LoopReader:
    """The reader interface the queries use (``execute_fetchall``), answered at once on the calling
    thread: awaiting it never suspends, so nothing else runs on the loop in the middle of a read."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        self._connection.execute("BEGIN")
        try:
            yield
        finally:
            self._connection.execute("COMMIT")

    async def execute_fetchall(self, sql: str, parameters: Iterable[Any] | None = None) -> list[Row]:
        return self._connection.execute(sql, tuple(parameters) if parameters is not None else ()).fetchall()

    def fetch(self, sql: str, parameters: tuple[Any, ...]) -> list[Row]:
        """One statement outside any BEGIN: it reads one snapshot of its own."""
        return self._connection.execute(sql, parameters).fetchall()


_NO_POSITION = object()


def wallet_from_rows(client_id: str, rows: Sequence[Row]) -> Record:
    """``GET /v1/me/wallet``'s record from the rows of _WALLET_SQL, in one pass over them: a line per
    category with an account or a budget line this month, in the order of their codes."""
    accounts: dict[str, tuple[int, int]] = {}
    monthly: dict[str, int] = {}
    last_event: object = _NO_POSITION
    for part, category, amount, held in rows:  # in one pass: a read of a wallet is a hot path
        if part == 0:
            accounts[category] = (amount, held)
        elif part == 1:
            monthly[category] = amount
        else:
            last_event = amount
    if last_event is _NO_POSITION:
        raise RuntimeError("the wallet read gave no stream position")  # its part 2 is always one row
    lines: list[Record] = []
    total_balance = total_held = 0
    for category in sorted(accounts.keys() | monthly.keys()):
        balance, held = accounts.get(category, (0, 0))
        total_balance += balance
        total_held += held
        lines.append(
            {
                "category": category,
                "balance": balance,
                "held": held,
                "available": balance - held,
                "monthly_amount": monthly.get(category, 0),
            }
        )
    return {
        "client_id": client_id,
        "balance": total_balance,
        "held": total_held,
        "available": total_balance - total_held,
        "lines": lines,
        "last_event_id": str(last_event),
    }


# GET /v1/me/wallet in one statement (see get_wallet): each part's rows as its own query would
# give them, tagged with the part.
# Plain ? placeholders (the PostgreSQL adapter translates them in order): client, client, month,
# month, client.
_WALLET_SQL = (
    "SELECT 0, category, balance, held FROM accounts WHERE client_id = ? AND kind = 'wallet'"
    " UNION ALL"
    " SELECT 1, l.category, l.monthly_amount, NULL FROM budgets b JOIN budget_lines l ON l.budget_id = b.id"
    " WHERE b.client_id = ? AND b.start_month <= ? AND b.end_month >= ?"
    f" UNION ALL SELECT 2, NULL, ({events.LAST_SEQ_OF_CLIENT_SQL}), NULL"
)

# A read on the loop thread waits at most this long for a lock (a WAL reader waits only in rare
# cases, such as recovery after a crash); beyond it the read fails with 503 rather than stall the loop.
LOOP_READ_BUSY_TIMEOUT_MS = 200


def _loop_connection(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, isolation_level=None, timeout=LOOP_READ_BUSY_TIMEOUT_MS / 1000, cached_statements=STATEMENT_CACHE_SIZE
    )
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA query_only = ON")
    connection.execute(f"PRAGMA busy_timeout = {LOOP_READ_BUSY_TIMEOUT_MS}")
    return connection


async def _settled(writing: asyncio.Future[Written]) -> None:
    """Wait for a credit-run step that its caller no longer waits for; what it raised is logged."""
    try:
        await writing
    except Exception as error:
        log.warning("credit_run_step_ahead_failed", error_type=type(error).__name__, error=str(error))


def _planner_connection(path: str) -> SqliteConnection:
    """Read-only, plain tuples, for whichever thread plans the credit run (one at a time)."""
    connection = sqlite3.connect(
        path, factory=SqliteConnection, isolation_level=None, timeout=10.0, check_same_thread=False
    )
    connection.execute("PRAGMA query_only = ON")
    return connection


def _last_event_seq(path: str) -> int:
    connection = connect(path)
    try:
        return int(connection.execute(events.LAST_SEQ_SQL).fetchone()[0])
    finally:
        connection.close()


# A client's history, newest first: one item per posting on one of its wallet lines. Read from
# the wallet events, which hold one row per such posting (its amount and the line's balance after
# it: ``wallet check`` proves them equal), by the one per-client index a charge must write,
# ``wallet_events_by_client``; the transaction by its id. The events' ``seq`` is the cursor (it
# rises in commit order, as the transactions' does). Holds and voids move no money: no
# transaction, not history. Schema 3 dropped ``transactions_by_client``, ``postings_by_account``
# and ``charges_by_client``: three random index pages a charge (versions.py).
HISTORY_SQL = (
    "SELECT e.seq, t.id, t.type, t.created_at, t.category, t.charge_id, t.refund_id,"
    " e.amount, e.line_balance AS balance_after, pr.name AS provider_name, t.provider_id"
    " FROM wallet_events e"
    " JOIN transactions t ON t.id = e.transaction_id"
    " LEFT JOIN providers pr ON pr.id = t.provider_id"
    " WHERE e.client_id = ? AND e.seq < ? AND e.transaction_id IS NOT NULL ORDER BY e.seq DESC LIMIT ?"
)

# A client's charges, newest first, found by the wallet event each charge is made with
# (``events.MAKES_CHARGE_SQL``). The event's ``seq`` is the cursor; the charge's own columns by name
# (``seq`` is the event's, for ``_page``).
CLIENT_CHARGES_SQL = (
    "SELECT e.seq, c.id, c.status, c.amount, c.category, c.method, c.description, c.created_at, c.expires_at,"
    " c.captured_at, c.voided_at, c.void_reason, c.refunded_amount, c.provider_id, p.name AS provider_name"
    " FROM wallet_events e"
    " JOIN charges c ON c.id = e.charge_id"
    " JOIN providers p ON p.id = c.provider_id"
    f" WHERE e.client_id = ? AND e.seq < ? AND e.charge_id IS NOT NULL AND {events.MAKES_CHARGE_SQL}"
)


def _page(rows: list[Row], limit: int, render_row: Callable[[Row], Record]) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([render_row(row) for row in rows], rows[-1]["seq"] if more else None)
