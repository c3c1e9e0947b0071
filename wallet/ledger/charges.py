"""The life of a charge: pending (funds held) → captured | voided; refunds after capture."""

from __future__ import annotations

from enum import Enum, StrEnum

from wallet.ledger.accounts import LineState
from wallet.ledger.errors import Conflict, InsufficientFunds, RefundExceedsCapture


class ChargeStatus(str, Enum):
    PENDING = "pending"
    CAPTURED = "captured"
    VOIDED = "voided"


class IdentityMethod(str, Enum):
    NATIONAL_ID = "national_id"  # captured at once when the id matches
    OTP = "otp"  # held until the provider confirms the code the client received by SMS
    APP = "app"  # held until the client approves (or declines) in the app


class VoidReason(StrEnum):
    EXPIRED = "expired"  # not confirmed or approved in time
    TOO_MANY_ATTEMPTS = "too_many_attempts"  # the OTP code guessed wrong too often
    VOIDED_BY_PROVIDER = "voided_by_provider"
    DECLINED_BY_CLIENT = "declined_by_client"


def reserve(line: LineState, amount: int) -> LineState:
    """Hold ``amount`` on ``line``; refuse if it is not available. Balance is unchanged."""
    if amount > line.available:
        raise InsufficientFunds("not enough available on this category line", available=max(line.available, 0))
    after = LineState(line.account_id, line.balance, line.held + amount)
    after.check()
    return after


def debit(line: LineState, amount: int) -> LineState:
    """Capture ``amount`` directly (no hold before it); refuse if not available."""
    if amount > line.available:
        raise InsufficientFunds("not enough available on this category line", available=max(line.available, 0))
    after = LineState(line.account_id, line.balance - amount, line.held)
    after.check()
    return after


def capture_held(line: LineState, amount: int) -> LineState:
    """Turn a hold of ``amount`` into a debit."""
    after = LineState(line.account_id, line.balance - amount, line.held - amount)
    after.check()
    return after


def release(line: LineState, amount: int) -> LineState:
    """Release a hold of ``amount``."""
    after = LineState(line.account_id, line.balance, line.held - amount)
    after.check()
    return after


def require_status(current: ChargeStatus, wanted: ChargeStatus, action: str) -> None:
    if current is not wanted:
        raise Conflict(f"cannot {action} a charge that is {current.value}", charge_status=current.value)


def require_client_approval(method: IdentityMethod) -> None:
    """Only a charge made with the ``app`` method waits for the client's own answer."""
    if method is not IdentityMethod.APP:
        raise Conflict("this charge does not wait for your approval", charge_method=method.value)


def refundable(captured_amount: int, refunded_amount: int, amount: int) -> None:
    """Refuse a refund that would take more back than the charge captured."""
    remaining = captured_amount - refunded_amount
    if amount > remaining:
        raise RefundExceedsCapture("refund exceeds what remains of the captured amount", refundable_amount=remaining)
