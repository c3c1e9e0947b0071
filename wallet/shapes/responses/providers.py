"""What a provider's routes answer: its offers, charges and refunds."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from wallet.ledger.catalog import OfferStatus
from wallet.ledger.charges import ChargeStatus, IdentityMethod, VoidReason
from wallet.shapes.fields import Amount, Cents, Count, NextCursor
from wallet.validation import (
    Address,
    CategoryCode,
    Day,
    Description,
    Id,
    LanguageCode,
    Moment,
    MunicipalityCode,
)

# Offers.


class OfferPrice(Struct):
    unit_price: Cents
    valid_from: Moment


class Offer(Struct):
    id: Id
    provider_id: Id
    service: CategoryCode
    service_id: Id
    status: OfferStatus
    unit_price: Annotated[Cents, Meta(description="The price now.")]
    unit_prices: Annotated[list[OfferPrice], Meta(description="Every price it has had, oldest first.")]
    description: Description | None
    municipalities: list[MunicipalityCode]
    languages: list[LanguageCode]
    address: Address | None
    created_at: Moment
    updated_at: Moment
    withdrawn_at: Moment | None


class OfferPage(Struct):
    data: list[Offer]
    next_cursor: NextCursor


# Charges and refunds.


class PricedItem(Struct):
    """An item as priced when the charge was made: later changes of price or unit value leave it be."""

    service: CategoryCode
    quantity: Annotated[str, Meta(examples=["1.5"], description="Units, as a decimal string.")]
    unit_price: Cents
    unit_value: Annotated[Cents, Meta(description="In force on the service date.")]
    amount: Annotated[Cents, Meta(description="Paid by the budget: min(unit_price, unit_value) x quantity.")]
    own_share: Annotated[Cents, Meta(description="Paid by the client to the provider directly, not from the wallet.")]
    service_date: Day


class Charge(Struct, kw_only=True):
    id: Id
    status: ChargeStatus
    amount: Amount
    category: CategoryCode
    method: IdentityMethod
    description: Description | None
    created_at: Moment
    refunded_amount: Count
    expires_at: Annotated[Moment, Meta(description="While pending: when the hold is released.")] | UnsetType = UNSET
    captured_at: Moment | UnsetType = UNSET
    voided_at: Moment | UnsetType = UNSET
    void_reason: VoidReason | UnsetType = UNSET
    own_share: (
        Annotated[Cents, Meta(description="Itemized: the items' own shares, paid to the provider directly.")]
        | UnsetType
    ) = UNSET
    items: Annotated[list[PricedItem], Meta(description="Itemized charges only.")] | UnsetType = UNSET


class ChargePage(Struct):
    data: list[Charge]
    next_cursor: NextCursor


class Refund(Struct):
    id: Id
    charge_id: Id
    amount: Amount
    status: Literal["succeeded"]
    created_at: Moment
    charge: Charge
