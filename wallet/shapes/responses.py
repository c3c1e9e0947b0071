"""The objects the API answers with, declared as msgspec ``Struct``s for the OpenAPI document: the
service renders plain dicts, these say what those dicts hold (``tests/test_openapi.py`` checks real
responses against the generated schemas, every object closed). Names are the schemas' names."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from wallet.ledger.bank_statements import Direction, EntryOutcome, StatementKind
from wallet.ledger.catalog import OfferStatus, ServiceUnit
from wallet.ledger.charges import ChargeStatus, IdentityMethod, VoidReason
from wallet.ledger.months import UnusedPolicy
from wallet.ledger.parties import ProviderStatus, RepresentationScope, RepresentationStatus
from wallet.ledger.payments import PaymentBatchStatus
from wallet.ledger.reconciliation import InvoiceSource, Outcome
from wallet.ledger.settlements import SettlementStatus
from wallet.ledger.transactions import TransactionType
from wallet.shapes.requests import Amount, ServiceName
from wallet.validation import (
    Address,
    BusinessId,
    CategoryCode,
    Day,
    Description,
    Iban,
    Id,
    LanguageCode,
    Moment,
    Month,
    MunicipalityCode,
    Name,
    Phone,
)

Cents = Annotated[int, Meta(description="Integer cents (EUR).")]
Count = Annotated[int, Meta(ge=0)]
Positive = Annotated[int, Meta(ge=1)]
E164 = Annotated[Phone, Meta(description="E.164.")]
NextCursor = Annotated[str | None, Meta(description="Give as `cursor` for the next page; null on the last page.")]
TimeZone = Annotated[str, Meta(examples=["Europe/Helsinki"])]


# Operations.


class Health(Struct):
    status: Literal["ok"]


class Check(Struct):
    status: Literal["ok", "failing"]
    detail: str


class Readiness(Struct):
    status: Literal["ready"]
    checks: dict[str, Check]


# Tokens.


class Token(Struct):
    access_token: Annotated[str, Meta(description="A JWT (EdDSA).")]
    token_type: Literal["Bearer"]
    expires_in: Annotated[int, Meta(ge=1, description="Seconds.")]


class LoginStarted(Struct):
    """The same answer whether or not the phone has a wallet."""

    status: Literal["code_sent"]
    expires_at: Moment


# Organizer.


class Category(Struct):
    code: CategoryCode
    name: Name
    created_at: Moment


class CategoryList(Struct):
    """Every category, in one page."""

    data: list[Category]
    next_cursor: None


# The service catalog and offers.


class UnitValue(Struct):
    valid_from: Day
    unit_value: Cents


class Service(Struct):
    id: Id
    code: CategoryCode
    category: CategoryCode
    name: ServiceName
    unit: ServiceUnit
    unit_value: Annotated[Cents | None, Meta(description="In force today; null before the first value's day.")]
    unit_values: Annotated[list[UnitValue], Meta(description="Every value set, oldest first; the past is kept.")]
    created_at: Moment


class ServicePage(Struct):
    data: list[Service]
    next_cursor: NextCursor


class Municipality(Struct):
    code: MunicipalityCode
    name: Annotated[str, Meta(description="In Finnish.")]


class MunicipalityList(Struct):
    """Every municipality an offer may name, by name, in one page."""

    data: list[Municipality]
    next_cursor: None


class OfferPrice(Struct):
    unit_price: Cents
    valid_from: Moment


class Offer(Struct):
    id: Id
    provider_id: Id
    service: CategoryCode
    service_id: Id
    status: OfferStatus
    unit_price: Annotated[Cents, Meta(description="The price now.")]
    unit_prices: Annotated[list[OfferPrice], Meta(description="Every price it has had, oldest first.")]
    description: Description | None
    municipalities: list[MunicipalityCode]
    languages: list[LanguageCode]
    address: Address | None
    created_at: Moment
    updated_at: Moment
    withdrawn_at: Moment | None


class OfferPage(Struct):
    data: list[Offer]
    next_cursor: NextCursor


class ComparedOffer(Struct):
    offer_id: Id
    provider_id: Id
    provider_name: Name
    service: CategoryCode
    service_name: ServiceName
    category: Annotated[CategoryCode, Meta(description="The budget line the service is paid from.")]
    unit: ServiceUnit
    unit_price: Cents
    unit_value: Annotated[Cents, Meta(description="In force today: the most the budget pays for one unit.")]
    own_share_per_unit: Annotated[Cents, Meta(description="max(0, unit_price - unit_value): paid by the client.")]
    municipalities: list[MunicipalityCode]
    languages: list[LanguageCode]
    address: Address | None
    description: Description | None
    units_left: (
        Annotated[
            Count,
            Meta(
                description="Asked by a client, or a representative acting for one: whole units that what is"
                " available now on the client's line of `category` pays for at this offer,"
                " floor(available / min(unit_price, unit_value)); 0 without such a line."
            ),
        ]
        | UnsetType
    ) = UNSET


class ComparedOfferPage(Struct):
    data: list[ComparedOffer]
    next_cursor: NextCursor


class IdentityLockout(Struct):
    """Failed identity checks in the window, and until when further checks are refused."""

    failures: Count
    max_failures: Positive
    window_seconds: Positive
    locked_until: Moment | None


class Client(Struct, kw_only=True):
    id: Id
    name: Name
    phone: E164
    has_national_id: bool
    created_at: Moment


class ClientDetail(Client, kw_only=True):
    identity_lockout: IdentityLockout


class Representation(Struct):
    """A representative's mandate (puolesta-asiointi) for one client."""

    id: Annotated[Id, Meta(description="The mandate's id (revoke with it).")]
    client_id: Id
    representative_id: Annotated[Id, Meta(description="The person: one id per phone, across clients.")]
    name: str | None
    phone: E164
    has_national_id: bool
    scope: RepresentationScope
    status: RepresentationStatus
    created_at: Moment
    revoked_at: Moment | None


