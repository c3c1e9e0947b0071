"""Values from outside: each field's declared type and limits (read by msgspec when a body is
decoded, and published in the OpenAPI schemas), and its check with phonenumbers and python-stdnum."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import phonenumbers
from msgspec import Meta
from stdnum import iban as stdnum_iban
from stdnum.fi import hetu, ytunnus

from wallet.ledger.errors import ValidationError
from wallet.ledger.places import LANGUAGES, PILOT_MUNICIPALITIES

NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 500
PHONE_MIN_LENGTH = 3
PHONE_MAX_LENGTH = 32
NATIONAL_ID_MAX_LENGTH = 20
BUSINESS_ID_MAX_LENGTH = 20
IBAN_MAX_LENGTH = 64
OTP_CODE_LENGTH = 6
ID_MAX_LENGTH = 64
MOMENT_MAX_LENGTH = 40
ADDRESS_MAX_LENGTH = 200
# Parsing and checking a phone number with phonenumbers costs about 0.1 ms, a large share of a
# charge request; the same numbers come again and again (a provider's regular clients), so the
# last ones parsed are remembered, in this process's memory only, as the token cache does with
# tokens. Only numbers that passed are remembered.
PHONE_CACHE_ENTRIES = 4096
CATEGORY_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # the documented pattern (ECMA-262)
# A phone number as a person reads it: ASCII digits and the separators people write between them.
# Anything else (an invisible or bidirectional character, a digit of another script, a tel: URI, an
# extension) phonenumbers would quietly read or drop, so what was typed and what is charged could differ.
PHONE_PATTERN = r"^[0-9 +()-]+$"
_PHONE_CHARACTERS = re.compile(r"[0-9 +()-]+")  # used with fullmatch: no final newline
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"  # ECMA-262's \d is ASCII; parse_month checks the rest
_CATEGORY_CODE_FULL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # used with fullmatch: no final newline
# Bidirectional overrides and isolates let text display as something it is not.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def text(value: Any, field: str, max_length: int = NAME_MAX_LENGTH, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    # Checked as sent, before anything is trimmed: strip() would silently drop some control
    # characters (U+001C..U+001F, U+0085) at the ends, and the limit is on what the caller sends.
    if len(value) > max_length:
        raise ValidationError(field, f"must be at most {max_length} characters")
    if has_unsafe_characters(value):
        raise ValidationError(field, "must not contain control or bidirectional formatting characters")
    normalized = unicodedata.normalize("NFC", value.strip())
    if required and not normalized:
        raise ValidationError(field, "must not be empty")
    if len(normalized) > max_length:  # NFC lengthens a few characters
        raise ValidationError(field, f"must be at most {max_length} characters")
    return normalized


def has_unsafe_characters(value: str) -> bool:
    """Control characters (NUL, newlines, ...), surrogates, private-use and unassigned code points,
    and the bidirectional controls that make text display as something it is not (U+202E)."""
    return any(
        character in _BIDI_CONTROLS or unicodedata.category(character) in ("Cc", "Cs", "Co", "Cn")
        for character in value
    )


def category_code(value: Any, field: str = "category") -> str:
    if not isinstance(value, str) or not _CATEGORY_CODE_FULL.fullmatch(value):
        raise ValidationError(field, "must be a category code: letters, digits, '_', '.', '-', at most 64")
    return value


def phone(value: Any, field: str = "phone") -> str:
    """A phone number in E.164 (``+358401234567``); Finnish numbers may be written nationally."""
    if not isinstance(value, str) or not PHONE_MIN_LENGTH <= len(value) <= PHONE_MAX_LENGTH:
        raise ValidationError(field, "must be a phone number")
    if _PHONE_CHARACTERS.fullmatch(value) is None:
        raise ValidationError(field, "must be written with the digits 0-9, spaces, '+', '-' and parentheses only")
    try:
        return _e164(value)
    except phonenumbers.NumberParseException as error:
        raise ValidationError(field, "is not a phone number") from error
    except _InvalidPhone:
        raise ValidationError(field, "is not a valid phone number") from None


class _InvalidPhone(ValueError):
    pass


@lru_cache(maxsize=PHONE_CACHE_ENTRIES)
def _e164(value: str) -> str:
    """``value`` in E.164, or NumberParseException / _InvalidPhone (not remembered: lru_cache
    keeps only what returns)."""
    parsed = phonenumbers.parse(value, "FI")
    if not phonenumbers.is_valid_number(parsed):
        raise _InvalidPhone("not a valid number")  # never the number itself
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# A henkilötunnus as it is written when written canonically (DDMMYY, century sign, individual
# number, check character; upper case, nothing around it), which is how the API's callers send it.
# Only a pre-check: a code it passes, stdnum's hetu.validate passes too and returns unchanged, so
# stdnum stays the authority; anything else (other spellings, any doubt) is stdnum's to decide.
_CANONICAL_NATIONAL_ID = re.compile(r"[0-3][0-9][01][0-9][0-9][0-9][-+A-FU-Y][0-9][0-9][0-9][0-9A-FHJ-NPR-Y]")
_NATIONAL_ID_CENTURIES = {"+": 1800, **dict.fromkeys("-YXWVU", 1900), **dict.fromkeys("ABCDEF", 2000)}
_NATIONAL_ID_CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"  # by the nine digits modulo 31
_NATIONAL_ID_INDIVIDUALS = range(2, 900)  # 000 and 001 are not given; 900-999 are temporary ids


def _canonical_national_id(value: str) -> bool:
    """Whether ``value`` is a valid henkilötunnus written canonically: the checks of stdnum's
    ``hetu.validate(value, allow_temporary=False)`` (a real date, an individual number from 002 to
    899, the check character), on that one spelling."""
    if _CANONICAL_NATIONAL_ID.fullmatch(value) is None or int(value[7:10]) not in _NATIONAL_ID_INDIVIDUALS:
        return False
    try:
        date(_NATIONAL_ID_CENTURIES[value[6]] + int(value[4:6]), int(value[2:4]), int(value[0:2]))
    except ValueError:
        return False
    return value[10] == _NATIONAL_ID_CHECK_CHARACTERS[int(value[0:6] + value[7:10]) % 31]


def national_id(value: Any, field: str = "national_id") -> str:
    """A henkilötunnus, compacted and upper-cased (the 2023 century signs included)."""
    if not isinstance(value, str) or len(value) > NATIONAL_ID_MAX_LENGTH:
        raise ValidationError(field, "must be a Finnish personal identity code")
    if _canonical_national_id(value):
        return value  # what hetu.validate would return for it (tests/test_national_ids.py)
    try:
        return hetu.validate(value.strip(), allow_temporary=False)
    except Exception as error:  # stdnum raises its own ValidationError subclasses
        raise ValidationError(field, "is not a valid Finnish personal identity code") from error


def business_id(value: Any, field: str = "business_id") -> str:
    if not isinstance(value, str) or len(value) > BUSINESS_ID_MAX_LENGTH:
        raise ValidationError(field, "must be a Finnish business id (Y-tunnus)")
    try:
        return ytunnus.format(ytunnus.validate(value.strip()))
    except Exception as error:
        raise ValidationError(field, "is not a valid Finnish business id (Y-tunnus)") from error


def iban(value: Any, field: str = "iban") -> str:
    if not isinstance(value, str) or len(value) > IBAN_MAX_LENGTH:
        raise ValidationError(field, "must be an IBAN")
    try:
        return stdnum_iban.validate(value)
    except Exception as error:
        raise ValidationError(field, "is not a valid IBAN") from error


def one_of(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(field, f"must be one of {', '.join(allowed)}")
    return value


def moment(value: Any, field: str) -> datetime:
    """An RFC 3339 time with its offset (``2027-01-15T10:00:00Z``), as an aware UTC datetime."""
    if not isinstance(value, str) or not 10 < len(value) <= MOMENT_MAX_LENGTH or "T" not in value.upper():
        raise ValidationError(field, "must be an RFC 3339 time such as 2027-01-15T10:00:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(field, "must be an RFC 3339 time such as 2027-01-15T10:00:00Z") from None
    if parsed.tzinfo is None:
        raise ValidationError(field, "must name its offset from UTC, such as Z or +02:00")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-23:59 is past the last moment a datetime holds
        raise ValidationError(field, "is out of range") from None


def moment_or_day(value: Any, field: str, zone: ZoneInfo) -> datetime:
    """An RFC 3339 time, or a day (``2027-01-15``) meaning its first moment in ``zone``."""
    if isinstance(value, str) and len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValidationError(field, "must be a day (YYYY-MM-DD) or an RFC 3339 time") from None
        try:
            return datetime.combine(day, time(0), zone).astimezone(UTC)
        except OverflowError:  # 0001-01-01 in Helsinki is before the first moment a datetime holds
            raise ValidationError(field, "is out of range") from None
    return moment(value, field)


def otp_code(value: Any, field: str = "code") -> str:
    if not isinstance(value, str) or len(value) != OTP_CODE_LENGTH or not value.isascii() or not value.isdigit():
        raise ValidationError(field, f"must be the {OTP_CODE_LENGTH}-digit code")
    return value


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


# The declared types of the fields above: what msgspec checks before the functions here run, and
# what the OpenAPI schemas publish.
def municipality(value: Any, field: str) -> str:
    """A municipality by its Statistics Finland code, one of the vendored list (``ledger/places.py``)."""
    if not isinstance(value, str) or value not in PILOT_MUNICIPALITIES:
        raise ValidationError(field, "must be a municipality code (kuntanumero) of the pilot regions, e.g. 205")
    return value


def language(value: Any, field: str) -> str:
    if not isinstance(value, str) or value not in LANGUAGES:
        raise ValidationError(field, "must be an ISO 639-1 language code, e.g. fi, sv, en")
    return value


def day(value: Any, field: str) -> str:
    """A calendar day, YYYY-MM-DD."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValidationError(field, "must be a day, YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValidationError(field, "must be a day that exists") from None
    return value


