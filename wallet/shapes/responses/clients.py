"""What a client's routes answer, or its representative's: the wallet and its transactions, its
charges, mandates, the monthly statement, and the comparison of offers."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from wallet.ledger.catalog import ServiceUnit
from wallet.ledger.parties import RepresentationScope
from wallet.ledger.transactions import TransactionType
from wallet.shapes.fields import Cents, Count, NextCursor, Positive, TimeZone
from wallet.shapes.requests.organizer import ServiceName
from wallet.shapes.responses.finance import ServiceBought
from wallet.shapes.responses.providers import Charge, PricedItem
from wallet.validation import (
    Address,
    CategoryCode,
    Description,
    Id,
    LanguageCode,
    Moment,
    Month,
    MunicipalityCode,
    Name,
)

# The wallet and its transactions.


class Upcoming(Struct, kw_only=True):
    month: Month
    amount: Annotated[int, Meta(gt=0, description="Cents credited ahead for the month: not spendable yet.")]
    available_from: Annotated[Moment, Meta(description="The month's first midnight (WALLET_TIMEZONE).")]


class WalletLine(Struct, kw_only=True):
    category: CategoryCode
    balance: Cents
    held: Count
    available: Count
    monthly_amount: Count
    upcoming: Annotated[
        list[Upcoming], Meta(description="This line's credits staged ahead of their month, not in balance.")
    ]


class Wallet(Struct, kw_only=True):
    client_id: Id
    balance: Cents
    held: Count
    available: Count
    lines: list[WalletLine]
    upcoming: Annotated[
        list[Upcoming],
        Meta(
            description="Credits staged ahead of their month, by month over all lines: not in balance, not spendable."
        ),
    ]
    last_event_id: Annotated[str, Meta(description="The event stream position this state stands at.")] | UnsetType = (
        UNSET
    )


class WalletTransaction(Struct, kw_only=True):
    id: Id
    type: TransactionType
    amount: Annotated[int, Meta(description="Signed: what it moved on the wallet line.")]
    balance_after: Cents
    category: CategoryCode
    created_at: Moment
    charge_id: str | None
    refund_id: str | None
    provider_id: Id | UnsetType = UNSET
    provider_name: Name | UnsetType = UNSET
    own_share: (
        Annotated[Cents, Meta(description="A capture of an itemized charge: paid to the provider directly.")]
        | UnsetType
    ) = UNSET
    items: Annotated[list[PricedItem], Meta(description="A capture of an itemized charge: its items.")] | UnsetType = (
        UNSET
    )


class WalletTransactionPage(Struct):
    data: list[WalletTransaction]
    next_cursor: NextCursor


# The monthly statement.


class CategoryTotal(Struct):
    category: CategoryCode
    amount: Cents
    count: Positive


class StatementByCategory(Struct):
    amount: Cents
    count: Count
    by_category: list[CategoryTotal]


class ProviderTotal(Struct):
    provider_id: Id
    provider_name: Name
    category: CategoryCode
    amount: Cents
    count: Positive


class StatementByProvider(Struct):
    amount: Cents
    count: Count
    by_provider: list[ProviderTotal]


class StatementCharges(StatementByProvider):
    own_share: Annotated[
        Cents, Meta(description="The own share of the itemized charges captured in the month: paid directly.")
    ]
    by_service: Annotated[
        list[ServiceBought], Meta(description="What the itemized charges captured in the month bought.")
    ]


class StatementLine(Struct):
    category: CategoryCode
    opening_balance: Cents
    credits: Cents
    charges: Cents
    refunds: Cents
    expiry: Cents
    closing_balance: Cents


class Statement(Struct):
    """opening_balance + credits - charges + refunds - expiry = closing_balance, for the wallet and for each
    line. Charges, refunds and expiry are positive amounts."""

    month: Month
    time_zone: TimeZone
    period_start: Annotated[Moment, Meta(description="The month's first midnight in `time_zone`.")]
    period_end: Annotated[Moment, Meta(description="The next month's first midnight (exclusive).")]
    complete: Annotated[bool, Meta(description="False for the current month: figures so far.")]
    as_of: Annotated[Moment, Meta(description="The closing instant: `period_end`, or now for the current month.")]
    opening_balance: Cents
    credits: StatementByCategory
    charges: StatementCharges
    refunds: StatementByProvider
    expiry: StatementByCategory
    closing_balance: Cents
    held_at_close: Annotated[int, Meta(description="Held by charges still pending at `as_of`: not a movement.")]
    lines: list[StatementLine]


# Charges waiting for approval, and mandates.


class ClientCharge(Charge, kw_only=True):
    provider_id: Id
    provider_name: Name


class ClientChargePage(Struct):
    data: list[ClientCharge]
    next_cursor: NextCursor


class Mandate(Struct):
    id: Id
    client_id: Id
    client_name: Name
    scope: RepresentationScope
    created_at: Moment


class MandateList(Struct):
    """Every active mandate, in one page."""

    data: list[Mandate]
    next_cursor: None


# The comparison of offers.


class ComparedOffer(Struct):
    offer_id: Id
    provider_id: Id
    provider_name: Name
    service: CategoryCode
    service_name: ServiceName
    category: Annotated[CategoryCode, Meta(description="The budget line the service is paid from.")]
    unit: ServiceUnit
    unit_price: Cents
    unit_value: Annotated[Cents, Meta(description="In force today: the most the budget pays for one unit.")]
    own_share_per_unit: Annotated[Cents, Meta(description="max(0, unit_price - unit_value): paid by the client.")]
    municipalities: list[MunicipalityCode]
    languages: list[LanguageCode]
    address: Address | None
    description: Description | None
    units_left: (
        Annotated[
            Count,
            Meta(
                description="Asked by a client, or a representative acting for one: whole units that what is"
                " available now on the client's line of `category` pays for at this offer,"
                " floor(available / min(unit_price, unit_value)); 0 without such a line."
            ),
        ]
        | UnsetType
    ) = UNSET


class ComparedOfferPage(Struct):
    data: list[ComparedOffer]
    next_cursor: NextCursor
