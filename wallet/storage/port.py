"""The storage port: what the service needs from a database, and nothing of how.

Every write method is one atomic unit: it commits whole or not at all, and returns only once
its commit is durable. Methods that move money take an optional ``Idempotency``: a replay with
the same key and fingerprint returns the first outcome (a value or an ``OperationError``), the
same key with another fingerprint raises ``IdempotencyKeyReuse``.

Values cross the port as plain JSON-able dicts so that an outcome can be stored with its key.
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol, TypeVar

from wallet.ledger.bank_statements import Statement
from wallet.ledger.charges import IdentityMethod
from wallet.ledger.errors import OperationError
from wallet.ledger.months import UnusedPolicy
from wallet.ledger.parties import RepresentationScope
from wallet.ledger.reconciliation import Invoice
from wallet.ledger.settlements import SettlementStatus

Record = dict[str, Any]

# Who is acting, for the audit log: set per request to the principal's scope and carried by the
# adapter into the unit of work. Background jobs act as "system".
ACTOR: ContextVar[str] = ContextVar("wallet_actor", default="system")

T = TypeVar("T")


# Every class ``by_fields`` made, with its reducer: the writer process's frames (``sqlite/frames.py``)
# put them in the pickler's dispatch table, looked up before the slower ``__reduce_ex__``.
REDUCERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def by_fields(cls: type[T]) -> type[T]:
    """Pickle a frozen dataclass as its class and its field values in order: the form in which a
    unit's arguments cross to the writer process, several times cheaper than pickle's default for
    dataclasses (a state dict rebuilt through copyreg), and these cross once per write."""
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    # The values in one C call (a tuple of them: ``attrgetter`` of two names or more); a generator of
    # ``getattr`` cost twice as much, and a charge's request pickles two of these.
    values = operator.attrgetter(*names) if len(names) > 1 else (lambda self: (getattr(self, names[0]),))

    def __reduce__(self: Any) -> tuple[Any, ...]:
        return (cls, values(self))

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    REDUCERS[cls] = __reduce__
    return cls


@by_fields
@dataclass(frozen=True)
class Idempotency:
    scope: str  # whose keys: one principal's
    key: str
    fingerprint: str  # hash of method, path and body


@dataclass(frozen=True)
class Written:
    """A write's value, and whether it was replayed from an idempotency key."""

    value: Record
    replayed: bool = False


@dataclass(frozen=True)
class Refusal:
    """An operation that wrote something (a failed attempt) yet answers with an error."""

    error: OperationError


@dataclass(frozen=True)
class Page:
    data: list[Record]
    next_cursor: int | None  # the position to continue below, or None at the end


@by_fields
@dataclass(frozen=True)
class NewClient:
    name: str
    phone_hash: str  # keyed hash of the E.164 number: how a wallet is found
    phone_ciphertext: str  # the number, encrypted: how an SMS finds the client
    national_id_hash: str | None


@by_fields
@dataclass(frozen=True)
class NewBudget:
    client_id: str
    start_month: str
    end_month: str
    unused: UnusedPolicy
    lines: tuple[tuple[str, int], ...]  # (category, monthly amount in cents)


@by_fields
@dataclass(frozen=True)
class NewDecision:
    """A decision on a budget (``wallet.service.decisions``), its document rendered before the write."""

    id: str
    number: str
    budget_id: str
    client_id: str
    kind: str  # ``grant``: the budget itself; ``change``: its lines from ``from_month`` on
    from_month: str
    language: str
    decided_by: str
    calculation: str  # JSON text, as stored
    lines: tuple[tuple[str, int], ...]  # (category, the amount of most months) for ``budget_lines``
    schedule: tuple[tuple[str, str, int], ...]  # (month, category, amount) from ``from_month`` on
    prices: tuple[tuple[str, int], ...]  # (catalog service code, unit value used): checked again in the write
    document: bytes
    document_sha256: str


@by_fields
@dataclass(frozen=True)
class NewProvider:
    name: str
    business_id: str
    iban: str
    categories: tuple[str, ...]


@by_fields
@dataclass(frozen=True)
class NewRepresentation:
    """A mandate for a representative, found (or made) by the keyed hash of their phone."""

    client_id: str
    scope: RepresentationScope
    name: str | None
    phone_hash: str
    phone_ciphertext: str
    national_id_hash: str | None


