"""Key material on disk: the Ed25519 signing key and the server's HMAC secret.

Both are created on first use, atomically (``O_EXCL``), readable only by the owner, so that the
CLI and the server started at once end up with the same key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HMAC_SECRET_FILENAME = "hmac-secret.key"
PHONE_KEY_FILENAME = "phone-key.key"
SECRET_BYTES = 32


def _create_exclusive(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, content)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(temporary, path)  # fails if another process created it first: theirs wins
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def load_or_create_signing_key(path: str | Path) -> Ed25519PrivateKey:
    path = Path(path)
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _create_exclusive(path, pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path}: the signing key must be an Ed25519 private key")
    return loaded


def load_verification_key(path: str | Path) -> Ed25519PublicKey:
    """An earlier key, from its private or its public PEM: only the public half is kept."""
    data = Path(path).read_bytes()
    key: object
    if b"PRIVATE KEY" in data:
        key = serialization.load_pem_private_key(data, password=None)
        key = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: a verification key must be an Ed25519 key")
    return key


def load_or_create_secret(directory: str | Path, filename: str = HMAC_SECRET_FILENAME) -> bytes:
    """A 32-byte secret kept hex-encoded in ``directory/filename``, created on first use."""
    path = Path(directory) / filename
    if not path.exists():
        _create_exclusive(path, secrets.token_bytes(SECRET_BYTES).hex().encode())
    secret = bytes.fromhex(path.read_text().strip())
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"{path}: a secret must be {SECRET_BYTES} bytes")
    return secret