class RepresentationPage(Struct):
    data: list[Representation]
    next_cursor: NextCursor


class Mandate(Struct):
    id: Id
    client_id: Id
    client_name: Name
    scope: RepresentationScope
    created_at: Moment


class MandateList(Struct):
    """Every active mandate, in one page."""

    data: list[Mandate]
    next_cursor: None


class PlanItemCost(Struct):
    service: str
    category: CategoryCode
    quantity: str
    per: Literal["day", "week", "month", "year"]
    weeks_per_year: int | None
    unit_price: Annotated[int, Meta(description="Cents a unit: the catalog's unit value in force, or given.")]
    priced_from: Literal["catalog", "given"]
    note: str | None
    yearly_amount: int


class CalculatedLine(Struct):
    category: CategoryCode
    monthly_amount: Annotated[int, Meta(description="Cents; a calculated line's amount in most months.")]
    yearly_amount: int | None = None
    monthly_amounts: (
        Annotated[
            list[int],
            Meta(
                description="A new decision's twelve monthly credits, the budget's first month first (it carries "
                "the rounding cents); they add up to `yearly_amount` exactly."
            ),
        ]
        | None
    ) = None


class Decision(Struct):
    id: Id
    number: Annotated[str, Meta(examples=["HB-2026-3FA2-91BC-0D4E"])]
    budget_id: Id
    client_id: Id
    kind: Literal["grant", "change"]
    from_month: Month
    language: Literal["fi", "sv"]
    decided_by: str
    document_sha256: Annotated[str, Meta(description="SHA-256 (hex) of the PDF as issued.")]
    created_at: Moment


class DecisionPage(Struct):
    data: list[Decision]
    next_cursor: NextCursor


class Budget(Struct):
    id: Id
    client_id: Id
    start_month: Month
    end_month: Month
    unused: UnusedPolicy
    lines: list[CalculatedLine]
    created_at: Moment
    yearly_amount: (
        Annotated[int, Meta(description="A new decision's calculation: the lines' yearly sum, cents.")] | None
    ) = None
    plan: list[PlanItemCost] | None = None
    decision: Decision | None = None


class BudgetPage(Struct):
    data: list[Budget]
    next_cursor: NextCursor