@by_fields
@dataclass(frozen=True)
class NewService:
    code: str
    category: str
    name_fi: str
    name_sv: str
    name_en: str | None
    unit: str  # a ``ServiceUnit``
    unit_value: int  # cents, in force from ``valid_from``
    valid_from: str  # the day it is created, in the organizer's time zone


@by_fields
@dataclass(frozen=True)
class NewOffer:
    provider_id: str
    service: str  # the service's code
    unit_price: int  # cents
    description: str | None
    municipalities: tuple[str, ...]
    languages: tuple[str, ...]
    address: str | None


@by_fields
@dataclass(frozen=True)
class OfferChange:
    """What changes; None: stays as it is."""

    unit_price: int | None
    description: str | None
    municipalities: tuple[str, ...] | None
    languages: tuple[str, ...] | None
    address: str | None


@by_fields
@dataclass(frozen=True)
class OfferFilter:
    """The comparison's question: offers of one service, in one municipality, in one language."""

    service: str | None
    municipality: str | None
    language: str | None


@by_fields
@dataclass(frozen=True)
class ChargeCommand:
    provider_id: str
    phone_hash: str
    amount: int
    category: str
    description: str | None
    method: IdentityMethod
    national_id_hash: str | None = None  # for method national_id
    otp_hash: str | None = None  # for method otp
    otp_expires_at: datetime | None = None  # for methods otp and app: when the hold lapses


@by_fields
@dataclass(frozen=True)
class ChargeItemCommand:
    service: str  # the service's code
    quantity_hundredths: int
    service_date: str | None  # YYYY-MM-DD; None: today


@dataclass(frozen=True)
class WriterStats:
    """How the single writer is doing, for readiness and metrics."""

    alive: bool
    queue_depth: int  # writes waiting for the writer
    batches: int  # batches committed since start
    last_batch_size: int
    last_commit_seconds: float
    seconds_since_progress: float  # since the last batch ended, committed or undone by a fault
    storage_fault: bool  # the last batch failed on a storage fault (disk full, I/O error)


# Called after each commit with the batch's size and how long it took, from the writer's thread.
CommitObserver = Callable[[int, float], None]


@by_fields
@dataclass(frozen=True)
class Limits:
    """The guessing limits the storage enforces inside its transactions."""

    identity_failures_max: int
    identity_failures_window_seconds: int
    provider_identity_failures_max: int
    otp_max_attempts: int
    login_code_max_attempts: int
    login_requests_max: int
    login_requests_window_seconds: int
    extra: dict[str, int] = field(default_factory=dict)


