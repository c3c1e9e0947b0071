"""What finance's routes answer: settlements, invoice reconciliations, bank statements, payment
batches and the usage report."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from wallet.ledger.bank_statements import Direction, EntryOutcome, StatementKind
from wallet.ledger.catalog import ServiceUnit
from wallet.ledger.payments import PaymentBatchStatus
from wallet.ledger.reconciliation import InvoiceSource, Outcome
from wallet.ledger.settlements import SettlementStatus
from wallet.ledger.transactions import TransactionType
from wallet.shapes.fields import Cents, Count, NextCursor, Positive, TimeZone
from wallet.validation import (
    CategoryCode,
    Iban,
    Id,
    Moment,
    Month,
    Name,
)

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


# Reconciliation, bank statements, payment batches and the usage report.


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
