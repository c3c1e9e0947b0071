"""The states and scopes of the parties around a wallet: providers and clients' representatives.
StrEnums: each member is its value wherever it is written, as the plain strings they replace were."""

from __future__ import annotations

from enum import StrEnum


class ProviderStatus(StrEnum):
    PENDING = "pending"  # registered, not yet allowed to charge
    APPROVED = "approved"
    SUSPENDED = "suspended"


class RepresentationScope(StrEnum):
    VIEW = "view"  # the wallet, its history, events, statements and charges
    MANAGE = "manage"  # also approve and decline charges


class RepresentationStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
