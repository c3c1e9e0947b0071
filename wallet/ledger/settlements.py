"""Settlement batches: a provider's captures and refunds closed under one invoicing reference.

A batch takes every capture and refund of one provider not yet in a batch, up to a cut-off
time. Each is a *line* whose amount is what it did to the provider's payable account (a capture
adds, a refund takes away), so the batch's ``amount`` is the net the organizer owes:

- net > 0: one ledger transaction moves it payable → settled; the provider invoices it.
- net < 0: the refunds outweigh the captures (refunds of charges settled in earlier batches).
  The provider owes the organizer: one transaction moves ``-net`` settled → payable, and the
  batch is the basis of a credit note. The settled account's posting equals ``amount`` in both
  cases, so ``settled:{provider}`` always holds the sum of the provider's batches.
- net = 0: the lines cancel out (a charge refunded in full before settlement). The batch is
  still made, so those lines are closed and never linger, but it carries no ledger transaction:
  a transaction of zero postings is not a transaction.

A batch with no lines is refused (``NothingToSettle``). ``period_start`` and ``period_end`` are
the times of its first and last line; ``until`` is the cut-off asked for. A line committed after
a batch was made goes into the next batch even if its time is before that batch's cut-off.

Status: open (awaiting invoice) → invoiced (an invoice matched) → paid (finance marked it, or a
bank statement's debit entry did). An open batch may also be marked paid directly (an invoice that
came on paper). Paid is final but for one thing: the bank returning the payment (a credit entry
naming it, e.g. the provider's account was closed) puts the batch back where it was before it was
paid, open or invoiced, to be paid again (``status_after_return``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from wallet.ledger.accounts import payable_account, settled_account
from wallet.ledger.errors import Conflict, InvariantViolation
from wallet.ledger.reference import finnish_reference, rf_reference
from wallet.ledger.transactions import Transaction, TransactionType

# References of settlement batches: this prefix, then the batch's sequence number in at least
# SEQUENCE_DIGITS digits, then the check digit. "10" + "0000001" + "1" → "1000000011".
REFERENCE_PREFIX = "10"
SEQUENCE_DIGITS = 7

SETTLED_TYPES = (TransactionType.CAPTURE, TransactionType.REFUND)


class SettlementStatus(str, Enum):
    OPEN = "open"
    INVOICED = "invoiced"
    PAID = "paid"


_NEXT: dict[SettlementStatus, frozenset[SettlementStatus]] = {
    SettlementStatus.OPEN: frozenset({SettlementStatus.INVOICED, SettlementStatus.PAID}),
    SettlementStatus.INVOICED: frozenset({SettlementStatus.PAID}),
    SettlementStatus.PAID: frozenset({SettlementStatus.OPEN, SettlementStatus.INVOICED}),  # returned by the bank
}


def status_after_return(paid_from: SettlementStatus | None) -> SettlementStatus:
    """Where a paid batch goes when the bank returns its payment: the status it was paid from."""
    if paid_from not in (SettlementStatus.OPEN, SettlementStatus.INVOICED):
        raise InvariantViolation(f"a paid settlement paid from {paid_from}")
    return paid_from


def require_transition(current: SettlementStatus, wanted: SettlementStatus) -> None:
    """Refuse a status change the life of a batch does not allow."""
    if wanted not in _NEXT[current]:
        raise Conflict(
            f"a settlement that is {current.value} cannot become {wanted.value}", settlement_status=current.value
        )


@dataclass(frozen=True)
class Line:
    transaction_id: str
    type: TransactionType
    amount: int  # signed: the line's posting on the provider's payable account
    created_at: str


@dataclass(frozen=True)
class Batch:
    amount: int  # net, signed
    count: int
    period_start: str
    period_end: str


def batch_of(lines: Iterable[Line]) -> Batch:
    """Sum the lines; check each is a capture (+) or a refund (-) of a non-zero amount."""
    amount = count = 0
    period_start = period_end = ""
    for line in lines:
        if line.type not in SETTLED_TYPES:
            raise InvariantViolation(f"{line.transaction_id}: a {line.type.value} is not settled")
        if (line.type is TransactionType.CAPTURE) != (line.amount > 0) or line.amount == 0:
            raise InvariantViolation(f"{line.transaction_id}: a {line.type.value} of {line.amount} on payable")
        amount += line.amount
        count += 1
        period_start = line.created_at if not period_start else min(period_start, line.created_at)
        period_end = max(period_end, line.created_at)
    if count == 0:
        raise InvariantViolation("a settlement batch of no lines")
    return Batch(amount, count, period_start, period_end)


def settlement_transaction(provider_id: str, amount: int) -> Transaction | None:
    """The ledger transaction of a batch of net ``amount``; ``None`` when the net is zero."""
    if amount > 0:
        return Transaction.transfer(
            TransactionType.SETTLEMENT, payable_account(provider_id), settled_account(provider_id), amount
        )
    if amount < 0:
        return Transaction.transfer(
            TransactionType.SETTLEMENT, settled_account(provider_id), payable_account(provider_id), -amount
        )
    return None


def references_for(sequence: int) -> tuple[str, str]:
    """The Finnish reference and its RF form for the batch numbered ``sequence`` (1, 2, ...)."""
    if sequence < 1:
        raise InvariantViolation(f"settlement sequence {sequence} < 1")
    reference = finnish_reference(f"{REFERENCE_PREFIX}{sequence:0{SEQUENCE_DIGITS}d}")
    return reference, rf_reference(reference)