Name = Annotated[str, Meta(min_length=1, max_length=NAME_MAX_LENGTH)]
Description = Annotated[str, Meta(max_length=DESCRIPTION_MAX_LENGTH)]
CategoryCode = Annotated[str, Meta(pattern=CATEGORY_CODE.pattern, examples=["home_care"])]
Phone = Annotated[
    str,
    Meta(
        min_length=PHONE_MIN_LENGTH,
        max_length=PHONE_MAX_LENGTH,
        pattern=PHONE_PATTERN,
        examples=["+358401234567", "040 123 4567"],
        description="A phone number: ASCII digits, spaces, `+`, `-` and parentheses; Finnish numbers may be "
        "written nationally. Answered in E.164.",
    ),
]
NationalId = Annotated[
    str,
    Meta(
        max_length=NATIONAL_ID_MAX_LENGTH,
        examples=["131052-308T"],
        description="A Finnish personal identity code (henkilötunnus). Stored only as a keyed hash.",
    ),
]
BusinessId = Annotated[str, Meta(max_length=BUSINESS_ID_MAX_LENGTH, examples=["2077474-0"], description="Y-tunnus.")]
Iban = Annotated[str, Meta(max_length=IBAN_MAX_LENGTH, examples=["FI2112345600000785"])]
OtpCode = Annotated[str, Meta(pattern=rf"^[0-9]{{{OTP_CODE_LENGTH}}}$", examples=["123456"])]
Month = Annotated[str, Meta(pattern=MONTH_PATTERN, examples=["2027-01"])]
Id = Annotated[str, Meta(description="An opaque id.")]
Moment = Annotated[str, Meta(extra_json_schema={"format": "date-time"}, description="RFC 3339, UTC.")]
MunicipalityCode = Annotated[
    str, Meta(pattern=r"^[0-9]{3}$", examples=["205"], description="Statistics Finland's municipality code.")
]
LanguageCode = Annotated[str, Meta(pattern=r"^[a-z]{2}$", examples=["fi"], description="ISO 639-1.")]
Day = Annotated[str, Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", examples=["2027-02-01"])]
Address = Annotated[str, Meta(max_length=ADDRESS_MAX_LENGTH)]
