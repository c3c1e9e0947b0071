"""Request bodies, each declared once as a msgspec ``Struct``: decoded with strict types (a JSON
``true`` or ``1.0`` is no amount), then checked field by field in ``__post_init__`` with the
validators of ``wallet.validation``. Every refusal is a ``ValidationError`` naming its field as the
caller wrote it (``lines[0].monthly_amount``). The service takes these structs as its commands."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Meta, Struct, field

from wallet import validation
from wallet.exports import ExportFormat
from wallet.ledger.catalog import QUANTITY_DECIMALS, QUANTITY_MAX, ServiceUnit, parse_quantity
from wallet.ledger.charges import IdentityMethod
from wallet.ledger.errors import ValidationError
from wallet.ledger.money import MAX_AMOUNT_CENTS
from wallet.ledger.months import UnusedPolicy, parse_month
from wallet.ledger.parties import RepresentationScope
from wallet.ledger.plans import DEFAULT_WEEKS_PER_YEAR, WEEKS_PER_YEAR_MAX, Per
from wallet.validation import (
    Address,
    BusinessId,
    CategoryCode,
    Day,
    Description,
    Iban,
    Id,
    LanguageCode,
    Moment,
    Month,
    MunicipalityCode,
    Name,
    NationalId,
    OtpCode,
    Phone,
)

MAX_BUDGET_LINES = 50
MAX_PROVIDER_CATEGORIES = 50
MAX_BUDGET_MONTHS = 60
MAX_OFFER_MUNICIPALITIES = 100
MAX_OFFER_LANGUAGES = 20

Amount = Annotated[int, Meta(ge=1, le=MAX_AMOUNT_CENTS, description="Integer cents (EUR), positive.")]
Shape = TypeVar("Shape", bound=Struct)


def decode(shape: type[Shape], body: Any) -> Shape:
    """``body`` (parsed JSON) as ``shape``. A member that is null counts as absent, as it always has."""
    try:
        return msgspec.convert(_prepared(body, ""), shape, strict=True)
    except msgspec.ValidationError as error:
        raise _refusal(str(error)) from None


def _prepared(value: Any, path: str) -> Any:
    """``value`` without its null members; a lone surrogate (which msgspec cannot even compare) is
    refused naming its field, and a member named with one is ignored like any other unknown member."""
    if isinstance(value, str):
        if not value.isascii() and not _encodable(value):
            raise ValidationError(path or "body", "must not contain control or bidirectional formatting characters")
        return value
    if isinstance(value, dict):
        return {
            key: _prepared(item, f"{path}.{key}" if path else key)
            for key, item in value.items()
            if item is not None and (key.isascii() or _encodable(key))
        }
    if isinstance(value, list):
        return [_prepared(item, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


_AT = re.compile(r" - at `\$(?P<path>.*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>.+)`$")


def _refusal(message: str) -> ValidationError:
    """msgspec's ``Expected `int`, got `bool` - at `$.lines[0].monthly_amount``` as the field it names."""
    at = _AT.search(message)
    path, detail = (at["path"], message[: at.start()]) if at else ("", message)
    missing = _MISSING.match(detail)
    if missing:
        path, detail = f"{path}.{missing['name']}", "is required"
    elif detail.startswith("Invalid"):  # "Invalid enum value '...'": never the caller's value back
        detail = "is not one of the values it takes"
    elif not path:
        detail = "must be a JSON object"
    return ValidationError(path.lstrip(".") or "body", detail)


def _optional_text(value: str | None, field: str, max_length: int) -> str | None:
    return None if value is None else validation.text(value, field, max_length, required=False) or None


# Tokens.

OAUTH_FIELD_MAX_LENGTH = 256
CLIENT_CREDENTIALS: Literal["client_credentials"] = "client_credentials"
OAuthField = Annotated[str, Meta(min_length=1, max_length=OAUTH_FIELD_MAX_LENGTH, pattern=r"^[\x20-\x7E]+$")]


class TokenRequest(Struct):
    """OAuth2 client credentials. The id and secret may come in HTTP Basic instead (then no secret here)."""

    # Read by the token handler from a form or JSON, with HTTP Basic merged in (api/handlers/tokens.py).
    grant_type: Literal["client_credentials"]
    client_id: OAuthField | None = None
    client_secret: OAuthField | None = None


class LoginRequest(Struct):
    phone: Phone

    def __post_init__(self) -> None:
        self.phone = validation.phone(self.phone)


