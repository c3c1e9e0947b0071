"""Accounts of the ledger and how they are named.

- ``funding``: the organizer's funding account. Money leaves it on credits and returns on expiry,
  so its balance is the negative of what is out on wallets and with providers.
- ``wallet:{client_id}:{category}``: one line of a client's wallet (a saldoseteli line).
- ``payable:{provider_id}``: what the organizer owes a provider for captured charges.
- ``settled:{provider_id}``: what has been closed into settlement batches.

A wallet line also carries ``held``: funds reserved by pending charges. ``available = balance -
held`` and it is never negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from wallet.ledger.errors import InvariantViolation

FUNDING_ACCOUNT = "funding"


class AccountKind(str, Enum):
    FUNDING = "funding"
    WALLET = "wallet"
    PAYABLE = "payable"
    SETTLED = "settled"


def wallet_account(client_id: str, category: str) -> str:
    return f"wallet:{client_id}:{category}"


def payable_account(provider_id: str) -> str:
    return f"payable:{provider_id}"


def settled_account(provider_id: str) -> str:
    return f"settled:{provider_id}"


def kind_of(account_id: str) -> AccountKind:
    return AccountKind(account_id.split(":", 1)[0])


@dataclass(frozen=True)
class LineState:
    """One wallet line as read inside the writing transaction."""

    account_id: str
    balance: int
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held

    def check(self) -> None:
        """Raise ``InvariantViolation`` if this line breaks an invariant."""
        check_line(self.account_id, self.balance, self.held)


def check_line(account_id: str, balance: int, held: int) -> None:
    """``LineState(account_id, balance, held).check()`` without building the state: what the
    credit run does for each of a million lines."""
    if held < 0:
        raise InvariantViolation(f"{account_id}: held {held} < 0")
    if balance - held < 0:
        raise InvariantViolation(f"{account_id}: available {balance - held} < 0")
