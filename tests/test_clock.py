"""``rfc3339``: the one text form of a moment in every record, written out by hand for speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, strategies as st

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