class Provider(Struct, kw_only=True):
    id: Id
    name: Name
    business_id: BusinessId
    iban: Iban
    status: ProviderStatus
    categories: list[CategoryCode]
    created_at: Moment
    updated_at: Moment


class ProviderDetail(Provider, kw_only=True):
    identity_lockout: IdentityLockout


class ProviderCredentials(Struct):
    """The secret is shown once; only its hash is kept."""

    client_id: Id
    client_secret: str
    provider_id: Id


class CreditRun(Struct):
    month: Month
    credited: Annotated[
        int, Meta(ge=0, description="Lines credited for the month in all (staged ahead of the month or released).")
    ]
    amount: Annotated[int, Meta(ge=0, description="Cents credited for the month in all.")]
    credited_now: Annotated[
        int, Meta(ge=0, description="Lines this call credited (ahead of the month: staged, not yet spendable).")
    ]
    expired_now: Annotated[int, Meta(ge=0, description="Lines this call expired.")]
    released_now: Annotated[
        int, Meta(ge=0, description="Lines whose credit, staged ahead, this call made spendable.")
    ] = 0


# Providers.


class PricedItem(Struct):
    """An item as priced when the charge was made: later changes of price or unit value leave it be."""

    service: CategoryCode
    quantity: Annotated[str, Meta(examples=["1.5"], description="Units, as a decimal string.")]
    unit_price: Cents
    unit_value: Annotated[Cents, Meta(description="In force on the service date.")]
    amount: Annotated[Cents, Meta(description="Paid by the budget: min(unit_price, unit_value) x quantity.")]
    own_share: Annotated[Cents, Meta(description="Paid by the client to the provider directly, not from the wallet.")]
    service_date: Day


class Charge(Struct, kw_only=True):
    id: Id
    status: ChargeStatus
    amount: Amount
    category: CategoryCode
    method: IdentityMethod
    description: Description | None
    created_at: Moment
    refunded_amount: Count
    expires_at: Annotated[Moment, Meta(description="While pending: when the hold is released.")] | UnsetType = UNSET
    captured_at: Moment | UnsetType = UNSET
    voided_at: Moment | UnsetType = UNSET
    void_reason: VoidReason | UnsetType = UNSET
    own_share: (
        Annotated[Cents, Meta(description="Itemized: the items' own shares, paid to the provider directly.")]
        | UnsetType
    ) = UNSET
    items: Annotated[list[PricedItem], Meta(description="Itemized charges only.")] | UnsetType = UNSET


class ChargePage(Struct):
    data: list[Charge]
    next_cursor: NextCursor


class ClientCharge(Charge, kw_only=True):
    provider_id: Id
    provider_name: Name


class ClientChargePage(Struct):
    data: list[ClientCharge]
    next_cursor: NextCursor


class Refund(Struct):
    id: Id
    charge_id: Id
    amount: Amount
    status: Literal["succeeded"]
    created_at: Moment
    charge: Charge


# Settlements.


class Settlement(Struct, kw_only=True):
    id: Id
    provider_id: Id
    reference: Annotated[str, Meta(pattern="^[0-9]+$", description="Finnish reference (viitenumero).")]
    reference_printed: Annotated[str, Meta(description="The reference in groups of five.")]
    rf_reference: Annotated[str, Meta(pattern="^RF[0-9]{2}[0-9A-Z]+$", description="ISO 11649.")]
    rf_reference_printed: str
    amount: Annotated[int, Meta(description="Net cents owed to the provider; negative: owed by it.")]
    count: Positive
    period_start: Moment
    period_end: Moment
    until: Moment
    status: SettlementStatus
    transaction_id: Annotated[str | None, Meta(description="Null exactly when the amount is 0.")]
    created_at: Moment
    updated_at: Moment


class NewSettlementResult(Settlement, kw_only=True):
    more_to_settle: Annotated[bool, Meta(description="More lines wait for the next batch.")]


class SettlementEvent(Struct):
    previous_status: SettlementStatus | None
    status: SettlementStatus
    actor: str
    at: Moment
    note: str | None


