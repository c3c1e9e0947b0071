"""Idempotency keys: an outcome kept with its key, replayed for a retry, purged after retention."""

from __future__ import annotations

import json
from datetime import datetime

from wallet.clock import rfc3339
from wallet.ledger.errors import (
    IdempotencyKeyReuse,
    OperationError,
)
from wallet.storage.port import (
    Idempotency,
    Record,
    Written,
)
from wallet.storage.sql.connection import Connection, Row
from wallet.storage.sql.units import Unit, unit_of_work


@unit_of_work
def purge_idempotency_keys(older_than: datetime, batch: int) -> Unit:
    """Forget idempotency keys past their retention; the effects they guarded stay."""
    cutoff = rfc3339(older_than)

    def unit(connection: Connection) -> Record:
        deleted = connection.execute(
            "DELETE FROM idempotency_keys WHERE (scope, key) IN"
            " (SELECT scope, key FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
            (cutoff, batch),
        ).rowcount
        return {"deleted": deleted}

    return unit


REPLAY_SQL = "SELECT fingerprint, outcome FROM idempotency_keys WHERE scope = ? AND key = ?"
REMEMBER_SQL = "INSERT INTO idempotency_keys (scope, key, fingerprint, outcome, created_at) VALUES (?, ?, ?, ?, ?)"


def replay_outcome(row: Row, idempotency: Idempotency) -> Written | BaseException:
    """The outcome kept with a key, for a retry with the same request; another request is refused."""
    if row["fingerprint"] != idempotency.fingerprint:
        return IdempotencyKeyReuse("this Idempotency-Key was used with another request")
    outcome = json.loads(row["outcome"])
    if "error" in outcome:
        return OperationError.from_record(outcome["error"]).as_replayed()
    return Written(outcome["value"], replayed=True)
