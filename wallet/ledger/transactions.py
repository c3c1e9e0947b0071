"""Transactions: a type and postings that sum to zero. Built only through ``Transaction.build``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from wallet.ledger.errors import InvariantViolation


class TransactionType(str, Enum):
    CREDIT = "credit"  # funding → wallet line
    EXPIRY = "expiry"  # wallet line → funding
    CAPTURE = "capture"  # wallet line → provider payable
    REFUND = "refund"  # provider payable → wallet line
    SETTLEMENT = "settlement"  # provider payable → provider settled


@dataclass(frozen=True)
class Posting:
    account_id: str
    amount: int  # signed cents: positive adds to the account's balance


@dataclass(frozen=True)
class Transaction:
    type: TransactionType
    postings: tuple[Posting, ...]

    @staticmethod
    def transfer(type_: TransactionType, source: str, destination: str, amount: int) -> Transaction:
        """Move ``amount`` cents from ``source`` to ``destination``."""
        return Transaction.build(type_, (Posting(source, -amount), Posting(destination, amount)))

    @staticmethod
    def build(type_: TransactionType, postings: tuple[Posting, ...]) -> Transaction:
        transaction = Transaction(type_, postings)
        transaction.check()
        return transaction

    def check(self) -> None:
        """Every posting is a non-zero integer; the postings sum to zero; two accounts at least."""
        if len(self.postings) < 2:
            raise InvariantViolation(f"{self.type.value}: fewer than two postings")
        total = 0
        for posting in self.postings:
            if isinstance(posting.amount, bool) or not isinstance(posting.amount, int):
                raise InvariantViolation(f"{self.type.value}: posting amount {posting.amount!r} is not integer cents")
            if posting.amount == 0:
                raise InvariantViolation(f"{self.type.value}: zero posting on {posting.account_id}")
            total += posting.amount
        if total != 0:
            raise InvariantViolation(f"{self.type.value}: postings sum to {total}, not 0")
