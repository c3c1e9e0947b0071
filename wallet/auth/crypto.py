"""Phone numbers at rest: AES-256-GCM under a key of their own (``phone-key.key``).

The database keeps the ciphertext and, for lookups, a keyed hash; the number in clear exists
only in memory, when an SMS is sent or the organizer reads a client.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"
_NONCE_BYTES = 12
_ASSOCIATED_DATA = b"wallet.phone"


class PhoneCipher:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, phone: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, phone.encode(), _ASSOCIATED_DATA)
        return f"{_VERSION}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, ciphertext: str) -> str:
        version, _, payload = ciphertext.partition(":")
        if version != _VERSION:
            raise ValueError(f"unknown phone ciphertext version {version!r}")
        raw = base64.b64decode(payload)
        return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _ASSOCIATED_DATA).decode()
