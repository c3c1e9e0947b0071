"""The henkilötunnus check: a canonical code is passed without stdnum (``_canonical_national_id``),
but only where stdnum's ``hetu.validate(code, allow_temporary=False)`` passes it too and returns it
unchanged; every other answer is stdnum's. Checked here on every century sign (the 2023 ones
included), on valid codes and on codes wrong in each part, about 290,000 in all."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from stdnum.fi import hetu

from wallet import validation
from wallet.ledger.errors import ValidationError

CENTURY_SIGNS = {
    "+": 1800,
    "-": 1900,
    "Y": 1900,
    "X": 1900,
    "W": 1900,
    "V": 1900,
    "U": 1900,
    "A": 2000,
    "B": 2000,
    "C": 2000,
    "D": 2000,
    "E": 2000,
    "F": 2000,
}
CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
CODES_PER_SIGN = 1_700  # each made into 13 codes: two valid ones and altered ones


def valid_code(day: date, sign: str, individual: int) -> str:
    digits = f"{day:%d%m}{day.year % 100:02d}{individual:03d}"
    return f"{digits[:6]}{sign}{digits[6:]}{CHECK_CHARACTERS[int(digits) % 31]}"


def stdnum_answer(code: str) -> str | None:
    try:
        return str(hetu.validate(code.strip(), allow_temporary=False))
    except Exception:
        return None


def ours(code: str) -> str | None:
    try:
        return validation.national_id(code)
    except ValidationError:
        return None


def codes() -> Iterator[str]:
    chooser = random.Random(2023)
    for sign, century in CENTURY_SIGNS.items():
        first = date(century, 1, 1)
        for _ in range(CODES_PER_SIGN):
            day = first + timedelta(days=chooser.randrange(36_524))
            edge = chooser.random() < 0.05  # the individual numbers at the bounds of the range
            individual = chooser.choice((2, 3, 899, 900, 0, 1, 999)) if edge else chooser.randrange(1000)
            code = valid_code(day, sign, individual)
            yield code
            yield valid_code(day, sign, chooser.randrange(2, 900))
            yield code[:10] + chooser.choice(CHECK_CHARACTERS + "GIOQZ0a")  # another check character
            yield code.lower()
            yield f" {code}"
            yield f"{code}\n"
            yield code.replace(sign, chooser.choice("+-ABCDEFUVWXYZGa/ \u2013"), 1)  # another sign
            yield code[:6] + "\u2010" + code[7:] if sign == "-" else code[:3] + "\u0661" + code[4:]
            yield f"{chooser.randrange(100):02d}{chooser.randrange(20):02d}" + code[4:]  # another day and month
            yield code[:4] + f"{chooser.randrange(100):02d}" + code[6:]  # another year
            yield code[:10]  # too short
            yield code + chooser.choice(CHECK_CHARACTERS)  # too long
            position = chooser.randrange(11)
            yield code[:position] + chr(chooser.randrange(32, 0x250)) + code[position + 1 :]
    # Every day of the leap years' Februaries and the days no month has, in each century.
    for sign, century in CENTURY_SIGNS.items():
        for year in (0, 4, 96, 99):
            for month, day in ((2, 28), (2, 29), (2, 30), (4, 31), (12, 31), (13, 1), (0, 1), (1, 0), (1, 32)):
                digits = f"{day:02d}{month:02d}{year:02d}123"
                yield f"{digits[:6]}{sign}{digits[6:]}{CHECK_CHARACTERS[int(digits) % 31]}"


@pytest.fixture(scope="module")
def generated() -> list[str]:
    return list(codes())


def test_the_generated_set_is_large_and_mixed(generated: list[str]) -> None:
    assert len(generated) > 280_000
    accepted = sum(stdnum_answer(code) is not None for code in generated[:50_000])
    assert 5_000 < accepted < 45_000


def test_the_pre_check_passes_only_codes_stdnum_passes_unchanged(generated: list[str]) -> None:
    passed = 0
    for code in generated:
        if validation._canonical_national_id(code):
            passed += 1
            assert stdnum_answer(code) == code, code
    assert passed > 30_000  # the canonical valid codes: most of what callers send takes the short way


def test_every_answer_is_stdnum_s(generated: list[str]) -> None:
    for code in generated:
        assert ours(code) == stdnum_answer(code), code


def test_a_canonical_valid_code_that_stdnum_also_passes_takes_the_short_way() -> None:
    for code in (
        "131052-308T",
        "280264-051U",
        "010594Y9032",
        "010594Y9021",
        "020502E902X",
        "020502A902X",
        "131052+308T",
        "290200A123V",
    ):
        if stdnum_answer(code) is not None:
            assert validation._canonical_national_id(code), code
    assert not validation._canonical_national_id("131052-308U")  # its check character is T
    assert not validation._canonical_national_id("310252-308Y")  # no 31 February
    assert not validation._canonical_national_id("131052-900T")  # a temporary id
