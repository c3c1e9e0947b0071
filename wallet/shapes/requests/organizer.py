"""The organizer's requests: categories, clients and their representatives, budgets (by lines or
from a plan) and changes to them, providers, the service catalog and the monthly credit run."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec
from msgspec import Meta, Struct, field

from wallet import validation
from wallet.ledger.catalog import QUANTITY_DECIMALS, QUANTITY_MAX, ServiceUnit, parse_quantity
from wallet.ledger.errors import ValidationError
from wallet.ledger.months import UnusedPolicy, parse_month
from wallet.ledger.parties import RepresentationScope
from wallet.ledger.plans import DEFAULT_WEEKS_PER_YEAR, WEEKS_PER_YEAR_MAX, Per
from wallet.shapes.fields import Amount
from wallet.shapes.requests.decoding import optional_text
from wallet.validation import (
    BusinessId,
    CategoryCode,
    Day,
    Description,
    Iban,
    Month,
    Name,
    NationalId,
    Phone,
)

MAX_BUDGET_LINES = 50
MAX_PROVIDER_CATEGORIES = 50
MAX_BUDGET_MONTHS = 60


class NewCategory(Struct):
    code: CategoryCode
    name: Name

    def __post_init__(self) -> None:
        self.code = validation.category_code(self.code, "code")
        self.name = validation.text(self.name, "name")


class NewClient(Struct):
    name: Name
    phone: Phone
    national_id: NationalId | None = None

    def __post_init__(self) -> None:
        self.name = validation.text(self.name, "name")
        self.phone = validation.phone(self.phone)
        if self.national_id is not None:
            self.national_id = validation.national_id(self.national_id)


class NewRepresentation(Struct):
    phone: Annotated[Phone, Meta(description="The representative's own phone: they log in with it.")]
    scope: Annotated[
        RepresentationScope,
        Meta(
            description="`view`: the wallet, its history, events, statements and charges; `manage`: also "
            "approve and decline charges."
        ),
    ]
    national_id: NationalId | None = None
    name: Name | None = None

    def __post_init__(self) -> None:
        self.phone = validation.phone(self.phone)
        if self.national_id is not None:
            self.national_id = validation.national_id(self.national_id)
        self.name = optional_text(self.name, "name", validation.NAME_MAX_LENGTH)


# Budgets, by lines or from a plan, and changes to them.


class BudgetLine(Struct):
    category: CategoryCode
    monthly_amount: Amount


class DecisionLanguage(StrEnum):
    """The languages a decision or statement is written in: Finland's two official languages."""

    FI = "fi"
    SV = "sv"


MAX_PLAN_ITEMS = 50


def _absent() -> None:
    """The default of a plan item's optional members, so that they are documented as nullable: a null
    in an item of the list is read as absent, as everywhere (``wallet.api.openapi``)."""
    return None


class PlanItem(Struct):
    """One service of the client's plan: ``quantity`` units ``per`` day, week, month or year."""

    service: Annotated[
        CategoryCode, Meta(description="A service's code in the catalog, or (with `unit_price`) one outside it.")
    ]
    quantity: Annotated[
        float | str,
        Meta(
            description=f"Units each `per`: positive, at most {QUANTITY_DECIMALS} decimals, at most {QUANTITY_MAX}.",
            examples=["4"],
        ),
    ]
    per: Per
    weeks_per_year: (
        Annotated[
            int,
            Meta(ge=1, le=WEEKS_PER_YEAR_MAX, description=f"For `per: week`; default {DEFAULT_WEEKS_PER_YEAR}."),
        ]
        | None
    ) = field(default_factory=_absent)
    unit_price: (
        Annotated[Amount, Meta(description="Cents a unit, for a service outside the catalog (which it must be).")]
        | None
    ) = field(default_factory=_absent)
    category: (
        Annotated[CategoryCode, Meta(description="The budget line, for a service outside the catalog.")] | None
    ) = field(default_factory=_absent)
    note: Description | None = field(default_factory=_absent)

    def __post_init__(self) -> None:
        self.service = validation.category_code(self.service, "service")
        if self.category is not None:
            self.category = validation.category_code(self.category, "category")
        if (self.unit_price is None) != (self.category is None):
            raise ValidationError("unit_price", "a service outside the catalog takes both unit_price and category")
        if self.weeks_per_year is not None and self.per is not Per.WEEK:
            raise ValidationError("weeks_per_year", "is only for an item per week")
        self.note = optional_text(self.note, "note", validation.DESCRIPTION_MAX_LENGTH)

    @property
    def quantity_hundredths(self) -> int:
        return parse_quantity(self.quantity, "quantity")


def _lines_or_plan(lines: tuple[BudgetLine, ...], plan: tuple[PlanItem, ...] | None) -> None:
    """Exactly one of ``lines`` and ``plan``; each category once; each plan quantity valid."""
    if plan is None and not lines:
        raise ValidationError("lines", "are required (or send plan)")
    if plan is not None and lines:
        raise ValidationError("plan", "comes in place of lines: send one or the other")
    seen: set[str] = set()
    for index, line in enumerate(lines):
        category = validation.category_code(line.category, f"lines[{index}].category")
        if category in seen:
            raise ValidationError(f"lines[{index}].category", "appears twice")
        seen.add(category)
    for index, item in enumerate(plan or ()):
        parse_quantity(item.quantity, f"plan[{index}].quantity")


