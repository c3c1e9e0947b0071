"""What the organizer's routes answer: categories, the service catalog and the municipalities,
clients and their representatives, budgets and their decisions, providers, credit runs, and the
desk's search."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from wallet.ledger.catalog import ServiceUnit
from wallet.ledger.months import UnusedPolicy
from wallet.ledger.parties import ProviderStatus, RepresentationScope, RepresentationStatus
from wallet.shapes.fields import E164, Cents, Count, NextCursor, Positive
from wallet.shapes.requests.organizer import ServiceName
from wallet.validation import (
    BusinessId,
    CategoryCode,
    Day,
    Iban,
    Id,
    Moment,
    Month,
    MunicipalityCode,
    Name,
)


class Category(Struct):
    code: CategoryCode
    name: Name
    created_at: Moment


class CategoryList(Struct):
    """Every category, in one page."""

    data: list[Category]
    next_cursor: None


# The service catalog and the municipalities.


class UnitValue(Struct):
    valid_from: Day
    unit_value: Cents


class Service(Struct):
    id: Id
    code: CategoryCode
    category: CategoryCode
    name: ServiceName
    unit: ServiceUnit
    unit_value: Annotated[Cents | None, Meta(description="In force today; null before the first value's day.")]
    unit_values: Annotated[list[UnitValue], Meta(description="Every value set, oldest first; the past is kept.")]
    created_at: Moment


class ServicePage(Struct):
    data: list[Service]
    next_cursor: NextCursor


class Municipality(Struct):
    code: MunicipalityCode
    name: Annotated[str, Meta(description="In Finnish.")]


class MunicipalityList(Struct):
    """Every municipality an offer may name, by name, in one page."""

    data: list[Municipality]
    next_cursor: None


# Clients and their representatives.


class IdentityLockout(Struct):
    """Failed identity checks in the window, and until when further checks are refused."""

    failures: Count
    max_failures: Positive
    window_seconds: Positive
    locked_until: Moment | None


class Client(Struct, kw_only=True):
    id: Id
    name: Name
    phone: E164
    has_national_id: bool
    created_at: Moment


class ClientDetail(Client, kw_only=True):
    identity_lockout: IdentityLockout


class Representation(Struct):
    """A representative's mandate (puolesta-asiointi) for one client."""

    id: Annotated[Id, Meta(description="The mandate's id (revoke with it).")]
    client_id: Id
    representative_id: Annotated[Id, Meta(description="The person: one id per phone, across clients.")]
    name: str | None
    phone: E164
    has_national_id: bool
    scope: RepresentationScope
    status: RepresentationStatus
    created_at: Moment
    revoked_at: Moment | None


class RepresentationPage(Struct):
    data: list[Representation]
    next_cursor: NextCursor


# Budgets and their decisions.


class PlanItemCost(Struct):
    service: str
    category: CategoryCode
    quantity: str
    per: Literal["day", "week", "month", "year"]
    weeks_per_year: int | None
    unit_price: Annotated[int, Meta(description="Cents a unit: the catalog's unit value in force, or given.")]
    priced_from: Literal["catalog", "given"]
    note: str | None
    yearly_amount: int


class CalculatedLine(Struct):
    category: CategoryCode
    monthly_amount: Annotated[int, Meta(description="Cents; a calculated line's amount in most months.")]
    yearly_amount: int | None = None
    monthly_amounts: (
        Annotated[
            list[int],
            Meta(
                description="A new decision's twelve monthly credits, the budget's first month first (it carries "
                "the rounding cents); they add up to `yearly_amount` exactly."
            ),
        ]
        | None
    ) = None


class Decision(Struct):
    id: Id
    number: Annotated[str, Meta(examples=["HB-2026-3FA2-91BC-0D4E"])]
    budget_id: Id
    client_id: Id
    kind: Literal["grant", "change"]
    from_month: Month
    language: Literal["fi", "sv"]
    decided_by: str
    document_sha256: Annotated[str, Meta(description="SHA-256 (hex) of the PDF as issued.")]
    created_at: Moment


class DecisionPage(Struct):
    data: list[Decision]
    next_cursor: NextCursor


class Budget(Struct):
    id: Id
    client_id: Id
    start_month: Month
    end_month: Month
    unused: UnusedPolicy
    lines: list[CalculatedLine]
    created_at: Moment
    yearly_amount: (
        Annotated[int, Meta(description="A new decision's calculation: the lines' yearly sum, cents.")] | None
    ) = None
    plan: list[PlanItemCost] | None = None
    decision: Decision | None = None


class BudgetPage(Struct):
    data: list[Budget]
    next_cursor: NextCursor


# Providers.


class Provider(Struct, kw_only=True):
    id: Id
    name: Name
    business_id: BusinessId
    iban: Iban
    status: ProviderStatus
    categories: list[CategoryCode]
    created_at: Moment
    updated_at: Moment


class ProviderDetail(Provider, kw_only=True):
    identity_lockout: IdentityLockout


class ProviderCredentials(Struct):
    """The secret is shown once; only its hash is kept."""

    client_id: Id
    client_secret: str
    provider_id: Id


# The monthly credit run.


class CreditRun(Struct):
    month: Month
    credited: Annotated[
        int, Meta(ge=0, description="Lines credited for the month in all (staged ahead of the month or released).")
    ]
    amount: Annotated[int, Meta(ge=0, description="Cents credited for the month in all.")]
    credited_now: Annotated[
        int, Meta(ge=0, description="Lines this call credited (ahead of the month: staged, not yet spendable).")
    ]
    expired_now: Annotated[int, Meta(ge=0, description="Lines this call expired.")]
    released_now: Annotated[
        int, Meta(ge=0, description="Lines whose credit, staged ahead, this call made spendable.")
    ] = 0


# The organizer's desk.


class ClientPage(Struct):
    """The organizer's desk: clients found, newest first."""

    data: list[Client]
    next_cursor: NextCursor


class ProviderPage(Struct):
    """The organizer's desk: providers found, newest first."""

    data: list[Provider]
    next_cursor: NextCursor
