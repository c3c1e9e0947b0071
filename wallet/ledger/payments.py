"""Payment batches: the settlements finance pays in one ISO 20022 credit-transfer file (pain.001).

A batch holds one transfer per settlement, to the provider's IBAN as it was when the batch was
made, for the settlement's amount, with its Finnish reference as the structured creditor
reference. A settlement is in at most one batch that is not cancelled; cancelling a batch frees
its settlements for another. Only a positive amount can be paid (a negative settlement is a
credit note: the provider owes), and never a paid settlement.

Status: created → cancelled. A batch none of whose settlements is paid yet may be cancelled; once
the bank has paid one of them (a bank statement said so), the file was sent and it stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wallet.ledger.errors import Conflict, InvariantViolation
from wallet.ledger.settlements import SettlementStatus

PAYABLE = (SettlementStatus.OPEN, SettlementStatus.INVOICED)
MESSAGE_ID_PREFIX = "WALLET-PB-"  # + the batch's sequence number: at most 35 characters (Max35Text)


class PaymentBatchStatus(StrEnum):
    CREATED = "created"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Candidate:
    """A settlement asked to be paid, as the rules need it."""

    id: str
    amount: int
    status: SettlementStatus
    in_batch: str | None  # the batch (not cancelled) it is already in


def require_payable(candidate: Candidate) -> None:
    if candidate.in_batch is not None:
        raise Conflict(
            f"settlement {candidate.id} is already in payment batch {candidate.in_batch}",
            settlement_id=candidate.id,
            payment_batch_id=candidate.in_batch,
        )
    if candidate.status not in PAYABLE:
        raise Conflict(f"settlement {candidate.id} is {candidate.status.value}", settlement_id=candidate.id)
    if candidate.amount <= 0:
        raise Conflict(
            f"settlement {candidate.id} is {candidate.amount} cents: only what the organizer owes is paid",
            settlement_id=candidate.id,
        )


def require_cancellable(status: PaymentBatchStatus, paid_settlements: int) -> None:
    if status is not PaymentBatchStatus.CREATED:
        raise Conflict(f"the payment batch is {status.value}", payment_batch_status=status.value)
    if paid_settlements:
        raise Conflict(f"{paid_settlements} of the batch's settlements are paid: the file was sent")


def message_id(sequence: int) -> str:
    if sequence < 1:
        raise InvariantViolation(f"payment batch sequence {sequence} < 1")
    return f"{MESSAGE_ID_PREFIX}{sequence:08d}"
