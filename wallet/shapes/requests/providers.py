"""A provider's requests: its offers, charges (with their identity checks) and their confirmation,
refunds, and settling what it has charged."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import Meta, Struct

from wallet import validation
from wallet.ledger.catalog import QUANTITY_DECIMALS, QUANTITY_MAX, parse_quantity
from wallet.ledger.charges import IdentityMethod
from wallet.ledger.errors import ValidationError
from wallet.shapes.fields import Amount
from wallet.shapes.requests.decoding import optional_text
from wallet.validation import (
    Address,
    CategoryCode,
    Day,
    Description,
    LanguageCode,
    Moment,
    MunicipalityCode,
    NationalId,
    OtpCode,
    Phone,
)

MAX_OFFER_MUNICIPALITIES = 100
MAX_OFFER_LANGUAGES = 20


# Offers.


def _codes(values: tuple[str, ...], field: str, check: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(check(value, f"{field}[{index}]") for index, value in enumerate(values)))


class NewOffer(Struct):
    service: Annotated[CategoryCode, Meta(description="The service's code.")]
    unit_price: Annotated[
        Amount, Meta(description="Cents for one unit; above the unit value the client pays the rest.")
    ]
    description: Description | None = None
    municipalities: Annotated[tuple[MunicipalityCode, ...], Meta(max_length=MAX_OFFER_MUNICIPALITIES)] = ()
    languages: Annotated[tuple[LanguageCode, ...], Meta(max_length=MAX_OFFER_LANGUAGES)] = ()
    address: Address | None = None

    def __post_init__(self) -> None:
        self.service = validation.category_code(self.service, "service")
        self.description = optional_text(self.description, "description", validation.DESCRIPTION_MAX_LENGTH)
        self.municipalities = _codes(self.municipalities, "municipalities", validation.municipality)
        self.languages = _codes(self.languages, "languages", validation.language)
        self.address = optional_text(self.address, "address", validation.ADDRESS_MAX_LENGTH)


class OfferChange(Struct):
    """What changes; a field left out stays. A new price joins the offer's price history."""

    unit_price: Amount | None = None
    description: Description | None = None
    municipalities: Annotated[tuple[MunicipalityCode, ...], Meta(max_length=MAX_OFFER_MUNICIPALITIES)] | None = None
    languages: Annotated[tuple[LanguageCode, ...], Meta(max_length=MAX_OFFER_LANGUAGES)] | None = None
    address: Address | None = None

    def __post_init__(self) -> None:
        self.description = optional_text(self.description, "description", validation.DESCRIPTION_MAX_LENGTH)
        if self.municipalities is not None:
            self.municipalities = _codes(self.municipalities, "municipalities", validation.municipality)
        if self.languages is not None:
            self.languages = _codes(self.languages, "languages", validation.language)
        self.address = optional_text(self.address, "address", validation.ADDRESS_MAX_LENGTH)
        fields = (self.unit_price, self.description, self.municipalities, self.languages, self.address)
        if all(value is None for value in fields):
            raise ValidationError("body", "names nothing to change")


# Charges.


class NationalIdIdentity(Struct, tag_field="method", tag=IdentityMethod.NATIONAL_ID.value):
    national_id: NationalId

    def __post_init__(self) -> None:
        self.national_id = validation.national_id(self.national_id, "identity.national_id")


class OtpIdentity(Struct, tag_field="method", tag=IdentityMethod.OTP.value):
    pass


class AppIdentity(Struct, tag_field="method", tag=IdentityMethod.APP.value):
    """Held until the client approves or declines in the app, or the request expires."""


Identity = NationalIdIdentity | OtpIdentity | AppIdentity


MAX_CHARGE_ITEMS = 20


class ChargeItem(Struct):
    """One delivered service (suorite): priced at the provider's active offer, the budget paying at
    most the service's unit value in force on ``service_date`` (``wallet.ledger.catalog``)."""

    service: Annotated[CategoryCode, Meta(description="A service's code; the provider has an active offer of it.")]
    quantity: Annotated[
        float | str,
        Meta(
            description=f"Units: positive, at most {QUANTITY_DECIMALS} decimals, at most {QUANTITY_MAX}; a JSON "
            "number or a decimal string (`1.5`).",
            examples=["1.5"],
        ),
    ]
    service_date: Annotated[Day, Meta(description="When delivered (default today): today or a day before.")] | None = (
        None
    )

    def __post_init__(self) -> None:
        self.service = validation.category_code(self.service, "service")
        if self.service_date is not None:
            self.service_date = validation.day(self.service_date, "service_date")

    @property
    def quantity_hundredths(self) -> int:
        return parse_quantity(self.quantity, "quantity")


class NewCharge(Struct):
    """Either ``amount`` and ``category``, or ``items`` (all of one category): not both."""

    phone: Phone
    identity: Identity
    amount: Amount | None = None
    category: CategoryCode | None = None
    items: Annotated[tuple[ChargeItem, ...], Meta(min_length=1, max_length=MAX_CHARGE_ITEMS)] | None = None
    description: Description | None = None

    def __post_init__(self) -> None:
        self.phone = validation.phone(self.phone)
        if self.items is None:
            if self.amount is None:
                raise ValidationError("amount", "is required (or send items)")
            if self.category is None:
                raise ValidationError("category", "is required (or send items)")
            self.category = validation.category_code(self.category)
        else:
            if self.amount is not None or self.category is not None:
                raise ValidationError("items", "come in place of amount and category: send one or the other")
            for index, item in enumerate(self.items):  # checked now: refused before anything is written
                parse_quantity(item.quantity, f"items[{index}].quantity")
        self.description = optional_text(self.description, "description", validation.DESCRIPTION_MAX_LENGTH)

    @property
    def method(self) -> IdentityMethod:
        return IdentityMethod(self.identity.__struct_config__.tag)

    @property
    def national_id(self) -> str | None:
        return self.identity.national_id if isinstance(self.identity, NationalIdIdentity) else None


class ChargeConfirmation(Struct):
    code: OtpCode

    def __post_init__(self) -> None:
        self.code = validation.otp_code(self.code)


class NewRefund(Struct):
    amount: Amount


# Settling what it has charged.


class NewSettlement(Struct):
    until: Annotated[Moment, Meta(description="Cut-off, at most now; default now.")] | None = None

    def __post_init__(self) -> None:
        self.cutoff()

    def cutoff(self) -> datetime | None:
        """The cut-off as an aware UTC datetime; None: now."""
        return None if self.until is None else validation.moment(self.until, "until")
