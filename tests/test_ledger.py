"""The pure ledger: transactions balance, lines never go below zero, months and expiry rules."""

from __future__ import annotations

import pytest

from wallet.ledger import charges
from wallet.ledger.accounts import LineState
from wallet.ledger.errors import (
    Conflict,
    InsufficientFunds,
    InvariantViolation,
    OperationError,
    RateLimited,
    RefundExceedsCapture,
    ValidationError,
)
from wallet.ledger.money import MAX_AMOUNT_CENTS, format_euros, parse_amount
from wallet.ledger.months import (
    UnusedPolicy,
    expires_at_boundary,
    expiry_amount,
    next_month,
    parse_month,
    previous_month,
)
from wallet.ledger.transactions import Posting, Transaction, TransactionType


def test_a_transfer_balances() -> None:
    transfer = Transaction.transfer(TransactionType.CREDIT, "funding", "wallet:c:home", 500)
    assert sum(p.amount for p in transfer.postings) == 0
    assert [p.account_id for p in transfer.postings] == ["funding", "wallet:c:home"]


@pytest.mark.parametrize(
    "postings",
    [
        (Posting("a", 100), Posting("b", -99)),  # does not sum to zero
        (Posting("a", 100),),  # one posting
        (Posting("a", 0), Posting("b", 0)),  # zero postings
        (Posting("a", 1.0), Posting("b", -1.0)),  # floats near money
        (Posting("a", True), Posting("b", -1)),  # a bool is not an amount
    ],
)
def test_an_unbalanced_or_malformed_transaction_is_a_bug_not_a_client_error(postings: tuple[Posting, ...]) -> None:
    with pytest.raises(InvariantViolation):
        Transaction.build(TransactionType.CAPTURE, postings)
    assert not issubclass(InvariantViolation, OperationError)


@pytest.mark.parametrize("value", [True, False, 1.0, 12.5, "100", None, [], -1, 0, MAX_AMOUNT_CENTS + 1])
def test_parse_amount_refuses_what_is_not_positive_integer_cents(value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_amount(value, "amount")
    assert raised.value.field == "amount"


def test_parse_amount_accepts_integer_cents() -> None:
    assert parse_amount(1, "amount") == 1
    assert parse_amount(MAX_AMOUNT_CENTS, "amount") == MAX_AMOUNT_CENTS


def test_reserve_debit_capture_release() -> None:
    line = LineState("wallet:c:home", balance=1_000, held=0)
    held = charges.reserve(line, 600)
    assert (held.balance, held.held, held.available) == (1_000, 600, 400)
    with pytest.raises(InsufficientFunds):
        charges.reserve(held, 401)
    with pytest.raises(InsufficientFunds):
        charges.debit(held, 401)
    captured = charges.capture_held(held, 600)
    assert (captured.balance, captured.held, captured.available) == (400, 0, 400)
    released = charges.release(held, 600)
    assert (released.balance, released.held) == (1_000, 0)
    exact = charges.debit(line, 1_000)
    assert exact.available == 0


def test_a_line_below_zero_is_an_invariant_violation() -> None:
    with pytest.raises(InvariantViolation):
        LineState("wallet:c:home", balance=100, held=101).check()
    with pytest.raises(InvariantViolation):
        charges.release(LineState("wallet:c:home", balance=100, held=0), 1)


def test_refunds_never_exceed_the_capture() -> None:
    charges.refundable(captured_amount=1_000, refunded_amount=400, amount=600)
    with pytest.raises(RefundExceedsCapture) as raised:
        charges.refundable(captured_amount=1_000, refunded_amount=400, amount=601)
    assert raised.value.extra["refundable_amount"] == 600


def test_status_rules() -> None:
    charges.require_status(charges.ChargeStatus.PENDING, charges.ChargeStatus.PENDING, "void")
    with pytest.raises(Conflict):
        charges.require_status(charges.ChargeStatus.CAPTURED, charges.ChargeStatus.PENDING, "void")


def test_months() -> None:
    assert next_month("2027-12") == "2028-01" and previous_month("2027-01") == "2026-12"
    assert parse_month("2027-03", "m") == "2027-03"
    for bad in ("2027-13", "2027-1", "27-01", 202701, None, "2027-00"):
        with pytest.raises(ValidationError):
            parse_month(bad, "m")


def test_expiry_rules_at_month_boundaries() -> None:
    expire, carry = UnusedPolicy.EXPIRE, UnusedPolicy.CARRY_OVER
    # Nothing to return at or before the first month of a budget.
    assert not expires_at_boundary(expire, "2027-01", "2027-12", "2027-01")
    # `expire` returns the remainder at every later boundary; `carry_over` only after the end.
    assert expires_at_boundary(expire, "2027-01", "2027-12", "2027-02")
    assert not expires_at_boundary(carry, "2027-01", "2027-12", "2027-02")
    assert expires_at_boundary(carry, "2027-01", "2027-12", "2028-01")
    assert expires_at_boundary(expire, "2027-01", "2027-12", "2028-01")
    # A boundary long after the end has passed already.
    assert not expires_at_boundary(carry, "2027-01", "2027-12", "2028-02")
    # Money credited ahead for the new month is not expired; held money stays.
    assert expiry_amount(available=700, credited_for_boundary_or_later=500) == 200
    assert expiry_amount(available=300, credited_for_boundary_or_later=500) == 0


def test_errors_survive_a_round_trip_through_an_idempotency_record() -> None:
    for error in (
        ValidationError("amount", "must be an integer"),
        InsufficientFunds("not enough", available=5),
        RateLimited("slow down", retry_after_seconds=30),
    ):
        again = OperationError.from_record(error.to_record())
        assert type(again) is type(error)
        assert again.detail == error.detail and again.extra == error.extra


def test_format_euros() -> None:
    assert format_euros(1250) == "12,50 €" and format_euros(5) == "0,05 €" and format_euros(-100) == "-1,00 €"
