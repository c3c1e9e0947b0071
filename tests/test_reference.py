"""Finnish reference numbers (7-3-1) and their RF form (ISO 11649), against published examples."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import iso11649

from wallet.ledger.reference import (
    InvalidReference,
    check_digit,
    finnish_from_rf,
    finnish_reference,
    group_finnish_reference,
    group_rf_reference,
    is_valid_finnish_reference,
    is_valid_rf_reference,
    rf_reference,
)

# Finance Finland's example, a 16-digit one, and the RF pair used across Finnish bank guides.
PUBLISHED = [("123456", "1234561"), ("123456712345678", "1234567123456784"), ("234823", "2348236")]


@pytest.mark.parametrize(("base", "reference"), PUBLISHED)
def test_published_examples(base: str, reference: str) -> None:
    assert finnish_reference(base) == reference
    assert is_valid_finnish_reference(reference)


def test_rf_form_of_the_published_pair() -> None:
    assert rf_reference("2348236") == "RF332348236"
    assert iso11649.validate("RF332348236") == "RF332348236"
    assert finnish_from_rf("RF33 2348 236") == "2348236"
    assert group_rf_reference("RF332348236") == "RF33 2348 236"


def test_check_digit_ten_becomes_zero() -> None:
    # 1*7 + 3*3 = 16 → 4; a sum that is a multiple of ten gives 0, not 10.
    assert check_digit("31") == "4"
    assert check_digit("55") == "0"  # 5*7 + 5*3 = 50


def test_grouping_counts_fives_from_the_right() -> None:
    assert group_finnish_reference("1234561") == "12 34561"
    assert group_finnish_reference("1234567123456784") == "1 23456 71234 56784"
    assert group_finnish_reference("12345") == "12345"
    assert group_finnish_reference("0001234561") == "12 34561"  # leading zeros are not printed


@pytest.mark.parametrize(
    "value",
    ["", "123", "1234562", "12345678901234567890123", "12a4561", "１２３４５６１", "RF332348236"],
)
def test_invalid_references(value: str) -> None:
    assert not is_valid_finnish_reference(value)


def test_spaces_and_leading_zeros_are_not_significant() -> None:
    assert is_valid_finnish_reference("12 34561")
    assert is_valid_finnish_reference("00001234561")


@pytest.mark.parametrize("base", ["12", "0123", "1" * 20, "12a", "", "١٢٣"])
def test_bad_bases_are_refused(base: str) -> None:
    with pytest.raises(InvalidReference):
        finnish_reference(base)


def test_rf_of_an_invalid_reference_is_refused() -> None:
    with pytest.raises(InvalidReference):
        rf_reference("1234562")
    assert finnish_from_rf("RF342348236") is None  # a wrong RF check
    assert not is_valid_rf_reference("RF342348236")


bases = st.from_regex(r"\A[1-9][0-9]{2,18}\Z")


@given(bases)
def test_every_generated_reference_validates(base: str) -> None:
    reference = finnish_reference(base)
    assert reference[:-1] == base
    assert is_valid_finnish_reference(reference)
    rf = rf_reference(reference)
    assert iso11649.is_valid(rf)
    assert finnish_from_rf(rf) == reference


@given(bases, st.data())
def test_every_single_digit_change_fails(base: str, data: st.DataObject) -> None:
    reference = finnish_reference(base)
    position = data.draw(st.integers(0, len(reference) - 1))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != reference[position]]))
    changed = reference[:position] + digit + reference[position + 1 :]
    assert not is_valid_finnish_reference(changed)
    assert not iso11649.is_valid(rf_reference(reference)[:4] + changed)


def test_the_ledger_stays_pure() -> None:
    """Importing every module of wallet.ledger pulls in no HTTP, SQL or token library."""
    import subprocess
    import sys

    program = (
        "import pkgutil, importlib, sys, wallet.ledger\n"
        "for module in pkgutil.iter_modules(wallet.ledger.__path__):\n"
        "    importlib.import_module(f'wallet.ledger.{module.name}')\n"
        "print(' '.join(sorted(name for name in sys.modules\n"
        "    if name.split('.')[0] in {'aiohttp', 'aiosqlite', 'sqlite3', '_sqlite3', 'jwt', 'wallet'}"
        " and not name.startswith('wallet.ledger') and name != 'wallet')))\n"
    )
    found = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert found.stdout.split() == []
