"""Requests from outside, parsed into typed commands. Every refusal names its field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from wallet import validation
from wallet.exports import ExportFormat
from wallet.ledger.charges import IdentityMethod
from wallet.ledger.errors import ValidationError
from wallet.ledger.money import parse_amount
from wallet.ledger.months import UnusedPolicy, parse_month

MAX_BUDGET_LINES = 50
MAX_PROVIDER_CATEGORIES = 50
MAX_BUDGET_MONTHS = 60
OTP_CODE_LENGTH = 6
IDENTITY_METHODS = tuple(method.value for method in IdentityMethod)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    return body


def _required(body: dict[str, Any], key: str, field: str | None = None) -> Any:
    if body.get(key) is None:
        raise ValidationError(field or key, "is required")
    return body[key]


def _optional_text(body: dict[str, Any], field: str, max_length: int) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    return validation.text(value, field, max_length, required=False) or None


@dataclass(frozen=True)
class CreateCategory:
    code: str
    name: str


def create_category(body: Any) -> CreateCategory:
    body = _object(body)
    return CreateCategory(
        code=validation.category_code(_required(body, "code"), "code"),
        name=validation.text(_required(body, "name"), "name"),
    )


@dataclass(frozen=True)
class CreateClient:
    name: str
    phone: str
    national_id: str | None


def create_client(body: Any) -> CreateClient:
    body = _object(body)
    national_id = body.get("national_id")
    return CreateClient(
        name=validation.text(_required(body, "name"), "name"),
        phone=validation.phone(_required(body, "phone")),
        national_id=None if national_id is None else validation.national_id(national_id),
    )


@dataclass(frozen=True)
class CreateBudget:
    start_month: str
    end_month: str
    unused: UnusedPolicy
    lines: tuple[tuple[str, int], ...]


def end_budget(body: Any) -> str:
    """``{end_month}``: the new last month of a budget."""
    return parse_month(_required(_object(body), "end_month"), "end_month")


def create_budget(body: Any) -> CreateBudget:
    body = _object(body)
    start = parse_month(_required(body, "start_month"), "start_month")
    end = parse_month(_required(body, "end_month"), "end_month")
    if end < start:
        raise ValidationError("end_month", "must not be before start_month")
    months = (int(end[:4]) - int(start[:4])) * 12 + int(end[5:]) - int(start[5:]) + 1
    if months > MAX_BUDGET_MONTHS:
        raise ValidationError("end_month", f"a budget covers at most {MAX_BUDGET_MONTHS} months")
    unused = UnusedPolicy(validation.one_of(_required(body, "unused"), "unused", ("carry_over", "expire")))
    raw_lines = _required(body, "lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise ValidationError("lines", "must be a non-empty list")
    if len(raw_lines) > MAX_BUDGET_LINES:
        raise ValidationError("lines", f"at most {MAX_BUDGET_LINES} lines")
    lines: dict[str, int] = {}
    for index, raw in enumerate(raw_lines):
        prefix = f"lines[{index}]"
        if not isinstance(raw, dict):
            raise ValidationError(prefix, "must be an object")
        category = validation.category_code(_required(raw, "category", f"{prefix}.category"), f"{prefix}.category")
        if category in lines:
            raise ValidationError(f"{prefix}.category", "appears twice")
        monthly_amount = _required(raw, "monthly_amount", f"{prefix}.monthly_amount")
        lines[category] = parse_amount(monthly_amount, f"{prefix}.monthly_amount")
    return CreateBudget(start, end, unused, tuple(lines.items()))


@dataclass(frozen=True)
class CreateProvider:
    name: str
    business_id: str
    iban: str
    categories: tuple[str, ...]


def create_provider(body: Any) -> CreateProvider:
    body = _object(body)
    raw_categories = _required(body, "categories")
    if not isinstance(raw_categories, list) or not raw_categories:
        raise ValidationError("categories", "must be a non-empty list of category codes")
    if len(raw_categories) > MAX_PROVIDER_CATEGORIES:
        raise ValidationError("categories", f"at most {MAX_PROVIDER_CATEGORIES} categories")
    categories = tuple(
        dict.fromkeys(validation.category_code(c, f"categories[{i}]") for i, c in enumerate(raw_categories))
    )
    return CreateProvider(
        name=validation.text(_required(body, "name"), "name"),
        business_id=validation.business_id(_required(body, "business_id")),
        iban=validation.iban(_required(body, "iban")),
        categories=categories,
    )


@dataclass(frozen=True)
class CreditRun:
    month: str


def credit_run(body: Any) -> CreditRun:
    body = _object(body)
    return CreditRun(parse_month(_required(body, "month"), "month"))


@dataclass(frozen=True)
class Charge:
    phone: str
    amount: int
    category: str
    description: str | None
    method: IdentityMethod
    national_id: str | None


def charge(body: Any) -> Charge:
    body = _object(body)
    amount = parse_amount(_required(body, "amount"))
    identity = _required(body, "identity")
    if not isinstance(identity, dict):
        raise ValidationError("identity", "must be an object with a method")
    method = IdentityMethod(validation.one_of(identity.get("method"), "identity.method", IDENTITY_METHODS))
    national_id = None
    if method is IdentityMethod.NATIONAL_ID:
        raw_id = _required(identity, "national_id", "identity.national_id")
        national_id = validation.national_id(raw_id, "identity.national_id")
    return Charge(
        phone=validation.phone(_required(body, "phone")),
        amount=amount,
        category=validation.category_code(_required(body, "category")),
        description=_optional_text(body, "description", validation.DESCRIPTION_MAX_LENGTH),
        method=method,
        national_id=national_id,
    )


def otp_code(body: Any, field: str = "code") -> str:
    body = _object(body)
    code = _required(body, field)
    if not isinstance(code, str) or len(code) != OTP_CODE_LENGTH or not code.isascii() or not code.isdigit():
        raise ValidationError(field, f"must be the {OTP_CODE_LENGTH}-digit code")
    return code


def refund_amount(body: Any) -> int:
    body = _object(body)
    return parse_amount(_required(body, "amount"))


def login_phone(body: Any) -> str:
    return validation.phone(_required(_object(body), "phone"))


ID_MAX_LENGTH = 64


def optional_id(value: Any, field: str) -> str | None:
    """An id given by the caller, or None; not checked for existence here."""
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value
        or len(value) > ID_MAX_LENGTH
        or not value.isascii()
        or not value.isprintable()
    ):
        raise ValidationError(field, f"must be an id of at most {ID_MAX_LENGTH} characters")
    return value


@dataclass(frozen=True)
class LoginVerification:
    phone: str
    code: str
    client_id: str | None  # whom to act for: the phone's own client, or one it represents


def login_verification(body: Any) -> LoginVerification:
    body = _object(body)
    return LoginVerification(login_phone(body), otp_code(body), optional_id(body.get("client_id"), "client_id"))


REPRESENTATION_SCOPES = ("view", "manage")


@dataclass(frozen=True)
class CreateRepresentation:
    phone: str
    national_id: str | None
    scope: str
    name: str | None


def create_representation(body: Any) -> CreateRepresentation:
    body = _object(body)
    national_id = body.get("national_id")
    return CreateRepresentation(
        phone=validation.phone(_required(body, "phone")),
        national_id=None if national_id is None else validation.national_id(national_id),
        scope=validation.one_of(_required(body, "scope"), "scope", REPRESENTATION_SCOPES),
        name=_optional_text(body, "name", validation.NAME_MAX_LENGTH),
    )


@dataclass(frozen=True)
class Settle:
    until: datetime | None  # None: now


def settle(body: Any) -> Settle:
    body = _object(body)
    until = body.get("until")
    return Settle(None if until is None else validation.moment(until, "until"))


def settlement_note(body: Any) -> str | None:
    return _optional_text(_object(body), "note", validation.DESCRIPTION_MAX_LENGTH)


@dataclass(frozen=True)
class Export:
    start: datetime | None  # inclusive
    end: datetime | None  # exclusive
    format: ExportFormat


def export(query: Mapping[str, str], zone: ZoneInfo) -> Export:
    """``?from=&to=&format=``: a day (in the organizer's time zone) or an RFC 3339 time each."""
    start = query.get("from") or None
    end = query.get("to") or None
    export_format = validation.one_of(query.get("format", "csv"), "format", tuple(f.value for f in ExportFormat))
    parsed = Export(
        None if start is None else validation.moment_or_day(start, "from", zone),
        None if end is None else validation.moment_or_day(end, "to", zone),
        ExportFormat(export_format),
    )
    if parsed.start is not None and parsed.end is not None and parsed.end <= parsed.start:
        raise ValidationError("to", "must be after from")
    return parsed
