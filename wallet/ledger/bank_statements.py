"""Bank statements: what ISO 20022 ``camt.054`` debit/credit notifications and ``camt.053``
account statements say was paid from the organizer's account, judged against settlement batches.

Each booked entry (each of its transaction details, when the bank booked a batch as one entry)
is one ``BankEntry``. A debit is a payment out: it pays the settlement its end-to-end id names (a
settlement id), or else the one its structured creditor reference names (Finnish or RF form). A
credit naming a settlement is money the bank returned (a closed account, a wrong IBAN): the
payment did not reach the provider, and the settlement is open for payment again.

Each entry gets one outcome, judged in this order:

1. ``not_booked``: the bank has not booked it (``Sts`` other than ``BOOK``): nothing moves yet.
2. ``unknown_reference``: no settlement has its end-to-end id or reference.
3. ``already_applied``: the bank's own reference of this entry (``AcctSvcrRef``) was applied before,
   by this file or another (a notification, then the statement that repeats it).
4. ``amount_mismatch``: not in euros, or not the settlement's amount.
5. A debit: ``already_paid`` if the settlement is paid, else ``paid``.
   A credit: ``not_paid`` if the settlement is not paid (nothing to return), else ``returned``.

Pure: the caller looks the settlement up and asks ``judge``; the status change itself is the
settlement's (``wallet.ledger.settlements.require_transition``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wallet.ledger.errors import Conflict
from wallet.ledger.reference import compact_finnish_reference, finnish_from_rf, is_valid_finnish_reference
from wallet.ledger.settlements import SettlementStatus


class StatementKind(StrEnum):
    NOTIFICATION = "camt.054"  # BkToCstmrDbtCdtNtfctn
    STATEMENT = "camt.053"  # BkToCstmrStmt


class Direction(StrEnum):
    DEBIT = "DBIT"  # money out of the organizer's account: a payment
    CREDIT = "CRDT"  # money in: here, a payment returned


class EntryOutcome(StrEnum):
    PAID = "paid"
    RETURNED = "returned"
    ALREADY_PAID = "already_paid"
    ALREADY_APPLIED = "already_applied"
    AMOUNT_MISMATCH = "amount_mismatch"
    UNKNOWN_REFERENCE = "unknown_reference"
    NOT_PAID = "not_paid"
    NOT_BOOKED = "not_booked"


# The outcomes that moved a settlement: an entry with one of these is applied.
APPLIED = (EntryOutcome.PAID, EntryOutcome.RETURNED)


@dataclass(frozen=True)
class BankEntry:
    """One booked (or pending) movement as the bank reports it; anything may be missing."""

    position: int  # 1-based, in the file
    direction: Direction
    amount: int | None  # cents, positive; None when it could not be read
    currency: str | None
    booked: bool
    booking_date: str | None  # YYYY-MM-DD
    entry_reference: str | None  # the bank's own reference of the entry (AcctSvcrRef), unique per account
    reference: str | None  # the structured creditor reference, as written
    end_to_end_id: str | None


@dataclass(frozen=True)
class Statement:
    """A camt file: its kind, its message id and the ids of the statements or notifications in it."""

    kind: StatementKind
    message_id: str
    document_ids: tuple[str, ...]
    entries: tuple[BankEntry, ...]
    accounts: tuple[str | None, ...] = ()  # each statement's or notification's Acct/Id/IBAN


def require_account(statement: Statement, payer_iban: str) -> None:
    """With the payer's account configured, a file about another account applies nothing: its
    debits are not the organizer's payments to providers."""
    if not payer_iban:
        return
    others = sorted({account or "(none)" for account in statement.accounts if account != payer_iban})
    if others:
        raise Conflict(
            f"the file reports on account {', '.join(others)}, not the payer's account (WALLET_PAYER_IBAN)",
            accounts=others,
        )


@dataclass(frozen=True)
class Settlement:
    """The settlement an entry names, as the judge needs it."""

    id: str
    amount: int
    status: SettlementStatus


@dataclass(frozen=True)
class Judgement:
    outcome: EntryOutcome
    detail: str


def creditor_reference(value: str | None) -> str | None:
    """A structured creditor reference in compact Finnish form, or ``None`` if it is none."""
    if not value:
        return None
    raw = value.strip()
    if raw.upper().startswith("RF"):
        return finnish_from_rf(raw)
    return compact_finnish_reference(raw) if is_valid_finnish_reference(raw) else None


def judge(entry: BankEntry, settlement: Settlement | None, applied_before: bool) -> Judgement:
    if not entry.booked:
        return Judgement(EntryOutcome.NOT_BOOKED, "the bank has not booked this entry")
    if settlement is None:
        return Judgement(EntryOutcome.UNKNOWN_REFERENCE, "no settlement has this end-to-end id or reference")
    if applied_before:
        return Judgement(EntryOutcome.ALREADY_APPLIED, "the bank's reference of this entry was applied before")
    if entry.currency not in (None, "EUR"):
        return Judgement(EntryOutcome.AMOUNT_MISMATCH, f"the amount is in {entry.currency}, not EUR")
    if entry.amount is None:
        return Judgement(EntryOutcome.AMOUNT_MISMATCH, "the amount could not be read")
    if entry.amount != settlement.amount:
        return Judgement(
            EntryOutcome.AMOUNT_MISMATCH, f"the entry is {entry.amount} cents, the settlement is {settlement.amount}"
        )
    if entry.direction is Direction.DEBIT:
        if settlement.status is SettlementStatus.PAID:
            return Judgement(EntryOutcome.ALREADY_PAID, "the settlement is already paid")
        return Judgement(EntryOutcome.PAID, f"paid, booked {entry.booking_date or '(no date)'}")
    if settlement.status is not SettlementStatus.PAID:
        return Judgement(EntryOutcome.NOT_PAID, f"the settlement is {settlement.status.value}: nothing was returned")
    return Judgement(EntryOutcome.RETURNED, "the bank returned the payment: the settlement is open for payment again")
