"""Invoicing references: the Finnish reference number (viitenumero) and its RF form (ISO 11649).

A Finnish reference is 3 to 19 base digits followed by one check digit (4 to 20 digits in all).
The check digit weighs the base digits 7, 3, 1, 7, 3, 1, ... from the rightmost one; it is what
the weighted sum lacks of the next multiple of ten. Leading zeros are not significant and are
never printed; a reference is printed in groups of five digits counted from the right
(Finance Finland, "Viitenumero ja tarkiste").

The international form is ``RF`` + two ISO 7064 mod 97-10 check digits + the same reference,
printed in groups of four. ``stdnum.iso11649`` validates it.

Pure functions, no I/O. A bad base given to ``finnish_reference`` is a bug of the caller
(``InvalidReference``, a ``ValueError``); the ``is_valid_*`` functions answer foreign input.
"""

from __future__ import annotations

from stdnum import iso11649
from stdnum.iso7064 import mod_97_10

BASE_MIN_DIGITS = 3
BASE_MAX_DIGITS = 19
REFERENCE_MIN_DIGITS = BASE_MIN_DIGITS + 1
REFERENCE_MAX_DIGITS = BASE_MAX_DIGITS + 1
GROUP_DIGITS = 5
_WEIGHTS = (7, 3, 1)
_SEPARATORS = " \t"


class InvalidReference(ValueError):
    """A reference (or the base of one) that cannot be a Finnish reference number."""


def check_digit(base: str) -> str:
    """The 7-3-1 check digit of ``base`` (digits only, any length)."""
    if not base.isascii() or not base.isdigit():
        raise InvalidReference(f"a reference base is digits only, not {base!r}")
    total = sum(int(digit) * _WEIGHTS[position % 3] for position, digit in enumerate(reversed(base)))
    return str((10 - total % 10) % 10)


def finnish_reference(base: str) -> str:
    """``base`` with its check digit appended: ``"123456"`` → ``"1234561"``."""
    if not base.isascii() or not base.isdigit():
        raise InvalidReference(f"a reference base is digits only, not {base!r}")
    if base.startswith("0"):
        raise InvalidReference("a reference base must not start with 0: leading zeros are not significant")
    if not BASE_MIN_DIGITS <= len(base) <= BASE_MAX_DIGITS:
        raise InvalidReference(f"a reference base has {BASE_MIN_DIGITS} to {BASE_MAX_DIGITS} digits, not {len(base)}")
    return base + check_digit(base)


def compact_finnish_reference(value: str) -> str:
    """``value`` without spaces and leading zeros, as references are compared."""
    return "".join(character for character in value if character not in _SEPARATORS).lstrip("0")


def is_valid_finnish_reference(value: str) -> bool:
    """Whether ``value`` (spaces and leading zeros allowed) is a Finnish reference number."""
    reference = compact_finnish_reference(value)
    if not reference.isascii() or not reference.isdigit():
        return False
    if not REFERENCE_MIN_DIGITS <= len(reference) <= REFERENCE_MAX_DIGITS:
        return False
    return check_digit(reference[:-1]) == reference[-1]


def group_finnish_reference(reference: str) -> str:
    """Print in groups of five counted from the right: ``"1234567123456784"`` → ``"1 23456 71234 56784"``."""
    digits = compact_finnish_reference(reference)
    head = len(digits) % GROUP_DIGITS
    groups = [digits[:head]] if head else []
    groups += [digits[start : start + GROUP_DIGITS] for start in range(head, len(digits), GROUP_DIGITS)]
    return " ".join(groups)


def rf_reference(finnish: str) -> str:
    """The ISO 11649 form of a valid Finnish reference: ``"2348236"`` → ``"RF332348236"``."""
    reference = compact_finnish_reference(finnish)
    if not is_valid_finnish_reference(reference):
        raise InvalidReference(f"not a valid Finnish reference: {finnish!r}")
    rf = "RF" + mod_97_10.calc_check_digits(reference + "RF") + reference
    return iso11649.validate(rf)  # a bug if our own RF form fails the library's check


def is_valid_rf_reference(value: str) -> bool:
    """Whether ``value`` is a valid ISO 11649 reference (spaces allowed)."""
    return bool(iso11649.is_valid(value))


def finnish_from_rf(value: str) -> str | None:
    """The Finnish reference inside a valid RF reference, or ``None`` if there is none."""
    if not is_valid_rf_reference(value):
        return None
    inner = iso11649.compact(value)[4:]
    return compact_finnish_reference(inner) if is_valid_finnish_reference(inner) else None


def group_rf_reference(value: str) -> str:
    """Print an RF reference in groups of four: ``"RF33 2348 236"``."""
    return str(iso11649.format(value))