class Storage(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    def writer_stats(self) -> WriterStats: ...
    def observe_commits(self, observer: CommitObserver) -> None: ...

    # Organizer.
    async def create_category(self, code: str, name: str, now: datetime) -> Record: ...
    async def list_categories(self) -> list[Record]: ...
    async def create_client(self, client: NewClient, now: datetime) -> Record: ...
    async def get_client(self, client_id: str) -> Record: ...
    async def identity_lockout(self, kind: str, owner_id: str, limits: Limits, now: datetime) -> Record: ...
    async def create_budget(self, budget: NewBudget, now: datetime) -> Record: ...
    # A client's budgets, newest first; ending one sooner (``wallet.ledger.months.check_new_end``
    # decides, inside the write, against the months already credited).
    async def list_budgets(self, client_id: str, limit: int, before: int | None) -> Page: ...
    async def end_budget(
        self, client_id: str, budget_id: str, end_month: str, current_month: str, now: datetime
    ) -> Record: ...
    # Decisions (``wallet.storage.sql.decisions``): a budget granted or changed with its decision.
    async def plan_prices(self, codes: Sequence[str], today: str) -> dict[str, Record]: ...
    async def get_budget(self, client_id: str, budget_id: str) -> Record: ...
    async def grant_budget(self, budget: NewBudget, decision: NewDecision, today: str, now: datetime) -> Record: ...
    async def change_budget(self, decision: NewDecision, current_month: str, today: str, now: datetime) -> Record: ...
    async def client_decisions(self, client_id: str) -> list[Record]: ...
    async def queue_statement_notices(self, month: str, now: datetime) -> int: ...
    async def store_statement_document(
        self, client_id: str, month: str, language: str, document: bytes, now: datetime
    ) -> Record: ...
    async def statement_document(self, client_id: str, month: str, language: str) -> tuple[Record, bytes] | None: ...
    async def statements_to_store(self, month: str, limit: int) -> list[Record]: ...
    async def unsent_notices(self, after: int, limit: int, client_id: str | None) -> list[Record]: ...
    async def mark_notices_sent(self, seqs: Sequence[int], now: datetime) -> int: ...
    async def decision_document(
        self, client_id: str, decision_id: str | None, budget_id: str | None
    ) -> tuple[Record, bytes]: ...
    async def create_provider(self, provider: NewProvider, now: datetime) -> Record: ...
    async def set_provider_status(self, provider_id: str, status: str, now: datetime) -> Record: ...
    async def get_provider(self, provider_id: str) -> Record: ...
    async def add_provider_credential(
        self, provider_id: str, client_id: str, secret_hash: str, now: datetime
    ) -> None: ...
    async def get_provider_credential(self, client_id: str) -> Record | None: ...

    # The service catalog (``wallet/ledger/catalog.py``). ``today``: the day in the organizer's
    # time zone, for the unit value in force and for refusing a new one on a past day.
    async def create_service(self, service: NewService, now: datetime) -> Record: ...
    async def add_unit_value(
        self, service_id: str, unit_value: int, valid_from: str, today: str, now: datetime
    ) -> Record: ...
    async def get_service(self, service_id: str, today: str) -> Record: ...
    async def list_services(self, category: str | None, today: str, limit: int, before: int | None) -> Page: ...

    # Providers' offers: made, changed and withdrawn by the provider (or the organizer for it).
    async def create_offer(self, offer: NewOffer, now: datetime) -> Record: ...
    async def change_offer(self, provider_id: str, offer_id: str, change: OfferChange, now: datetime) -> Record: ...
    async def withdraw_offer(self, provider_id: str, offer_id: str, now: datetime) -> Record: ...
    async def list_provider_offers(self, provider_id: str, limit: int, before: int | None) -> Page: ...
    async def compare_offers(
        self, offer_filter: OfferFilter, today: str, limit: int, after: tuple[int, int, int] | None
    ) -> tuple[list[Record], tuple[int, int, int] | None]:
        """Active offers of approved providers (approved for the service's category), by own share
        per unit, then unit price, then age; ``after``: the last one's position on the page before."""
        ...

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
        """One step of the credit run, its own transaction. ``plan_ahead``, the caller's clock: the
        caller will ask for the next step at once, and this process may spend a core working it out
        meanwhile, stamped with that clock's time then (an adapter may ignore it); the outcome is
        the same either way."""
        ...

    async def credit_run_summary(self, month: str) -> Record: ...

    async def credit_run_budgets(self, month: str) -> int:
        """How many budgets a credit run of ``month`` goes through (its progress bar's total)."""
        ...

    async def gather_statistics(self) -> None:
        """After a credit run that wrote: let the database's planner know the sizes and spread of
        the tables it filled and the charges read (PostgreSQL: ``ANALYZE``, which a server without
        autovacuum never runs by itself)."""
        ...

    async def idempotent_lookup(self, idempotency: Idempotency) -> Written | None: ...
    async def idempotent_store(self, idempotency: Idempotency, value: Record, now: datetime) -> Written: ...

    # Providers.
    async def charge(
        self, command: ChargeCommand, limits: Limits, now: datetime, month: str, idempotency: Idempotency | None
    ) -> Written: ...
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
        """``charge`` of the items' amount in their category (``command``'s own amount and category are
        not read), each item priced inside the same transaction (``wallet.ledger.catalog.price_item``)."""
        ...

    async def confirm_charge(
        self,
        provider_id: str,
        charge_id: str,
        code_hash: str,
        limits: Limits,
        now: datetime,
        idempotency: Idempotency | None,
    ) -> Written: ...
    async def void_charge(
        self, provider_id: str, charge_id: str, now: datetime, idempotency: Idempotency | None
    ) -> Written: ...
    async def refund(
        self, provider_id: str, charge_id: str, amount: int, now: datetime, idempotency: Idempotency | None
    ) -> Written: ...
    async def expire_pending(self, now: datetime, batch: int) -> int: ...
    async def claim_receipts(self, now: datetime, lease_seconds: int, attempts_max: int, batch: int) -> list[Record]:
        """Unsent receipts (at most ``batch``), each claimed for ``lease_seconds``, with what its text needs."""
        ...

    async def mark_receipts_sent(self, event_seqs: Sequence[int], now: datetime) -> None:
        """The receipts of these events were sent (one write for all)."""
        ...

    async def purge_idempotency_keys(self, older_than: datetime, batch: int, now: datetime) -> int: ...
    async def get_charge(self, provider_id: str, charge_id: str) -> Record: ...
    async def list_charges(self, provider_id: str, limit: int, before: int | None, status: str | None) -> Page: ...

    # Clients.
    # Login by SMS code. ``start_login`` stores a code for the phone's client or, for a phone that
    # is no client's, for its representative with at least one active mandate; False: neither.
    async def start_login(
        self, phone_hash: str, code_hash: str, expires_at: datetime, limits: Limits, now: datetime
    ) -> bool: ...
    async def verify_login(
        self, phone_hash: str, code_hash: str, client_id: str | None, limits: Limits, now: datetime
    ) -> Record:
        """Spend the code; say whose token to issue: ``{"role": "client", "client_id"}`` or
        ``{"role": "representative", "representative_id", "client_ids", "client_id"}``.

        ``client_id`` chooses: the phone's own client, or one the representative has an active
        mandate for (else ``Forbidden``, and the code is not spent). Without it, the phone's own
        client if there is one, else the representative with its only client chosen, if only one.
        A wrong or expired code is ``IdentityCheckFailed``."""
        ...

    async def get_wallet(self, client_id: str, month: str) -> Record: ...
    async def list_transactions(self, client_id: str, limit: int, before: int | None) -> Page: ...

    # The wallet event log. Every change to a wallet line appends an event in its own transaction;
    # ids (``seq``) rise in commit order. ``get_wallet`` names the last event id it stands at.
    async def list_wallet_events(self, client_id: str, after: int, limit: int) -> list[Record]: ...
    def watch_wallet_events(self, listener: Callable[[dict[str, int]], None]) -> None:
        """Call ``listener`` on the event loop after each commit that appended wallet events, with
        the newest event id of each client concerned. A hint to look, never the events themselves."""
        ...

    # Charges made with the app method wait for their client: approve captures, decline voids. A
    # client sees and answers only its own charges.
    async def answer_charge(
        self, client_id: str, charge_id: str, approve: bool, now: datetime, idempotency: Idempotency | None
    ) -> Written: ...
    async def list_client_charges(self, client_id: str, limit: int, before: int | None, status: str | None) -> Page: ...

    # A monthly statement's figures, in one snapshot: wallet-line balances per category booked
    # before ``start`` and before ``until``, the postings between (summed per type, category and
    # provider), and what pending charges held at ``until``.
    async def statement_figures(self, client_id: str, start: datetime, until: datetime) -> Record: ...
    async def statement_with_rows(self, client_id: str, start: datetime, until: datetime, rows_max: int) -> Record: ...

    # Representatives (see wallet/storage/sqlite/representatives.py). A mandate is active until revoked.
    async def create_representation(self, representation: NewRepresentation, now: datetime) -> Record: ...
    async def list_representations(self, client_id: str, limit: int, before: int | None) -> Page: ...
    async def revoke_representation(self, client_id: str, representation_id: str, now: datetime) -> Record: ...
    async def active_mandate(self, representative_id: str, client_id: str) -> Record | None:
        """The active mandate (``id``, ``scope``) of a representative for a client, or None."""
        ...

    async def list_mandates(self, representative_id: str) -> list[Record]:
        """Every active mandate of a representative, with its client's name."""
        ...

    async def answer_charge_for(
        self,
        representative_id: str,
        client_id: str,
        charge_id: str,
        approve: bool,
        now: datetime,
        idempotency: Idempotency | None,
    ) -> Written:
        """``answer_charge`` by a representative: its active ``manage`` mandate for the client is
        checked in the same transaction as the answer (``Forbidden`` without one)."""
        ...

    # The organizer's view of use: one snapshot of every wallet line's figures for the month
    # [start, end): monthly amount, credited, used (captures less refunds), held and balance at
    # ``end``, and each provider's captures and refunds in the month.
    async def usage_figures(self, month: str, start: datetime, end: datetime) -> Record: ...

    # Settlements. ``provider_id=None`` reads every provider's (finance); a provider's id, its own.
    async def settle(
        self, provider_id: str, until: datetime, items_max: int, now: datetime, idempotency: Idempotency | None
    ) -> Written: ...
    async def unsettled_by_provider(self, until: datetime) -> list[Record]:
        """Every provider with captures or refunds made at or before ``until`` in no batch yet:
        ``{provider_id, net, count}``, net in cents (captures less refunds)."""
        ...

    async def set_settlement_status(
        self,
        settlement_id: str,
        status: SettlementStatus,
        note: str | None,
        now: datetime,
        idempotency: Idempotency | None,
    ) -> Written: ...
    async def get_settlement(
        self, settlement_id: str, provider_id: str | None, lines_limit: int, lines_after: int | None
    ) -> Record: ...
    async def list_settlements(
        self, provider_id: str | None, limit: int, before: int | None, status: str | None
    ) -> Page: ...

    # Finance exports: pages of at most ``page_rows`` rows, created in [start, end), oldest first,
    # as the ledger stood when the export began.
    def export_transactions(
        self, start: datetime | None, end: datetime | None, page_rows: int
    ) -> AsyncIterator[list[Record]]: ...
    def export_settlements(
        self, start: datetime | None, end: datetime | None, page_rows: int
    ) -> AsyncIterator[list[Record]]: ...
    def export_items(
        self, start: datetime | None, end: datetime | None, page_rows: int
    ) -> AsyncIterator[list[Record]]: ...

    # Invoice reconciliation: judge each invoice; a matched batch becomes invoiced.
    async def reconcile(
        self, invoices: tuple[Invoice, ...], source: str, now: datetime, idempotency: Idempotency | None
    ) -> Written: ...

    # Payment batches (pain.001): made from settlements owed, cancelled to free them, read.
    async def create_payment_batch(
        self,
        settlement_ids: tuple[str, ...] | None,
        payer: tuple[str, str, str],
        execution_date: str,
        settlements_max: int,
        now: datetime,
        idempotency: Idempotency | None,
    ) -> Written: ...

    async def cancel_payment_batch(self, batch_id: str, now: datetime, idempotency: Idempotency | None) -> Written: ...

    async def get_payment_batch(self, batch_id: str) -> Record: ...

    # Page sessions: opened at sign-in, read on each request made with the cookie, touched, ended.
    async def open_session(self, session: NewSession, now: datetime) -> None: ...
    async def find_session(self, id_hash: str) -> Record | None: ...
    async def touch_session(self, id_hash: str, now: datetime) -> None: ...
    async def end_session(self, id_hash: str, now: datetime) -> bool: ...
    # Forget up to ``batch`` ended sessions (signed out, expired, or unused since ``idle_cutoff``).
    async def purge_sessions(self, idle_cutoff: datetime, batch: int, now: datetime) -> int: ...

    # Sign-in by national id: ``{"role": "client", "client_id"}``, ``{"role": "representative",
    # "representative_id", "client_ids"}`` (active mandates), or None for neither.
    async def person_by_national_id(self, national_id_hash: str) -> Record | None: ...

    # The organizer's desk (``sql/desk.py``): clients and providers found by name, phone, national id
    # or business id, newest first.
    async def search_clients(self, query: ClientQuery, limit: int, before: int | None) -> Page: ...
    async def search_providers(self, query: ProviderQuery, limit: int, before: int | None) -> Page: ...

    # Bank statements: judge each entry; a paying debit makes its batch paid, a returned one re-opens it.
    async def apply_bank_statement(
        self, statement: Statement, now: datetime, idempotency: Idempotency | None
    ) -> Written: ...


# Page sessions (OpenID Connect sign-in), kept by the keyed hash of the cookie's secret.
@dataclass(frozen=True)
class NewSession:
    id_hash: str
    audience: str
    role: str
    subject: str
    name: str | None
    client_id: str | None
    representative_id: str | None
    client_ids: tuple[str, ...]
    created_at: str
    expires_at: str


@dataclass(frozen=True)
class ClientQuery:
    """What the organizer's desk looks a client up by: any of these matches (none: every client)."""

    name: str | None = None  # a part of the name
    phone_hash: str | None = None
    national_id_hash: str | None = None


@dataclass(frozen=True)
class ProviderQuery:
    name: str | None = None  # a part of the name
    business_id: str | None = None
    status: str | None = None  # only providers in this status
