"""Keyed hashes: the stored hashes of national ids, phone numbers and codes must not change when
the way they are computed does, or no stored client would be found again."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from wallet.auth.hashing import Hasher

SECRET = bytes(range(32))


@given(purpose=st.sampled_from(["phone", "national_id", "otp", "login_code"]), value=st.text(max_size=300))
def test_a_keyed_hash_is_hmac_sha256_of_purpose_nul_value(purpose: str, value: str) -> None:
    try:
        message = f"{purpose}\x00{value}".encode()
    except UnicodeEncodeError:  # a lone surrogate cannot be hashed either way
        return
    assert Hasher(SECRET).keyed(purpose, value) == hmac.new(SECRET, message, hashlib.sha256).hexdigest()


def test_one_hasher_gives_the_same_hash_each_time_and_another_key_another() -> None:
    hasher = Hasher(SECRET)
    first = hasher.keyed("phone", "+358401234567")
    assert [hasher.keyed("phone", "+358401234567") for _ in range(3)] == [first] * 3
    assert hasher.keyed("national_id", "+358401234567") != first
    assert Hasher(b"another secret").keyed("phone", "+358401234567") != first
    assert first == hmac.new(SECRET, b"phone\x00+358401234567", hashlib.sha256).hexdigest()