class NewBudget(Struct):
    start_month: Month
    end_month: Annotated[Month, Meta(description=f"At most {MAX_BUDGET_MONTHS} months after the start.")]
    unused: UnusedPolicy
    # JSON ``lines``; ``lines`` here is the (category, amount) pairs the port takes.
    budget_lines: Annotated[
        tuple[BudgetLine, ...],
        Meta(max_length=MAX_BUDGET_LINES, description="One line per category; a category appears once."),
    ] = field(default=(), name="lines")
    plan: (
        Annotated[
            tuple[PlanItem, ...],
            Meta(
                min_length=1,
                max_length=MAX_PLAN_ITEMS,
                description="In place of `lines`: the lines are calculated from the plan's services.",
            ),
        ]
        | None
    ) = None
    language: Annotated[DecisionLanguage, Meta(description="The decision's language (default `fi`).")] = (
        DecisionLanguage.FI
    )

    def __post_init__(self) -> None:
        start = parse_month(self.start_month, "start_month")
        end = parse_month(self.end_month, "end_month")
        if end < start:
            raise ValidationError("end_month", "must not be before start_month")
        months = (int(end[:4]) - int(start[:4])) * 12 + int(end[5:]) - int(start[5:]) + 1
        if months > MAX_BUDGET_MONTHS:
            raise ValidationError("end_month", f"a budget covers at most {MAX_BUDGET_MONTHS} months")
        _lines_or_plan(self.budget_lines, self.plan)

    @property
    def lines(self) -> tuple[tuple[str, int], ...]:
        return tuple((line.category, line.monthly_amount) for line in self.budget_lines)


class BudgetChange(Struct):
    """A new decision on a budget: its lines, by hand or from a plan, from ``from_month`` on."""

    from_month: Annotated[
        Month, Meta(description="The first month the new lines apply to: within the budget, not yet credited.")
    ]
    budget_lines: Annotated[tuple[BudgetLine, ...], Meta(max_length=MAX_BUDGET_LINES)] = field(default=(), name="lines")
    plan: Annotated[tuple[PlanItem, ...], Meta(min_length=1, max_length=MAX_PLAN_ITEMS)] | None = None
    language: DecisionLanguage = DecisionLanguage.FI

    def __post_init__(self) -> None:
        parse_month(self.from_month, "from_month")
        _lines_or_plan(self.budget_lines, self.plan)

    @property
    def lines(self) -> tuple[tuple[str, int], ...]:
        return tuple((line.category, line.monthly_amount) for line in self.budget_lines)


class BudgetEnd(Struct):
    end_month: Annotated[
        Month,
        Meta(
            description="The new last month: not later than the budget's, not before its start, the current "
            "month, or a month already credited."
        ),
    ]

    def __post_init__(self) -> None:
        parse_month(self.end_month, "end_month")


# Providers and the monthly credit run.


class NewProvider(Struct):
    name: Name
    business_id: BusinessId
    iban: Iban
    categories: Annotated[tuple[CategoryCode, ...], Meta(min_length=1, max_length=MAX_PROVIDER_CATEGORIES)]

    def __post_init__(self) -> None:
        self.categories = tuple(
            dict.fromkeys(validation.category_code(c, f"categories[{i}]") for i, c in enumerate(self.categories))
        )
        self.name = validation.text(self.name, "name")
        self.business_id = validation.business_id(self.business_id)
        self.iban = validation.iban(self.iban)


class CreditRunRequest(Struct):
    month: Annotated[Month, Meta(description="The current month or the next.")]

    def __post_init__(self) -> None:
        parse_month(self.month, "month")


# The service catalog.


class ServiceName(Struct):
    """A service's name in Finland's two official languages, which the organizer serves in both,
    and optionally in English: an object, so that a client picks its language by key and a
    language can be added (``se``, Sámi) without a field of its own at the top."""

    fi: Name
    sv: Name
    # Documented as nullable (no default of None): a null here is read as absent, as everywhere.
    en: Name | msgspec.UnsetType | None = msgspec.UNSET

    def __post_init__(self) -> None:
        self.fi = validation.text(self.fi, "name.fi")
        self.sv = validation.text(self.sv, "name.sv")
        if isinstance(self.en, str):
            self.en = validation.text(self.en, "name.en")

    @property
    def english(self) -> str | None:
        return self.en if isinstance(self.en, str) else None


class NewService(Struct):
    code: Annotated[CategoryCode, Meta(examples=["home_help_hour"])]
    category: CategoryCode
    name: ServiceName
    unit: ServiceUnit
    unit_value: Annotated[Amount, Meta(description="Cents: the most the budget pays for one unit, from today on.")]

    def __post_init__(self) -> None:
        self.code = validation.category_code(self.code, "code")
        self.category = validation.category_code(self.category)


class NewUnitValue(Struct):
    unit_value: Amount
    valid_from: Annotated[
        Day, Meta(description="The first day it is in force: today or later (organizer's time zone).")
    ]

    def __post_init__(self) -> None:
        self.valid_from = validation.day(self.valid_from, "valid_from")
