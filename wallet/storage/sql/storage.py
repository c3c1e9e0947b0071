"""The storage port written once for both databases: the reads (``SqlReads``), and each write as a
unit of work (``wallet/storage/sql``) submitted to the adapter's writer.

An adapter (``SqliteStorage``, ``PostgresStorage``) gives it its writer and its readers and owns
their lifecycle (``open``, ``close``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from wallet.clock import rfc3339
from wallet.ledger.bank_statements import Statement
from wallet.ledger.reconciliation import Invoice
from wallet.ledger.settlements import SettlementStatus
from wallet.storage.port import (
    ChargeCommand,
    ChargeItemCommand,
    ClientQuery,
    CommitObserver,
    Idempotency,
    Limits,
    NewBudget,
    NewClient,
    NewDecision,
    NewOffer,
    NewProvider,
    NewRepresentation,
    NewService,
    NewSession,
    OfferChange,
    Page,
    ProviderQuery,
    Record,
    WriterStats,
    Written,
)
from wallet.storage.sql import (
    bank_statements,
    catalog,
    charges,
    credit_runs,
    decisions,
    desk,
    itemized,
    login,
    notices,
    organizer,
    payment_batches,
    receipts,
    reconciliations,
    representatives,
    settlements,
    statement_documents,
    web_sessions,
)
from wallet.storage.sql.idempotency import purge_idempotency_keys
from wallet.storage.sql.reads import SqlReads
from wallet.storage.sql.units import Unit, stored


class UnitWriter(Protocol):
    """The writer as the port uses it: the thread (``sql.writer.Writer``) or the writer process (``sql.writer_process``)."""

    async def submit(self, unit: Unit, idempotency: Idempotency | None, created_at: str) -> Written: ...

    def stats(self) -> WriterStats: ...

    def observe_commits(self, observer: CommitObserver) -> None: ...

    async def stop(self) -> None: ...


# A credit-run step: month, current month, the last budget seq done, batch.
StepKey = tuple[str, str, int, int]


class CreditPlanner(Protocol):
    """Works credit-run steps out ahead, off the writer (SQLite's ``credit_planner``)."""

    async def step(self, key: StepKey, now: datetime, plan_ahead: Callable[[], datetime]) -> Record: ...


class SqlStorage(SqlReads):
    def __init__(self, path: str, writer: UnitWriter, credit_planner: CreditPlanner | None = None) -> None:
        self.path = path
        self.writer = writer
        self.credit_planner = credit_planner
        self._event_listeners: list[Callable[[dict[str, int]], None]] = []

    async def open(self) -> None:
        """Migrate, start the writer, open the readers."""
        raise NotImplementedError

    async def close(self) -> None:
        """Finish every queued write, then close the writer and the readers."""
        raise NotImplementedError

    def watch_wallet_events(self, listener: Callable[[dict[str, int]], None]) -> None:
        self._event_listeners.append(listener)

    def _announce(self, fresh: dict[str, int]) -> None:
        for listener in self._event_listeners:
            listener(fresh)

    async def _write(self, unit: Unit, now: datetime, idempotency: Idempotency | None = None) -> Written:
        return await self.writer.submit(unit, idempotency, rfc3339(now))

    async def ping(self) -> None:
        async with self._read() as reader:
            await reader.execute_fetchall("SELECT 1")

    def writer_stats(self) -> WriterStats:
        return self.writer.stats()

    def observe_commits(self, observer: CommitObserver) -> None:
        self.writer.observe_commits(observer)

    async def gather_statistics(self) -> None:
        """SQLite's planner picks these indexes without statistics: nothing to gather."""

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
        """One step of the credit run. With ``plan_ahead`` and a ``credit_planner`` (SQLite), the next
        step is worked out ahead while the writer writes this one (``sqlite/credit_planner.py``)."""
        if plan_ahead is None or self.credit_planner is None:
            unit = credit_runs.credit_run_step(month, current_month, after_budget_seq, batch, rfc3339(now))
            return (await self._write(unit, now)).value
        return await self.credit_planner.step((month, current_month, after_budget_seq, batch), now, plan_ahead)

    async def create_category(self, code: str, name: str, now: datetime) -> Record:
        return (await self._write(organizer.create_category(code, name, rfc3339(now)), now)).value

    async def create_client(self, client: NewClient, now: datetime) -> Record:
        return (await self._write(organizer.create_client(client, rfc3339(now)), now)).value

    async def create_budget(self, budget: NewBudget, now: datetime) -> Record:
        return (await self._write(organizer.create_budget(budget, rfc3339(now)), now)).value

    async def plan_prices(self, codes: Sequence[str], today: str) -> dict[str, Record]:
        async with self._read() as reader:
            return await decisions.read_prices(reader, codes, today)

    async def get_budget(self, client_id: str, budget_id: str) -> Record:
        async with self._read() as reader:
            return await decisions.read_budget(reader, client_id, budget_id)

    async def grant_budget(self, budget: NewBudget, decision: NewDecision, today: str, now: datetime) -> Record:
        return (await self._write(decisions.grant_budget(budget, decision, today, rfc3339(now)), now)).value

    async def change_budget(self, decision: NewDecision, current_month: str, today: str, now: datetime) -> Record:
        unit = decisions.change_budget(decision, current_month, today, rfc3339(now))
        return (await self._write(unit, now)).value

    async def queue_statement_notices(self, month: str, now: datetime) -> int:
        return int((await self._write(notices.queue_statements(month, rfc3339(now)), now)).value["queued"])

    async def store_statement_document(
        self, client_id: str, month: str, language: str, document: bytes, now: datetime
    ) -> Record:
        unit = statement_documents.store(client_id, month, language, document, rfc3339(now))
        return dict((await self._write(unit, now)).value)

    async def statement_document(self, client_id: str, month: str, language: str) -> tuple[Record, bytes] | None:
        async with self._read() as reader:
            return await statement_documents.read(reader, client_id, month, language)

    async def statements_to_store(self, month: str, limit: int) -> list[Record]:
        async with self._read() as reader:
            return await statement_documents.unstored(reader, month, limit)

    async def unsent_notices(self, after: int, limit: int, client_id: str | None) -> list[Record]:
        async with self._read() as reader:
            return await notices.unsent(reader, after, limit, client_id)

    async def mark_notices_sent(self, seqs: Sequence[int], now: datetime) -> int:
        return int((await self._write(notices.mark_sent(list(seqs), rfc3339(now)), now)).value["sent"])

    async def client_decisions(self, client_id: str) -> list[Record]:
        async with self._read() as reader:
            return await decisions.client_decisions(reader, client_id)

    async def decision_document(
        self, client_id: str, decision_id: str | None, budget_id: str | None
    ) -> tuple[Record, bytes]:
        async with self._read() as reader:
            return await decisions.document(reader, client_id, decision_id, budget_id)

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

    async def add_provider_credential(self, provider_id: str, client_id: str, secret_hash: str, now: datetime) -> None:
        await self._write(organizer.add_provider_credential(provider_id, client_id, secret_hash, rfc3339(now)), now)

    async def create_service(self, service: NewService, now: datetime) -> Record:
        return (await self._write(catalog.create_service(service, rfc3339(now)), now)).value

    async def add_unit_value(
        self, service_id: str, unit_value: int, valid_from: str, today: str, now: datetime
    ) -> Record:
        unit = catalog.add_unit_value(service_id, unit_value, valid_from, today, rfc3339(now))
        return (await self._write(unit, now)).value

    async def create_offer(self, offer: NewOffer, now: datetime) -> Record:
        return (await self._write(catalog.create_offer(offer, rfc3339(now)), now)).value

    async def change_offer(self, provider_id: str, offer_id: str, change: OfferChange, now: datetime) -> Record:
        return (await self._write(catalog.change_offer(provider_id, offer_id, change, rfc3339(now)), now)).value

    async def withdraw_offer(self, provider_id: str, offer_id: str, now: datetime) -> Record:
        return (await self._write(catalog.withdraw_offer(provider_id, offer_id, rfc3339(now)), now)).value

    async def idempotent_store(self, idempotency: Idempotency, value: Record, now: datetime) -> Written:
        return await self._write(stored(value), now, idempotency)

    async def charge(
        self, command: ChargeCommand, limits: Limits, now: datetime, month: str, idempotency: Idempotency | None
    ) -> Written:
        return await self._write(charges.charge(command, limits, now, month), now, idempotency)

    async def itemized_charge(
        self,
        command: ChargeCommand,
        items: tuple[ChargeItemCommand, ...],
        limits: Limits,
        now: datetime,
        month: str,
        today: str,
        idempotency: Idempotency | None,
    ) -> Written:
        return await self._write(itemized.charge(command, items, limits, now, month, today), now, idempotency)

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
        # Looked for in a read first: most sweeps find nothing, and a write would take the write
        # lock (on PostgreSQL exclusively: every node's charges wait) for nothing.
        async with self._read() as reader:
            if not list(await reader.execute_fetchall(charges.EXPIRED_HOLD_SQL, (rfc3339(now),))):
                return 0
        return int((await self._write(charges.expire_pending(now, batch), now)).value["voided"])

    async def claim_receipts(self, now: datetime, lease_seconds: int, attempts_max: int, batch: int) -> list[Record]:
        return list((await self._write(receipts.claim(now, lease_seconds, attempts_max, batch), now)).value["receipts"])

    async def mark_receipts_sent(self, event_seqs: Sequence[int], now: datetime) -> None:
        await self._write(receipts.sent(list(event_seqs), now), now)

    async def start_login(
        self, phone_hash: str, code_hash: str, expires_at: datetime, limits: Limits, now: datetime
    ) -> bool:
        written = await self._write(login.start_login(phone_hash, code_hash, expires_at, limits, now), now)
        return bool(written.value["sent"])

    async def verify_login(
        self, phone_hash: str, code_hash: str, client_id: str | None, limits: Limits, now: datetime
    ) -> Record:
        return (await self._write(login.verify_login(phone_hash, code_hash, client_id, limits, now), now)).value

    async def answer_charge(
        self, client_id: str, charge_id: str, approve: bool, now: datetime, idempotency: Idempotency | None
    ) -> Written:
        return await self._write(charges.answer_charge(client_id, charge_id, approve, now), now, idempotency)

    async def create_representation(self, representation: NewRepresentation, now: datetime) -> Record:
        return (await self._write(representatives.create(representation, rfc3339(now)), now)).value

    async def revoke_representation(self, client_id: str, representation_id: str, now: datetime) -> Record:
        return (await self._write(representatives.revoke(client_id, representation_id, rfc3339(now)), now)).value

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

    async def settle(
        self, provider_id: str, until: datetime, items_max: int, now: datetime, idempotency: Idempotency | None
    ) -> Written:
        unit = settlements.settle(provider_id, rfc3339(until), rfc3339(now), items_max)
        return await self._write(unit, now, idempotency)

    async def set_settlement_status(
        self,
        settlement_id: str,
        status: SettlementStatus,
        note: str | None,
        now: datetime,
        idempotency: Idempotency | None,
    ) -> Written:
        return await self._write(settlements.set_status(settlement_id, status, rfc3339(now), note), now, idempotency)

    async def reconcile(
        self, invoices: tuple[Invoice, ...], source: str, now: datetime, idempotency: Idempotency | None
    ) -> Written:
        return await self._write(reconciliations.reconcile(invoices, source, rfc3339(now)), now, idempotency)

    async def create_payment_batch(
        self,
        settlement_ids: tuple[str, ...] | None,
        payer: tuple[str, str, str],
        execution_date: str,
        settlements_max: int,
        now: datetime,
        idempotency: Idempotency | None,
    ) -> Written:
        unit = payment_batches.create(settlement_ids, payer, execution_date, rfc3339(now), settlements_max)
        return await self._write(unit, now, idempotency)

    async def cancel_payment_batch(self, batch_id: str, now: datetime, idempotency: Idempotency | None) -> Written:
        return await self._write(payment_batches.cancel(batch_id, rfc3339(now)), now, idempotency)

    async def apply_bank_statement(
        self, statement: Statement, now: datetime, idempotency: Idempotency | None
    ) -> Written:
        return await self._write(bank_statements.apply_statement(statement, rfc3339(now)), now, idempotency)

    # Page sessions (OpenID Connect sign-in).
    async def open_session(self, session: NewSession, now: datetime) -> None:
        await self._write(web_sessions.open_session(session), now)

    async def find_session(self, id_hash: str) -> Record | None:
        async with self._read() as reader:
            return await web_sessions.find_session(reader, id_hash)

    async def touch_session(self, id_hash: str, now: datetime) -> None:
        await self._write(web_sessions.touch_session(id_hash, rfc3339(now)), now)

    async def end_session(self, id_hash: str, now: datetime) -> bool:
        return bool((await self._write(web_sessions.end_session(id_hash, rfc3339(now)), now)).value["ended"])

    async def purge_sessions(self, idle_cutoff: datetime, batch: int, now: datetime) -> int:
        unit = web_sessions.purge_sessions(rfc3339(now), rfc3339(idle_cutoff), batch)
        return int((await self._write(unit, now)).value["deleted"])

    async def person_by_national_id(self, national_id_hash: str) -> Record | None:
        async with self._read() as reader:
            return await web_sessions.person_by_national_id(reader, national_id_hash)

    # The organizer's desk.
    async def search_clients(self, query: ClientQuery, limit: int, before: int | None) -> Page:
        async with self._read() as reader:
            return await desk.search_clients(reader, query, limit, before)

    async def search_providers(self, query: ProviderQuery, limit: int, before: int | None) -> Page:
        async with self._read() as reader:
            return await desk.search_providers(reader, query, limit, before)
