"""EdDSA (Ed25519) JWTs: minted by the CLI and the token endpoints, verified on every request.

Verification names everything explicitly: the one algorithm, audience, issuer, the required
claims, expiry. A verified token is cached until it expires: a signature check is costly.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import cached_property
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wallet.ledger.errors import Unauthorized

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "nbf", "role"]
CLOCK_SKEW_SECONDS = 30


class Role(str, Enum):
    ADMIN = "admin"
    FINANCE = "finance"
    PROVIDER = "provider"
    CLIENT = "client"
    # Acts for clients under a mandate (puolesta-asiointi); the mandate is checked on every request.
    REPRESENTATIVE = "representative"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role and, for providers and clients, whose.

    A representative's token names the clients it was issued for (``client_ids``) and, when one was
    chosen at login, ``client_id``; a request may choose another of ``client_ids``. The token only
    bounds what may be asked: each request still needs an active mandate in the database.
    """

    role: Role
    subject: str
    provider_id: str | None = None
    client_id: str | None = None
    representative_id: str | None = None
    client_ids: tuple[str, ...] = ()
    # A person signed in through an identity provider (a page session): their name, for the audit.
    name: str | None = None

    @cached_property  # a principal is cached with its token and asked for its scope on every request
    def scope(self) -> str:
        """The namespace of this caller's idempotency keys, and its name in the audit log."""
        if self.role is Role.REPRESENTATIVE:
            return f"{self.role.value}:{self.representative_id}"
        return f"{self.role.value}:{self.provider_id or self.client_id or self.subject}"

    @cached_property
    def actor(self) -> str:
        """Who the audit log names: the scope and, for staff signed in by name, that name (a client's or
        a representative's name stays out of the append-only chain: their ids say who)."""
        if self.name is None or self.role not in (Role.ADMIN, Role.FINANCE):
            return self.scope
        return f"{self.scope} ({self.name})"


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:12]).decode().rstrip("=")


class TokenService:
    def __init__(
        self,
        signing_key: Ed25519PrivateKey,
        issuer: str,
        audience: str,
        cache_entries: int,
        verification_keys: dict[str, Ed25519PublicKey] | None = None,
    ) -> None:
        self._signing_key = signing_key
        self._kid = key_id(signing_key.public_key())
        self._verification_keys = {self._kid: signing_key.public_key(), **(verification_keys or {})}
        self._issuer = issuer
        self._audience = audience
        self._cache: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._cache_entries = cache_entries

    def mint(
        self,
        role: Role,
        now: datetime,
        ttl_seconds: int,
        *,
        provider_id: str | None = None,
        client_id: str | None = None,
        subject: str | None = None,
        representative_id: str | None = None,
        client_ids: tuple[str, ...] = (),
    ) -> str:
        if role is Role.PROVIDER and not provider_id:
            raise ValueError("a provider token needs a provider id")
        if role is Role.CLIENT and not client_id:
            raise ValueError("a client token needs a client id")
        if role is Role.REPRESENTATIVE and (not representative_id or not client_ids):
            raise ValueError("a representative token needs a representative id and the clients it acts for")
        if role is Role.REPRESENTATIVE and client_id is not None and client_id not in client_ids:
            raise ValueError("a representative's chosen client must be one of its clients")
        issued = int(now.timestamp())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject or provider_id or representative_id or client_id or f"{role.value}-cli",
            "role": role.value,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl_seconds,
            "jti": secrets.token_hex(8),
        }
        if provider_id:
            claims["provider_id"] = provider_id
        if client_id:
            claims["client_id"] = client_id
        if role is Role.REPRESENTATIVE:
            claims["representative_id"] = representative_id
            claims["client_ids"] = list(client_ids)
        return jwt.encode(claims, self._signing_key, algorithm=ALGORITHM, headers={"kid": self._kid})

    def verify(self, token: str, now: datetime) -> Principal:
        timestamp = now.timestamp()
        cached = self._cache.get(token)
        if cached is not None:
            expires, principal = cached
            if timestamp < expires:
                return principal
            del self._cache[token]
        principal, expires = self._verify_uncached(token, now)
        self._cache[token] = (expires, principal)
        if len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)
        return principal

    def _verify_uncached(self, token: str, now: datetime) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
            key = self._verification_keys.get(header.get("kid", self._kid))
            if key is None:
                raise Unauthorized("token signed with an unknown key")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={
                    "require": REQUIRED_CLAIMS,
                    "verify_signature": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    # Time is checked below against the service's clock, not the system's.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as error:
            raise Unauthorized("invalid token") from error
        timestamp = now.timestamp()
        times = [claims["exp"], claims["nbf"], claims["iat"]]
        # JSON as PyJWT reads it admits NaN and Infinity: a NaN expiry compares false both ways,
        # so it would never expire. Only finite numbers are times.
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in times):
            raise Unauthorized("invalid token")
        if claims["exp"] + CLOCK_SKEW_SECONDS <= timestamp:
            raise Unauthorized("token expired")
        if claims["nbf"] - CLOCK_SKEW_SECONDS > timestamp or claims["iat"] - CLOCK_SKEW_SECONDS > timestamp:
            raise Unauthorized("token not valid yet")
        try:
            role = Role(claims["role"])
        except ValueError as error:
            raise Unauthorized("token has an unknown role") from error
        provider_id = claims.get("provider_id")
        client_id = claims.get("client_id")
        if role is Role.PROVIDER and not isinstance(provider_id, str):
            raise Unauthorized("provider token without provider_id")
        if role is Role.CLIENT and not isinstance(client_id, str):
            raise Unauthorized("client token without client_id")
        if role is Role.REPRESENTATIVE:
            return _representative(claims), float(claims["exp"])
        principal = Principal(
            role=role,
            subject=str(claims["sub"]),
            provider_id=provider_id if role is Role.PROVIDER else None,
            client_id=client_id if role is Role.CLIENT else None,
        )
        return principal, float(claims["exp"])


def _representative(claims: dict[str, Any]) -> Principal:
    representative_id, client_ids, client_id = (
        claims.get("representative_id"),
        claims.get("client_ids"),
        claims.get("client_id"),
    )
    if not isinstance(representative_id, str) or not representative_id:
        raise Unauthorized("representative token without representative_id")
    if not isinstance(client_ids, list) or not client_ids or not all(isinstance(c, str) and c for c in client_ids):
        raise Unauthorized("representative token without client_ids")
    if client_id is not None and client_id not in client_ids:
        raise Unauthorized("representative token whose client_id is not one of its client_ids")
    return Principal(
        role=Role.REPRESENTATIVE,
        subject=str(claims["sub"]),
        client_id=client_id,
        representative_id=representative_id,
        client_ids=tuple(client_ids),
    )