class SettlementLine(Struct):
    transaction_id: Id
    type: Annotated[
        str, Meta(extra_json_schema={"enum": [TransactionType.CAPTURE.value, TransactionType.REFUND.value]})
    ]
    charge_id: str | None
    refund_id: str | None
    category: str | None
    amount: Annotated[int, Meta(description="Signed: on the provider's payable account.")]
    created_at: Moment


class SettlementDetail(Settlement, kw_only=True):
    events: list[SettlementEvent]
    lines: list[SettlementLine]
    lines_next_cursor: Annotated[str | None, Meta(description="`cursor` for the next page of lines.")]


class ListedSettlement(Settlement, kw_only=True):
    payment_batch_id: Annotated[
        Id | None, Meta(description="The payment batch (not cancelled) that holds it; null while in none.")
    ]


class SettlementPage(Struct):
    data: list[ListedSettlement]
    next_cursor: NextCursor


# Finance.


class ReconciledInvoice(Struct, kw_only=True):
    position: Positive
    invoice_number: str | None
    reference: str | None
    business_id: str | None
    amount: Annotated[int | None, Meta(description="Cents.")]
    outcome: Outcome
    detail: str | None
    settlement_id: str | None
    sender: Annotated[str | None, Meta(description="From the bank channel's transmission frame: its sender (OVT).")]
    invoice_total: Annotated[
        int | None,
        Meta(description="Cents, the invoice's total; `amount` (what is to pay) is less when partly prepaid."),
    ]
    finvoice_version: Annotated[str | None, Meta(description="Finvoice's `Version`: `3.0` or `2.01`.")]
    settlement_amount: Annotated[int, Meta(description="With amount_mismatch: what the batch is.")] | UnsetType = UNSET


# One count per outcome, each named by it.
ReconciliationSummary = msgspec.defstruct("ReconciliationSummary", [(outcome.value, Count) for outcome in Outcome])


class Reconciliation(Struct):
    id: Id
    source: InvoiceSource
    created_at: Moment
    summary: ReconciliationSummary  # type: ignore[valid-type]
    invoices: list[ReconciledInvoice]


class BankStatementEntry(Struct, kw_only=True):
    position: Positive
    direction: Annotated[Direction, Meta(description="`DBIT` a payment out; `CRDT` money in (a payment returned).")]
    amount: Annotated[int | None, Meta(description="Cents.")]
    booking_date: Annotated[str | None, Meta(description="YYYY-MM-DD, as the bank booked it.")]
    entry_reference: Annotated[str | None, Meta(description="The bank's own reference of the entry (AcctSvcrRef).")]
    reference: Annotated[str | None, Meta(description="The structured creditor reference, as written.")]
    end_to_end_id: str | None
    outcome: EntryOutcome
    detail: str
    settlement_id: str | None
    settlement_amount: Annotated[int, Meta(description="With amount_mismatch: what the batch is.")] | UnsetType = UNSET


# One count per outcome, each named by it.
BankStatementSummary = msgspec.defstruct("BankStatementSummary", [(outcome.value, Count) for outcome in EntryOutcome])


class BankStatement(Struct):
    id: Id
    kind: StatementKind
    message_id: Annotated[str, Meta(description="The file's GrpHdr/MsgId.")]
    document_ids: Annotated[list[str], Meta(description="Each Stmt/Id or Ntfctn/Id: each is accepted once.")]
    created_at: Moment
    summary: BankStatementSummary  # type: ignore[valid-type]
    entries: list[BankStatementEntry]


class PaymentBatchSettlement(Struct):
    settlement_id: Id
    amount: Annotated[int, Meta(gt=0, description="Cents.")]
    reference: Annotated[str, Meta(description="The Finnish reference, the transfer's structured creditor reference.")]
    end_to_end_id: str
    creditor_name: str
    creditor_iban: Iban


class Payer(Struct):
    name: str
    iban: Iban
    bic: str


class PaymentBatch(Struct):
    id: Id
    message_id: Annotated[str, Meta(description="The file's MsgId and PmtInfId.")]
    status: PaymentBatchStatus
    count: Count
    amount: Annotated[int, Meta(gt=0, description="Cents: the file's control sum.")]
    execution_date: Annotated[str, Meta(description="YYYY-MM-DD, the requested execution date.")]
    created_at: Moment
    cancelled_at: Moment | None
    payer: Payer
    settlements: list[PaymentBatchSettlement]