class LoginVerification(Struct):
    phone: Phone
    code: OtpCode
    client_id: (
        Annotated[
            Id,
            Meta(
                description="Whom to act for: the phone's own client, or a client the phone's representative has "
                "an active mandate for (403 otherwise, and the code stays unspent). Without it: the phone's own "
                "client; else a representative token, with its only client chosen if it has one."
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        self.phone = validation.phone(self.phone)
        self.code = validation.otp_code(self.code)
        self.client_id = validation.optional_id(self.client_id, "client_id")


def client_credentials(fields: Mapping[str, Any]) -> tuple[str, str]:
    """The client id and secret of a token request's fields, refused with RFC 6749's error names:
    ``invalid_request`` for a parameter missing or malformed (grant_type is required, section
    4.4.2), ``unsupported_grant_type`` for a grant type other than client_credentials."""
    grant_type = fields.get("grant_type")
    if not isinstance(grant_type, str) or not grant_type:
        detail = "is required" if grant_type in (None, "") else "must be a string"
        raise ValidationError("grant_type", detail, error="invalid_request")
    if grant_type != CLIENT_CREDENTIALS:
        raise ValidationError("grant_type", "must be client_credentials", error="unsupported_grant_type")
    return _credential(fields, "client_id"), _credential(fields, "client_secret")


def _credential(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise ValidationError(name, "is required", error="invalid_request")
    if not isinstance(value, str) or len(value) > OAUTH_FIELD_MAX_LENGTH:
        raise ValidationError(
            name, f"must be a string of at most {OAUTH_FIELD_MAX_LENGTH} characters", error="invalid_request"
        )
    if not (value.isascii() and value.isprintable()):  # RFC 6749 VSCHAR; a lone surrogate cannot even be hashed
        raise ValidationError(name, "must be printable ASCII", error="invalid_request")
    return value


# Organizer.


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
        self.name = _optional_text(self.name, "name", validation.NAME_MAX_LENGTH)


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
        self.note = _optional_text(self.note, "note", validation.DESCRIPTION_MAX_LENGTH)

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


# Providers.


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
        self.description = _optional_text(self.description, "description", validation.DESCRIPTION_MAX_LENGTH)

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


# Settlements.


class NewSettlement(Struct):
    until: Annotated[Moment, Meta(description="Cut-off, at most now; default now.")] | None = None

    def __post_init__(self) -> None:
        self.cutoff()

    def cutoff(self) -> datetime | None:
        """The cut-off as an aware UTC datetime; None: now."""
        return None if self.until is None else validation.moment(self.until, "until")


class SettlementPayment(Struct):
    note: Description | None = None

    def __post_init__(self) -> None:
        self.note = _optional_text(self.note, "note", validation.DESCRIPTION_MAX_LENGTH)


SettlementId = Annotated[str, Meta(pattern="^se_[0-9a-z]{1,64}$", description="A settlement's id.")]


class NewPaymentBatch(Struct):
    settlement_ids: (
        Annotated[
            list[SettlementId],
            Meta(min_length=1, max_length=1000, description="Default: every invoiced settlement in no batch."),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.settlement_ids is not None and len(set(self.settlement_ids)) != len(self.settlement_ids):
            raise ValidationError("settlement_ids", "names a settlement twice")


# The service catalog and offers.


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
        self.description = _optional_text(self.description, "description", validation.DESCRIPTION_MAX_LENGTH)
        self.municipalities = _codes(self.municipalities, "municipalities", validation.municipality)
        self.languages = _codes(self.languages, "languages", validation.language)
        self.address = _optional_text(self.address, "address", validation.ADDRESS_MAX_LENGTH)


class OfferChange(Struct):
    """What changes; a field left out stays. A new price joins the offer's price history."""

    unit_price: Amount | None = None
    description: Description | None = None
    municipalities: Annotated[tuple[MunicipalityCode, ...], Meta(max_length=MAX_OFFER_MUNICIPALITIES)] | None = None
    languages: Annotated[tuple[LanguageCode, ...], Meta(max_length=MAX_OFFER_LANGUAGES)] | None = None
    address: Address | None = None

    def __post_init__(self) -> None:
        self.description = _optional_text(self.description, "description", validation.DESCRIPTION_MAX_LENGTH)
        if self.municipalities is not None:
            self.municipalities = _codes(self.municipalities, "municipalities", validation.municipality)
        if self.languages is not None:
            self.languages = _codes(self.languages, "languages", validation.language)
        self.address = _optional_text(self.address, "address", validation.ADDRESS_MAX_LENGTH)
        fields = (self.unit_price, self.description, self.municipalities, self.languages, self.address)
        if all(value is None for value in fields):
            raise ValidationError("body", "names nothing to change")


REQUESTS: tuple[type[Struct], ...] = (
    TokenRequest,
    LoginRequest,
    LoginVerification,
    NewCategory,
    NewClient,
    NewRepresentation,
    NewBudget,
    BudgetEnd,
    BudgetChange,
    NewProvider,
    CreditRunRequest,
    NewCharge,
    ChargeConfirmation,
    NewRefund,
    NewSettlement,
    SettlementPayment,
    NewPaymentBatch,
    NewService,
    NewUnitValue,
    NewOffer,
    OfferChange,
)


# Query strings.


@dataclass(frozen=True)
class ExportQuery:
    start: datetime | None  # inclusive
    end: datetime | None  # exclusive
    format: ExportFormat


def export_query(query: Mapping[str, str], zone: ZoneInfo) -> ExportQuery:
    """``?from=&to=&format=``: a day (in the organizer's time zone) or an RFC 3339 time each."""
    start = query.get("from") or None
    end = query.get("to") or None
    export_format = validation.one_of(query.get("format", "csv"), "format", tuple(f.value for f in ExportFormat))
    parsed = ExportQuery(
        None if start is None else validation.moment_or_day(start, "from", zone),
        None if end is None else validation.moment_or_day(end, "to", zone),
        ExportFormat(export_format),
    )
    if parsed.start is not None and parsed.end is not None and parsed.end <= parsed.start:
        raise ValidationError("to", "must be after from")
    return parsed
