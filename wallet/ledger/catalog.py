"""The service catalog and providers' offers, as rules: units, unit values in force on a day, the
client's own share per unit, and the closed lists an offer's places and languages come from.

A service's unit value (the most the budget pays for one unit) changes from a given day on; its
history is a list of ``UnitValue``s that only grows, and ``value_on`` says which one a day is under.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from wallet.ledger.errors import InvariantViolation, ValidationError


class ServiceUnit(StrEnum):
    """What one unit of a service is: what a quantity counts."""

    HOUR = "hour"
    VISIT = "visit"
    DAY = "day"
    TRIP = "trip"
    ITEM = "item"
    MONTH = "month"


class OfferStatus(StrEnum):
    ACTIVE = "active"  # shown to clients while its provider is approved
    WITHDRAWN = "withdrawn"  # never shown again; kept for the prices charges used


@dataclass(frozen=True)
class UnitValue:
    valid_from: str  # a day, YYYY-MM-DD, in the organizer's time zone
    unit_value: int  # cents


def value_on(history: Iterable[UnitValue], day: str) -> int | None:
    """The unit value in force on ``day`` (YYYY-MM-DD): the one with the latest ``valid_from`` on or
    before it; None before the first. Days in ISO form compare as text."""
    in_force: UnitValue | None = None
    for entry in history:
        if entry.valid_from <= day and (in_force is None or entry.valid_from > in_force.valid_from):
            in_force = entry
    return None if in_force is None else in_force.unit_value


def own_share_per_unit(unit_price: int, unit_value: int) -> int:
    """What the client pays the provider directly for one unit: the price above the unit value."""
    if unit_price < 0 or unit_value < 0:
        raise InvariantViolation("a price or a unit value below zero")
    return max(0, unit_price - unit_value)


def units_left(available: int, unit_price: int, unit_value: int) -> int:
    """Whole units of an offer that ``available`` cents on the client's line still pay for: each
    costs the budget min(unit_price, unit_value), exactly, for a whole quantity (the own share
    is paid directly, never from the line). Nothing available, nothing left."""
    per_unit = min(unit_price, unit_value)
    if per_unit <= 0:
        raise InvariantViolation("a unit the budget pays nothing for")
    return max(available, 0) // per_unit


# Itemized charges (suoritteet): what one item costs, and who pays what.
#
# A quantity is positive, with at most two decimals (1.5 hours), and at most QUANTITY_MAX units;
# it is kept as an integer number of hundredths. Per item, in integer cents:
#
#     amount    = round_half_up(min(unit_price, unit_value) × quantity)   paid by the budget
#     total     = round_half_up(unit_price × quantity)                    the provider's price
#     own_share = total − amount                                          paid by the client, directly
#
# each rounded to the cent, half up, once per item (never per unit), so that the budget's part and
# the client's part add up to exactly the price of the item. A charge's amount is the sum of its
# items' amounts; the own share never leaves the wallet.

QUANTITY_MAX = 1000  # units in one item
QUANTITY_DECIMALS = 2
_HUNDREDTHS = 100  # 10 ** QUANTITY_DECIMALS


def parse_quantity(value: object, field: str) -> int:
    """A quantity sent as a JSON number or a decimal string, as hundredths of a unit."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError(field, "must be a number, or a decimal string")
    text = repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str) and (not value or len(value) > 16 or not all(c in "0123456789." for c in text)):
        raise ValidationError(field, "must be a decimal number such as 1.5")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValidationError(field, "must be a decimal number such as 1.5") from None
    if not number.is_finite() or number <= 0:
        raise ValidationError(field, "must be positive")
    if number > QUANTITY_MAX:
        raise ValidationError(field, f"must be at most {QUANTITY_MAX}")
    hundredths = number * _HUNDREDTHS
    if hundredths != hundredths.to_integral_value():
        raise ValidationError(field, f"must have at most {QUANTITY_DECIMALS} decimals")
    return int(hundredths)


def format_quantity(hundredths: int) -> str:
    """``150`` → ``"1.5"``; ``200`` → ``"2"``: the quantity as sent, for the answer."""
    whole, part = divmod(hundredths, _HUNDREDTHS)
    return str(whole) if part == 0 else f"{whole}.{part:02d}".rstrip("0")


def _cents_half_up(unit_cents: int, hundredths: int) -> int:
    return (unit_cents * hundredths + _HUNDREDTHS // 2) // _HUNDREDTHS


@dataclass(frozen=True)
class ItemPrice:
    amount: int  # paid by the budget
    own_share: int  # paid by the client to the provider directly


def price_item(quantity_hundredths: int, unit_price: int, unit_value: int) -> ItemPrice:
    if quantity_hundredths <= 0 or unit_price <= 0 or unit_value <= 0:
        raise InvariantViolation("an item is priced only with a positive quantity, price and unit value")
    amount = _cents_half_up(min(unit_price, unit_value), quantity_hundredths)
    total = _cents_half_up(unit_price, quantity_hundredths)
    if not 0 <= amount <= total:
        raise InvariantViolation("an item's budget part exceeds its price")
    return ItemPrice(amount, total - amount)