class ServiceBought(Struct):
    service: CategoryCode
    unit: ServiceUnit
    quantity: Annotated[str, Meta(examples=["7.5"], description="Units in all, as a decimal string.")]
    amount: Annotated[Cents, Meta(description="Paid by the budget for them.")]
    own_share: Annotated[Cents, Meta(description="Paid by the client to the providers directly.")]
    count: Annotated[Positive, Meta(description="Items.")]


_BOUGHT = (
    "What was bought: per service, the items of the itemized charges captured in the month, as priced"
    " (refunds are amounts, in `refunded`, not taken off items)."
)


class LowUseRule(Struct):
    from_day: Annotated[int, Meta(ge=1, le=31)]
    percent: Annotated[int, Meta(ge=1, le=100)]
    evaluated: Annotated[bool, Meta(description="False before `from_day` of the current month.")]


class UsageTotals(Struct):
    """Every client of the month, whatever the page."""

    monthly_amount: Cents
    credited: Cents
    used: Cents
    held: Cents
    left: Cents
    charged: Annotated[int, Meta(description="Every provider's; equals `used`.")]
    clients: Count
    low_use_clients: Count


class UsageLine(Struct):
    category: CategoryCode
    monthly_amount: Annotated[int, Meta(description="The budget line for the month; 0 without one.")]
    credited: Annotated[int, Meta(description="The month's credit.")]
    used: Annotated[int, Meta(description="Captures less refunds booked in the month.")]
    held: Annotated[int, Meta(description="By charges pending at the close (now, for the current month).")]
    left: Annotated[int, Meta(description="Available on the line at the close: balance less held.")]


class UsageClient(Struct):
    """A client's figures: its lines summed."""

    client_id: Id
    name: Name
    monthly_amount: Cents
    credited: Cents
    used: Cents
    held: Cents
    left: Cents
    used_percent: Annotated[int | None, Meta(description="Whole percent of the month's amount used.")]
    low_use: Annotated[bool, Meta(description="Used less than the rule's percentage, late in the month.")]
    lines: list[UsageLine]
    bought: Annotated[list[ServiceBought], Meta(description=_BOUGHT)]


class UsageProvider(Struct):
    provider_id: Id
    provider_name: Name
    captured: Annotated[int, Meta(description="Captures booked in the month.")]
    refunded: Annotated[int, Meta(description="Refunds booked in the month (positive).")]
    charged: Annotated[int, Meta(description="captured - refunded.")]
    captures: Count
    refunds: Count
    bought: Annotated[list[ServiceBought], Meta(description=_BOUGHT)]


class UsageReport(Struct):
    month: Month
    time_zone: TimeZone
    period_start: Moment
    period_end: Annotated[Moment, Meta(description="Exclusive.")]
    complete: Annotated[bool, Meta(description="False for the current month: figures so far.")]
    as_of: Moment
    low_use_rule: LowUseRule
    totals: UsageTotals
    providers: list[UsageProvider]
    services: Annotated[list[ServiceBought], Meta(description=_BOUGHT + " Every client's, whatever the page.")]
    data: list[UsageClient]
    next_cursor: str | None


# Clients.


class Upcoming(Struct, kw_only=True):
    month: Month
    amount: Annotated[int, Meta(gt=0, description="Cents credited ahead for the month: not spendable yet.")]
    available_from: Annotated[Moment, Meta(description="The month's first midnight (WALLET_TIMEZONE).")]


class WalletLine(Struct, kw_only=True):
    category: CategoryCode
    balance: Cents
    held: Count
    available: Count
    monthly_amount: Count
    upcoming: Annotated[
        list[Upcoming], Meta(description="This line's credits staged ahead of their month, not in balance.")
    ]


class Wallet(Struct, kw_only=True):
    client_id: Id
    balance: Cents
    held: Count
    available: Count
    lines: list[WalletLine]
    upcoming: Annotated[
        list[Upcoming],
        Meta(
            description="Credits staged ahead of their month, by month over all lines: not in balance, not spendable."
        ),
    ]
    last_event_id: Annotated[str, Meta(description="The event stream position this state stands at.")] | UnsetType = (
        UNSET
    )


