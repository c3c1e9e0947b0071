"""``rfc3339``: the one text form of a moment in every record, written out by hand for speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from wallet.clock import rfc3339

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)), None])


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), ZONES)
def test_it_is_what_isoformat_gives_in_utc_with_milliseconds_and_z(moment: datetime, zone: timezone | None) -> None:
    if zone is not None:
        moment = moment.replace(tzinfo=zone)
    expected = moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert rfc3339(moment) == expected
    assert rfc3339(moment) == expected  # the second time from the one-entry cache


def test_milliseconds_are_cut_not_rounded() -> None:
    assert rfc3339(datetime(2027, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == "2027-01-31T23:59:59.999Z"
    assert rfc3339(datetime(987, 6, 5, 4, 3, 2, 1_000, tzinfo=UTC)) == "0987-06-05T04:03:02.001Z"


def _formatted_with_percent(moment: datetime) -> str:
    """The formatter before the digit tables: ``%`` with seven ``%0Nd`` fields."""
    utc = moment.astimezone(UTC)
    fields = (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond // 1000)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % fields  # noqa: UP031 (the reference formatter, by design)


def test_the_digit_tables_give_what_percent_formatting_gave_at_every_edge() -> None:
    zones = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)), timezone(timedelta(minutes=-30))]
    checked = 0
    for year in (1, 9, 10, 99, 100, 999, 1000, 1999, 2000, 2026, 9999):
        for month, day in ((1, 2), (2, 28), (6, 15), (12, 30)):
            for hour, minute, second, microsecond in (
                (0, 0, 0, 0),
                (23, 59, 59, 999_999),
                (12, 30, 30, 999),
                (1, 1, 1, 1_000),
                (9, 9, 9, 9_999),
                (10, 10, 10, 10_000),
                (19, 59, 0, 99_999),
                (20, 0, 59, 100_000),
                (0, 0, 0, 500_500),
            ):
                for zone in zones:
                    moment = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=zone)
                    assert rfc3339(moment) == _formatted_with_percent(moment), moment
                    checked += 1
    assert checked == 11 * 4 * 9 * 4
