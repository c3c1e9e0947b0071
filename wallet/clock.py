"""Time, injected: the service asks a clock, so tests can move time without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)


def rfc3339(moment: datetime) -> str:
    """UTC, second precision with milliseconds, ``Z`` suffix."""
    global _last_formatted
    last = _last_formatted  # one tuple, read once: safe beside the writer thread's calls
    if last[0] is moment:  # a charge formats its one ``now`` several times; a datetime never changes
        return last[1]
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    # ``utc.isoformat(timespec="milliseconds")`` with ``Z`` for ``+00:00``, from tables of digits:
    # a charge formats several moments, and isoformat or ``%`` cost several times these lookups.
    text = (
        f"{_YEARS[utc.year]}-{_TWO_DIGITS[utc.month]}-{_TWO_DIGITS[utc.day]}T{_TWO_DIGITS_COLON[utc.hour]}"
        f"{_TWO_DIGITS_COLON[utc.minute]}{_TWO_DIGITS[utc.second]}{_MILLISECONDS_Z[utc.microsecond // 1000]}"
    )
    _last_formatted = (moment, text)  # holds the moment, so its id cannot be reused meanwhile
    return text


class _Years(dict[int, str]):
    """A year's four digits, each written out the first time it is asked for."""

    def __missing__(self, year: int) -> str:
        text = self[year] = f"{year:04d}"
        return text


_last_formatted: tuple[datetime | None, str] = (None, "")
_YEARS = _Years()
_TWO_DIGITS = tuple(f"{number:02d}" for number in range(100))
_TWO_DIGITS_COLON = tuple(f"{number:02d}:" for number in range(100))
_MILLISECONDS_Z = tuple(f".{number:03d}Z" for number in range(1000))


def month_of(moment: datetime, zone: ZoneInfo) -> str:
    """The budget month (``YYYY-MM``) of a moment in the organizer's time zone."""
    local = moment.astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The budget month ``YYYY-MM`` as UTC instants [start, end): from the first midnight of the month
    to the first midnight of the next, both in the organizer's time zone (DST included)."""
    year, number = int(month[:4]), int(month[5:7])
    following = (year + 1, 1) if number == 12 else (year, number + 1)
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(following[0], following[1], 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)
