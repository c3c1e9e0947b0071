"""``GET /v1/me/wallet`` is built from one statement's rows in one pass (``wallet_from_rows``): the
record must be the one the earlier way of building it gave, for any rows that statement can give."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.storage.sql.reads import wallet_from_rows


def as_before(client_id: str, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The record as get_wallet built it before (7efe026), with the credits staged ahead (part 3) since."""
    accounts = [row for row in rows if row[0] == 0]
    monthly = {row[1]: row[2] for row in rows if row[0] == 1}
    staged = sorted((row[1][7:], row[1][:7], row[2]) for row in rows if row[0] == 3)  # category, month, amount
    last_event = next(row[2] for row in rows if row[0] == 2)
    lines: dict[str, Any] = {}
    for _, category, balance, held in accounts:
        lines[category] = {
            "category": category,
            "balance": balance,
            "held": held,
            "available": balance - held,
            "monthly_amount": monthly.get(category, 0),
        }
    for category, amount in monthly.items():
        lines.setdefault(
            category, {"category": category, "balance": 0, "held": 0, "available": 0, "monthly_amount": amount}
        )
    for category, _, _ in staged:
        lines.setdefault(category, {"category": category, "balance": 0, "held": 0, "available": 0, "monthly_amount": 0})
    totals: dict[str, int] = {}
    for line in lines.values():
        line["upcoming"] = [{"month": m, "amount": a} for c, m, a in staged if c == line["category"]]
    for _, month, amount in staged:
        totals[month] = totals.get(month, 0) + amount
    ordered = [lines[category] for category in sorted(lines)]
    return {
        "client_id": client_id,
        "balance": sum(line["balance"] for line in ordered),
        "held": sum(line["held"] for line in ordered),
        "available": sum(line["available"] for line in ordered),
        "lines": ordered,
        "upcoming": [{"month": month, "amount": totals[month]} for month in sorted(totals)],
        "last_event_id": str(last_event),
    }


CATEGORIES = st.sampled_from(["home_care", "kotihoito", "A", "a", "respite.care", "Z-9", "omaishoito_vapaa"])
AMOUNTS = st.integers(min_value=0, max_value=100_000_000)


@st.composite
def statement_rows(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    accounts = draw(st.dictionaries(CATEGORIES, st.tuples(AMOUNTS, AMOUNTS), max_size=5))  # one account a category
    monthly = draw(st.lists(st.tuples(CATEGORIES, AMOUNTS), max_size=6))  # budgets may overlap
    position = draw(st.none() | st.integers(min_value=0, max_value=2**62))
    rows = [(0, category, balance, held) for category, (balance, held) in accounts.items()]
    rows += [(1, category, amount, None) for category, amount in monthly]
    staged = draw(st.dictionaries(st.tuples(CATEGORIES, st.sampled_from(["2027-02", "2027-01"])), AMOUNTS, max_size=4))
    rows += [
        (3, month + category, amount, None) for (category, month), amount in staged.items()
    ]  # one per line and month
    return [*rows, (2, None, position, None)]


@given(statement_rows())
def test_the_record_is_the_one_built_before(rows: list[tuple[Any, ...]]) -> None:
    record = wallet_from_rows("cl_1", rows)
    assert record == as_before("cl_1", rows)
    assert list(record) == list(as_before("cl_1", rows))  # the same order of members in the response
    assert all(
        list(line) == ["category", "balance", "held", "available", "monthly_amount", "upcoming"]
        for line in record["lines"]
    )


def test_rows_without_a_stream_position_are_a_bug_not_a_wallet() -> None:
    with pytest.raises(RuntimeError):
        wallet_from_rows("cl_1", [(0, "home_care", 100, 0)])
