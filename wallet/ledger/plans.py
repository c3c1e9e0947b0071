"""A budget calculated from the client's plan (asiakassuunnitelma): each item's yearly cost, the
yearly sum per category (the budget's lines), and each line's twelve monthly credits.

An item is ``quantity`` units of a service ``per`` day, week, month or year, at ``unit_price``
cents a unit (the catalog's unit value in force, or a price the case worker gives). In integer
cents, rounded half up once per item (never per unit):

    yearly cost = round_half_up(unit_price × quantity × times a year)
    times a year: day 365, week ``weeks_per_year`` (default 52), month 12, year 1

A line's yearly amount is the sum of its items' yearly costs. Its monthly credits:

    base = yearly // 12;   month 1 of each budget year = base + (yearly − 12 × base);   the rest = base

so twelve monthly credits add up to the yearly amount exactly, and the rounding cents (0 to 11)
fall in the budget's first month (and the first month of each further twelve). A month's index is
counted from the budget's ``start_month``, whatever month a later decision starts from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from wallet.ledger.errors import InvariantViolation, ValidationError
from wallet.ledger.money import MAX_AMOUNT_CENTS

MONTHS_PER_YEAR = 12
DAYS_PER_YEAR = 365
DEFAULT_WEEKS_PER_YEAR = 52
WEEKS_PER_YEAR_MAX = 53
ROUNDING_MONTH_INDEX = 0  # the month of each budget year that carries a line's rounding cents
_HUNDREDTHS = 100  # a quantity is kept in hundredths of a unit (wallet.ledger.catalog)


class Per(StrEnum):
    """How often an item's quantity recurs."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


def times_a_year(per: Per, weeks_per_year: int | None) -> int:
    if weeks_per_year is not None and per is not Per.WEEK:
        raise ValidationError("weeks_per_year", "is only for an item per week")
    if per is Per.DAY:
        return DAYS_PER_YEAR
    if per is Per.WEEK:
        weeks = DEFAULT_WEEKS_PER_YEAR if weeks_per_year is None else weeks_per_year
        if not 1 <= weeks <= WEEKS_PER_YEAR_MAX:
            raise ValidationError("weeks_per_year", f"must be from 1 to {WEEKS_PER_YEAR_MAX}")
        return weeks
    if per is Per.MONTH:
        return MONTHS_PER_YEAR
    return 1


@dataclass(frozen=True)
class PlanItem:
    """One item of the plan, priced: ``unit_price`` from the catalog (``from_catalog``) or given."""

    service: str
    category: str
    quantity_hundredths: int
    per: Per
    weeks_per_year: int | None
    unit_price: int
    from_catalog: bool
    name: str | None = None  # the catalog's name for the service, in the decision's language
    note: str | None = None


def yearly_cost(item: PlanItem) -> int:
    if item.quantity_hundredths <= 0 or item.unit_price <= 0:
        raise InvariantViolation("a plan item is priced only with a positive quantity and unit price")
    product = item.unit_price * item.quantity_hundredths * times_a_year(item.per, item.weeks_per_year)
    return (product + _HUNDREDTHS // 2) // _HUNDREDTHS


def monthly_amounts(yearly_amount: int) -> tuple[int, ...]:
    """The twelve monthly credits of a yearly amount, by month index (see the module's rule)."""
    if yearly_amount < 0:
        raise InvariantViolation("a yearly amount below zero")
    base, rest = divmod(yearly_amount, MONTHS_PER_YEAR)
    amounts = [base] * MONTHS_PER_YEAR
    amounts[ROUNDING_MONTH_INDEX] += rest
    if sum(amounts) != yearly_amount:
        raise InvariantViolation("monthly credits do not add up to the yearly amount")
    return tuple(amounts)


def months_between(first: str, later: str) -> int:
    """Months from ``first`` to ``later`` (YYYY-MM): 0 for the same month."""
    return (int(later[:4]) - int(first[:4])) * MONTHS_PER_YEAR + int(later[5:7]) - int(first[5:7])


def month_index(start_month: str, month: str) -> int:
    """A month's place (0–11) in its budget year, counted from the budget's first month."""
    between = months_between(start_month, month)
    if between < 0:
        raise InvariantViolation(f"{month} is before the budget's start {start_month}")
    return between % MONTHS_PER_YEAR


def months_from(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last``, both included."""
    months = []
    year, number = int(first[:4]), int(first[5:7])
    while f"{year:04d}-{number:02d}" <= last:
        months.append(f"{year:04d}-{number:02d}")
        year, number = (year + 1, 1) if number == MONTHS_PER_YEAR else (year, number + 1)
    return months


@dataclass(frozen=True)
class Line:
    """A budget line as calculated: its category, yearly amount and the twelve monthly credits."""

    category: str
    yearly_amount: int
    monthly_amounts: tuple[int, ...]

    def amount_in(self, start_month: str, month: str) -> int:
        return self.monthly_amounts[month_index(start_month, month)]


@dataclass(frozen=True)
class Calculation:
    items: tuple[tuple[PlanItem, int], ...]  # each item with its yearly cost; empty for lines by hand
    lines: tuple[Line, ...]  # by category, in order

    @property
    def yearly_amount(self) -> int:
        return sum(line.yearly_amount for line in self.lines)

    def schedule(self, start_month: str, first: str, last: str) -> list[tuple[str, str, int]]:
        """(month, category, amount) for every month from ``first`` to ``last`` and every line."""
        return [
            (month, line.category, line.amount_in(start_month, month))
            for month in months_from(first, last)
            for line in self.lines
        ]


def calculate(items: Sequence[PlanItem]) -> Calculation:
    """The plan's items costed and summed per category into lines. Every line must credit something
    each month (a yearly amount of at least 12 cents), and no month more than ``MAX_AMOUNT_CENTS``."""
    if not items:
        raise ValidationError("plan", "must have at least one item")
    costed = tuple((item, yearly_cost(item)) for item in items)
    by_category: dict[str, int] = {}
    for item, cost in costed:
        by_category[item.category] = by_category.get(item.category, 0) + cost
    lines = []
    for category in sorted(by_category):
        yearly = by_category[category]
        amounts = monthly_amounts(yearly)
        if min(amounts) <= 0:
            raise ValidationError("plan", f"the items of {category!r} come to less than a cent a month")
        if max(amounts) > MAX_AMOUNT_CENTS:
            raise ValidationError(
                "plan", f"the items of {category!r} come to more than {MAX_AMOUNT_CENTS} cents a month"
            )
        lines.append(Line(category, yearly, amounts))
    return Calculation(costed, tuple(lines))


def from_lines(lines: Iterable[tuple[str, int]]) -> Calculation:
    """Lines given by hand: the same amount every month."""
    return Calculation(
        (),
        tuple(
            Line(category, amount * MONTHS_PER_YEAR, (amount,) * MONTHS_PER_YEAR) for category, amount in sorted(lines)
        ),
    )