class WalletTransaction(Struct, kw_only=True):
    id: Id
    type: TransactionType
    amount: Annotated[int, Meta(description="Signed: what it moved on the wallet line.")]
    balance_after: Cents
    category: CategoryCode
    created_at: Moment
    charge_id: str | None
    refund_id: str | None
    provider_id: Id | UnsetType = UNSET
    provider_name: Name | UnsetType = UNSET
    own_share: (
        Annotated[Cents, Meta(description="A capture of an itemized charge: paid to the provider directly.")]
        | UnsetType
    ) = UNSET
    items: Annotated[list[PricedItem], Meta(description="A capture of an itemized charge: its items.")] | UnsetType = (
        UNSET
    )


class WalletTransactionPage(Struct):
    data: list[WalletTransaction]
    next_cursor: NextCursor


class CategoryTotal(Struct):
    category: CategoryCode
    amount: Cents
    count: Positive


class StatementByCategory(Struct):
    amount: Cents
    count: Count
    by_category: list[CategoryTotal]


class ProviderTotal(Struct):
    provider_id: Id
    provider_name: Name
    category: CategoryCode
    amount: Cents
    count: Positive


class StatementByProvider(Struct):
    amount: Cents
    count: Count
    by_provider: list[ProviderTotal]


class StatementCharges(StatementByProvider):
    own_share: Annotated[
        Cents, Meta(description="The own share of the itemized charges captured in the month: paid directly.")
    ]
    by_service: Annotated[
        list[ServiceBought], Meta(description="What the itemized charges captured in the month bought.")
    ]


class StatementLine(Struct):
    category: CategoryCode
    opening_balance: Cents
    credits: Cents
    charges: Cents
    refunds: Cents
    expiry: Cents
    closing_balance: Cents


class Statement(Struct):
    """opening_balance + credits - charges + refunds - expiry = closing_balance, for the wallet and for each
    line. Charges, refunds and expiry are positive amounts."""

    month: Month
    time_zone: TimeZone
    period_start: Annotated[Moment, Meta(description="The month's first midnight in `time_zone`.")]
    period_end: Annotated[Moment, Meta(description="The next month's first midnight (exclusive).")]
    complete: Annotated[bool, Meta(description="False for the current month: figures so far.")]
    as_of: Annotated[Moment, Meta(description="The closing instant: `period_end`, or now for the current month.")]
    opening_balance: Cents
    credits: StatementByCategory
    charges: StatementCharges
    refunds: StatementByProvider
    expiry: StatementByCategory
    closing_balance: Cents
    held_at_close: Annotated[int, Meta(description="Held by charges still pending at `as_of`: not a movement.")]
    lines: list[StatementLine]


class ClientPage(Struct):
    """The organizer's desk: clients found, newest first."""

    data: list[Client]
    next_cursor: NextCursor


class ProviderPage(Struct):
    """The organizer's desk: providers found, newest first."""

    data: list[Provider]
    next_cursor: NextCursor


RESPONSES: tuple[type[Struct], ...] = (
    Health,
    Readiness,
    Token,
    LoginStarted,
    Category,
    CategoryList,
    Client,
    ClientDetail,
    Representation,
    RepresentationPage,
    Mandate,
    MandateList,
    Budget,
    BudgetPage,
    Provider,
    ProviderDetail,
    ProviderCredentials,
    Service,
    ServicePage,
    Offer,
    OfferPage,
    ComparedOfferPage,
    MunicipalityList,
    CreditRun,
    Charge,
    ChargePage,
    ClientCharge,
    ClientChargePage,
    Refund,
    Settlement,
    NewSettlementResult,
    SettlementDetail,
    SettlementPage,
    Reconciliation,
    BankStatement,
    PaymentBatch,
    UsageReport,
    Wallet,
    WalletTransactionPage,
    Statement,
    ClientPage,
    ProviderPage,
)

RESPONSES += (DecisionPage,)  # decisions on budgets (wallet/api/handlers/documents.py)
