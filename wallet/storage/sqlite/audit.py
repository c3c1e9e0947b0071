"""Appending to the audit chain, inside the unit of work whose change it records."""

from __future__ import annotations

import sqlite3
from typing import Any

from wallet.ledger.audit import GENESIS, canonical, link_hash
from wallet.storage.port import ACTOR


def append(connection: sqlite3.Connection, at: str, action: str, subject: str, **data: Any) -> None:
    row = connection.execute("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    previous = row[0] if row else GENESIS
    actor = ACTOR.get()
    payload = canonical(data)
    connection.execute(
        "INSERT INTO audit_log (at, actor, action, subject, data, previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, actor, action, subject, payload, previous, link_hash(previous, at, actor, action, subject, payload)),
    )
