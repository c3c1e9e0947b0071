"""The service catalog and providers' offers, as rules: units, unit values in force on a day, the
client's own share per unit, and the closed lists an offer's places and languages come from.

A service's unit value (the most the budget pays for one unit) changes from a given day on; its
history is a list of ``UnitValue``s that only grows, and ``value_on`` says which one a day is under.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from wallet.ledger.errors import InvariantViolation


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
