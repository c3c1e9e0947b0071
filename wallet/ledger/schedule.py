"""The organizer's settlement schedule: on which days providers are settled automatically.

ePassi pays merchants on the 1st, 8th, 16th and 24th of the month; the organizer names its own
days (``WALLET_SETTLEMENT_DAYS``). On a settlement day every provider with unsettled captures and
refunds made *before that day began* (midnight in the organizer's time zone) gets one batch, if
their net reaches the minimum; below it, the lines wait for the next settlement day. Because the
cut-off is the start of the day, not the moment of the check, every check on the same day judges
the same lines: when the check runs, or how often, does not change the outcome.

A day past the end of a short month (29, 30, 31) falls on that month's last day.
"""

from __future__ import annotations

import calendar
from datetime import date

from wallet.ledger.errors import ValidationError

FIRST_DAY = 1
LAST_DAY = 31


def parse_days(text: str, field: str = "settlement_days") -> frozenset[int]:
    """``"1,8,16,24"`` → the days of the month; each 1..31, at least one."""
    days: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not FIRST_DAY <= int(part) <= LAST_DAY:
            raise ValidationError(field, f"must be days of the month ({FIRST_DAY}-{LAST_DAY}) separated by commas")
        days.add(int(part))
    return frozenset(days)


def is_settlement_day(day: date, days: frozenset[int]) -> bool:
    if day.day in days:
        return True
    last = calendar.monthrange(day.year, day.month)[1]
    return day.day == last and any(wanted > last for wanted in days)
