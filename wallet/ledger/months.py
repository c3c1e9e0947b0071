"""Budget months ("2027-01") and the rules of the monthly credit run.

A budget runs from ``start_month`` to ``end_month`` inclusive and credits each line's monthly
amount once a month. At each month boundary a line's unused money is returned to funding
(an *expiry*) when the budget's policy is ``expire``, or, for ``carry_over``, only once the
budget period has ended. Money still held by pending charges stays until they resolve.
One month of money at a time: a run ahead of its month only stages the month's credit; it reaches
the wallet line (and can be spent) once the month has begun, after the expiry at its boundary.
"""

from __future__ import annotations

import re
from enum import Enum

from wallet.ledger.errors import Conflict, ValidationError

# ASCII digits only (\d matches any script's digits), and \Z: "$" would match before a final newline.
_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])\Z")


class UnusedPolicy(str, Enum):
    CARRY_OVER = "carry_over"
    EXPIRE = "expire"


def parse_month(value: object, field: str) -> str:
    if not isinstance(value, str) or not _MONTH.match(value):
        raise ValidationError(field, "must be a month written YYYY-MM")
    year = int(value[:4])
    if not 2000 <= year <= 2999:
        raise ValidationError(field, "year out of range")
    return value


def next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year + 1}-01" if number == 12 else f"{year}-{number + 1:02d}"


def previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def expires_at_boundary(policy: UnusedPolicy, start_month: str, end_month: str, boundary_month: str) -> bool:
    """Whether a line of a budget returns its unused money when ``boundary_month`` begins.

    ``boundary_month`` is the month that starts; the money was for the months before it.
    """
    if boundary_month <= start_month:
        return False  # the budget had not credited anything before this boundary
    if boundary_month > next_month(end_month):
        return False  # the period ended earlier; its boundary has passed
    if boundary_month == next_month(end_month):
        return True  # end of the budget period: whatever the policy
    return policy is UnusedPolicy.EXPIRE


def expiry_amount(available: int, credited_for_boundary_or_later: int) -> int:
    """What returns to funding at a boundary: available money that is not the new month's."""
    return max(available - credited_for_boundary_or_later, 0)


def check_new_end(
    start_month: str, end_month: str, new_end_month: str, current_month: str, last_credited_month: str | None
) -> None:
    """Whether a budget may end at ``new_end_month`` instead of ``end_month``: only sooner, never
    before its start or the current month (what is past stays as it was), and never before a
    month already credited (the next month's credit may be staged ahead of time; ending before it
    would leave a credit staged for a month outside the budget)."""
    if new_end_month > end_month:
        raise ValidationError("end_month", f"a budget can only be ended sooner: it ends {end_month}")
    if new_end_month < start_month:
        raise ValidationError("end_month", f"must not be before the budget's start ({start_month})")
    if new_end_month < current_month:
        raise ValidationError("end_month", f"must not be before the current month ({current_month})")
    if last_credited_month is not None and new_end_month < last_credited_month:
        raise Conflict(
            f"{last_credited_month} is already credited; the budget can end {last_credited_month} at the soonest",
            field="end_month",
            last_credited_month=last_credited_month,
        )
