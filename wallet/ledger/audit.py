"""The tamper-evident audit chain: each entry's hash covers the previous entry's hash.

Changing, removing or reordering any entry breaks every link after it; ``verify_chain`` names
the first broken one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    data: str  # canonical JSON
    previous_hash: str
    hash: str


# What ``json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` would make,
# without building an encoder per entry (a credit run writes a million entries).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(data: dict[str, Any]) -> str:
    return _CANONICAL.encode(data)


def link_hash(previous_hash: str, at: str, actor: str, action: str, subject: str, data: str) -> str:
    body = "\x1f".join((previous_hash, at, actor, action, subject, data))
    return hashlib.sha256(body.encode()).hexdigest()


def verify_chain(entries: Iterable[AuditEntry]) -> str | None:
    """The first broken link, described, or ``None`` when the chain holds."""
    previous = GENESIS
    for entry in entries:
        if entry.previous_hash != previous:
            return f"audit entry {entry.seq}: its previous hash does not match the entry before it"
        expected = link_hash(entry.previous_hash, entry.at, entry.actor, entry.action, entry.subject, entry.data)
        if entry.hash != expected:
            return f"audit entry {entry.seq}: its content does not match its hash"
        previous = entry.hash
    return None
