"""Response bodies are written by orjson: the bytes must be those ``json.dumps(body,
separators=(",", ":"), ensure_ascii=False).encode()`` wrote before, for every body a response holds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.api.http import response_json
from wallet.auth.tokens import Role


def before(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


REPRESENTATIVE = [
    {"id": "ch_0123456789abcdef", "status": "captured", "amount": 1250, "category": "home_care"},
    {
        "balance": 10_000,
        "available": 8_750,
        "held": 1_250,
        "last_event_id": "42",
        "lines": [
            {
                "category": "kotihoito",
                "name": "Kotihoito ja siivous",
                "balance": 10_000,
                "available": 8_750,
                "monthly_amount": 10_000,
            }
        ],
    },
    {
        "data": [
            {
                "type": "capture",
                "amount": -1250,
                "category": "omaishoidon_vapaa",
                "provider": "Hoiva Äijä Oy",
                "created_at": "2027-01-15T10:00:00Z",
                "description": None,
            }
        ],
        "next_cursor": "ZTE6NDI",
    },
    {"data": [], "next_cursor": None},
    {
        "type": "/v1/problems/validation_error",
        "title": "Unprocessable content",
        "status": 422,
        "code": "validation_error",
        "detail": "must be a phone number",
        "field": "phone",
    },
    {"name": "Pohjois-Savon hyvinvointialue – henkilökohtainen budjetti", "text": "Öljyä, äiti! Åland, smörgåsbord"},
    {
        "quotes": 'he said "hei" \\ bye /',
        "controls": "".join(map(chr, range(0x20))) + "\x7f\x80\x9f",
        "separators": "\u2028\u2029",
        "wide": "𝄞 😀 中文 ﬁ",
        "bom": "\ufeff",
        "nul": "a\x00b",
    },
    {"big": 2**63 - 1, "small": -(2**63), "zero": 0, "yes": True, "no": False, "nothing": None},
    {"nested": [[[]], {}, [{"a": [1, [2, [3]]]}]], "role": Role.PROVIDER},
    [],
    {},
    "",
    "ääkköset",
    0,
    -1,
    True,
    None,
]


@pytest.mark.parametrize("body", REPRESENTATIVE)
def test_representative_bodies_are_the_same_bytes(body: Any) -> None:
    assert response_json(body) == before(body)


JSON_TREES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@given(JSON_TREES)
def test_any_tree_of_strings_integers_booleans_and_none_is_the_same_bytes(body: Any) -> None:
    try:
        expected = before(body)
    except UnicodeEncodeError:  # a lone surrogate: neither writes it
        with pytest.raises(UnicodeEncodeError):
            response_json(body)
        return
    assert response_json(body) == expected


def test_what_orjson_refuses_is_written_or_refused_as_before() -> None:
    for body in ({"huge": 2**70}, {"negative": -(2**64)}, {1: "a", None: "b", True: "c"}, [10**30]):  # noqa: F601
        assert response_json(body) == before(body)
    with pytest.raises(UnicodeEncodeError):
        response_json({"lone": "\ud800"})

    @dataclass
    class Record:
        amount: int

    for refused in ({"at": datetime(2027, 1, 15, tzinfo=UTC)}, Record(1)):
        with pytest.raises(TypeError):
            before(refused)
        with pytest.raises(TypeError):
            response_json(refused)
