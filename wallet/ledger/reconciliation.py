"""Invoice reconciliation: does a received invoice ask for exactly what a settlement batch holds?

Each invoice gets one outcome, judged in this order:

1. ``unknown_reference``: no payment reference, one whose check digits fail (7-3-1 for the
   Finnish form, scheme ``SPY``; mod 97 for the RF form, scheme ``ISO``), or no batch has it.
2. ``business_id_mismatch``: the seller is not the batch's provider (compared as Y-tunnus digits).
3. ``duplicate``: the invoice was seen before (the same seller and invoice number already matched
   a batch), or its batch already has a matched invoice or is paid. Nothing is paid twice.
4. ``amount_mismatch``: the amount to pay is not the batch's amount (or cannot be read, or is not
   in euros).
5. ``matched``: the batch becomes invoiced.

Pure: the caller looks the batch up and asks ``judge``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, StrEnum

from wallet.ledger.reference import (
    compact_finnish_reference,
    finnish_from_rf,
    is_valid_finnish_reference,
)
from wallet.ledger.settlements import SettlementStatus


class Outcome(str, Enum):
    MATCHED = "matched"
    AMOUNT_MISMATCH = "amount_mismatch"
    UNKNOWN_REFERENCE = "unknown_reference"
    BUSINESS_ID_MISMATCH = "business_id_mismatch"
    DUPLICATE = "duplicate"


class InvoiceSource(StrEnum):
    FINVOICE = "finvoice"  # Finvoice 3.0 or 2.01 XML, bare or in the bank channel's transmission frames
    CSV = "csv"  # reference;amount;business_id;invoice_number


class Scheme(str, Enum):
    FINNISH = "SPY"  # Finvoice's IdentificationSchemeName for the Finnish reference
    RF = "ISO"  # ... and for ISO 11649


@dataclass(frozen=True)
class Invoice:
    """What an invoice says, as read; anything may be missing or wrong."""

    position: int  # 1-based, in the document
    invoice_number: str | None
    reference: str | None
    scheme: Scheme | None  # None: inferred from the reference
    amount: int | None  # cents, the amount to pay (EpiInstructedAmount); None when it could not be read
    currency: str | None
    business_id: str | None
    # Finvoice only: what the bank channel's transmission frame and the invoice itself say besides.
    sender: str | None = None  # the frame's ebXML From PartyId with Role Sender (an OVT or IBAN)
    invoice_total: int | None = None  # cents: InvoiceTotalVatIncludedAmount (may exceed the amount to pay)
    version: str | None = None  # the Finvoice Version attribute, "3.0" or "2.01"


@dataclass(frozen=True)
class Batch:
    """The settlement an invoice's reference names, as the judge needs it."""

    id: str
    amount: int
    status: SettlementStatus
    business_id: str
    invoiced: bool  # a matched invoice is on record for it


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    detail: str


def payment_reference(invoice: Invoice) -> str | None:
    """The invoice's reference in compact Finnish form, or ``None`` if it is missing or invalid."""
    if not invoice.reference:
        return None
    raw = invoice.reference.strip()
    scheme = invoice.scheme or (Scheme.RF if raw.upper().startswith("RF") else Scheme.FINNISH)
    if scheme is Scheme.RF:
        return finnish_from_rf(raw)
    return compact_finnish_reference(raw) if is_valid_finnish_reference(raw) else None


def business_id_digits(value: str | None) -> str | None:
    """``"1234567-1"``, ``"FI12345671"`` → ``"12345671"``; ``None`` if it is no Y-tunnus shape."""
    if not value:
        return None
    digits = re.sub(r"[\s-]", "", value.strip().upper().removeprefix("FI"))
    return digits if re.fullmatch(r"\d{8}", digits) else None


def judge(invoice: Invoice, batch: Batch | None, seen_before: bool) -> Judgement:
    if payment_reference(invoice) is None:
        return Judgement(Outcome.UNKNOWN_REFERENCE, "the payment reference is missing or its check digits are wrong")
    if batch is None:
        return Judgement(Outcome.UNKNOWN_REFERENCE, "no settlement has this reference")
    if business_id_digits(invoice.business_id) != business_id_digits(batch.business_id):
        return Judgement(Outcome.BUSINESS_ID_MISMATCH, "the seller is not the settlement's provider")
    if seen_before:
        return Judgement(Outcome.DUPLICATE, "this invoice has been matched before")
    if batch.invoiced or batch.status is not SettlementStatus.OPEN:
        return Judgement(Outcome.DUPLICATE, f"the settlement is already {batch.status.value}")
    if invoice.currency not in (None, "EUR"):
        return Judgement(Outcome.AMOUNT_MISMATCH, f"the amount is in {invoice.currency}, not EUR")
    if invoice.amount is None:
        return Judgement(Outcome.AMOUNT_MISMATCH, "the amount to pay could not be read")
    if invoice.amount != batch.amount:
        return Judgement(
            Outcome.AMOUNT_MISMATCH, f"the invoice asks {invoice.amount} cents, the settlement is {batch.amount}"
        )
    return Judgement(Outcome.MATCHED, "the settlement is now invoiced")
