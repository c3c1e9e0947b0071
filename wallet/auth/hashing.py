"""Keyed hashes for national ids and one-time codes; a slow hash for client secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt cost: about 50 ms and 16 MiB per verification on a laptop core.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1


class Hasher:
    """HMAC-SHA256 under the server secret, with a purpose label so hashes never cross uses."""

    def __init__(self, secret: bytes) -> None:
        # Keyed once: a copy of the keyed state gives the same digest as ``hmac.new`` without
        # hashing the key's pads on every call.
        self._keyed = hmac.new(secret, None, hashlib.sha256)

    def keyed(self, purpose: str, value: str) -> str:
        mac = self._keyed.copy()
        mac.update(f"{purpose}\x00{value}".encode())
        return mac.hexdigest()


def equal(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())


def slow_hash(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    encode = base64.urlsafe_b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_slow_hash(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        decode = base64.urlsafe_b64decode
        candidate = hashlib.scrypt(secret.encode(), salt=decode(salt), n=int(n), r=int(r), p=int(p), dklen=32)
        return hmac.compare_digest(candidate, decode(digest))
    except (ValueError, TypeError):
        return False


def six_digit_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"
