"""Money: integer cents of euro, end to end. A float or a bool is never an amount."""

from __future__ import annotations

from typing import Any

from wallet.ledger.errors import ValidationError

# The largest amount any single money movement may carry: one million euros. Limits have names.
MAX_AMOUNT_CENTS = 100_000_000


def parse_amount(value: Any, field: str = "amount", *, allow_zero: bool = False) -> int:
    """Return ``value`` as a positive number of cents, or raise ``ValidationError`` naming ``field``.

    JSON ``true`` is a Python ``bool``, which is an ``int`` subclass: refused explicitly.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, "must be an integer number of cents")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValidationError(field, "must be a positive number of cents")
    if value > MAX_AMOUNT_CENTS:
        raise ValidationError(field, f"must be at most {MAX_AMOUNT_CENTS} cents")
    return value


def format_euros(amount_cents: int) -> str:
    """``1250`` → ``"12,50 €"``: the Finnish way, for SMS and statements."""
    sign = "-" if amount_cents < 0 else ""
    whole, cents = divmod(abs(amount_cents), 100)
    return f"{sign}{whole},{cents:02d} €"


def format_euros_grouped(amount_cents: int, space: str) -> str:
    """``123456789`` → ``"1 234 567,89 €"``, ``space`` between thousands and before the sign: the
    Finnish (and Swedish) way for a reader, where six digits in a row would look like a code."""
    sign = "-" if amount_cents < 0 else ""
    whole, cents = divmod(abs(amount_cents), 100)
    return f"{sign}{whole:,}".replace(",", space) + f",{cents:02d}{space}€"
