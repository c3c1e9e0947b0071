"""Receipts by SMS: claiming what the outbox holds, and marking what was sent.

The outbox rows are written by a trigger on ``wallet_events`` in the movement's own transaction
(see ``receipts`` in the schemas): one per capture, refund and void, keyed by the event. The
service claims a batch in one unit of work (``claim``: each row's ``claimed_at`` and ``attempts``,
and what its text needs), sends each once that claim is committed, and marks it sent (``sent``).
A claim not marked sent within the lease is claimed again (its sender died, or the gateway failed);
after ``attempts_max`` claims a receipt is given up (``abandoned_at``). So a receipt is never sent
before its movement is durable, never by two senders at once, and twice only when a sender dies
between the gateway's acceptance and the mark.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from wallet.clock import rfc3339
from wallet.storage.port import Record
from wallet.storage.sql.bulk import ListStatement
from wallet.storage.sql.connection import Connection, Dialect
from wallet.storage.sql.units import SIDE_BY_SIDE, Unit, unit_of_work

# Rows another sender has locked (claimed, not yet committed) are skipped, never waited for: so
# senders on several nodes claim side by side (``SIDE_BY_SIDE``), each a receipt at most once.
_CLAIMABLE_SQL = ListStatement(
    lambda dialect: (
        "SELECT event_seq FROM receipts WHERE sent_at IS NULL AND abandoned_at IS NULL"
        " AND attempts < ? AND (claimed_at IS NULL OR claimed_at <= ?) ORDER BY event_seq LIMIT ?"
        + _skip_locked(dialect)
    )
)
# Receipts whose last claim's lease ran out on the last attempt: never claimed again.
_ABANDON_SQL = ListStatement(
    lambda dialect: (
        "UPDATE receipts SET abandoned_at = ? WHERE event_seq IN (SELECT event_seq FROM receipts"
        " WHERE sent_at IS NULL AND abandoned_at IS NULL AND attempts >= ? AND claimed_at <= ?"
        + _skip_locked(dialect)
        + ")"
    )
)


def _skip_locked(dialect: Dialect) -> str:
    return "" if dialect.side_by_side is None else f"{dialect.side_by_side.lock_rows} SKIP LOCKED"


_DETAILS_SQL = (
    "SELECT e.seq, e.type, e.amount, e.line_available, e.charge_id, e.client_id, c.phone_ciphertext,"
    " COALESCE(p.name, '') AS provider_name, COALESCE(g.name, e.category) AS category_name"
    " FROM wallet_events e JOIN clients c ON c.id = e.client_id"
    " LEFT JOIN providers p ON p.id = e.provider_id LEFT JOIN categories g ON g.code = e.category"
    " WHERE e.seq IN ({marks}) ORDER BY e.seq"
)
_ITEMS_SQL = (
    "SELECT i.charge_id, s.name_fi, s.unit, i.quantity_hundredths, i.own_share FROM charge_items i"
    " JOIN services s ON s.id = i.service_id WHERE i.charge_id IN ({marks}) ORDER BY i.charge_id, i.position"
)


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


@unit_of_work
def claim(now: datetime, lease_seconds: int, attempts_max: int, batch: int) -> Unit:
    stamp = rfc3339(now)
    lease_ended = rfc3339(now - timedelta(seconds=lease_seconds))

    def unit(connection: Connection) -> Record:
        dialect = connection.dialect
        connection.execute(_ABANDON_SQL(dialect), (stamp, attempts_max, lease_ended))
        seqs = [
            row["event_seq"] for row in connection.execute(_CLAIMABLE_SQL(dialect), (attempts_max, lease_ended, batch))
        ]
        if not seqs:
            return {"receipts": []}
        connection.execute(
            f"UPDATE receipts SET claimed_at = ?, attempts = attempts + 1 WHERE event_seq IN ({_marks(seqs)})",
            (stamp, *seqs),
        )
        events = connection.execute(_DETAILS_SQL.format(marks=_marks(seqs)), seqs).fetchall()
        charge_ids = sorted({row["charge_id"] for row in events if row["charge_id"] is not None})
        items: dict[str, list[Record]] = {}
        if charge_ids:
            for row in connection.execute(_ITEMS_SQL.format(marks=_marks(charge_ids)), charge_ids):
                items.setdefault(row["charge_id"], []).append(
                    {
                        "service_name": row["name_fi"],
                        "unit": row["unit"],
                        "quantity_hundredths": row["quantity_hundredths"],
                        "own_share": row["own_share"],
                    }
                )
        claimed = [
            {
                "event_seq": row["seq"],
                "kind": row["type"],
                "amount": abs(row["amount"]),
                "available": row["line_available"],
                "client_id": row["client_id"],
                "phone_ciphertext": row["phone_ciphertext"],
                "provider_name": row["provider_name"],
                "category_name": row["category_name"],
                "charge_id": row["charge_id"],
                "items": items.get(row["charge_id"], []),
            }
            for row in events
        ]
        return {"receipts": claimed}

    return unit


@unit_of_work
def sent(event_seqs: list[int], now: datetime) -> Unit:
    stamp = rfc3339(now)

    def unit(connection: Connection) -> None:
        connection.execute(
            f"UPDATE receipts SET sent_at = ? WHERE event_seq IN ({_marks(event_seqs)}) AND sent_at IS NULL",
            (stamp, *event_seqs),
        )

    return unit


# They lock only receipt rows (a claim skips those another sender holds) and write no audit entry
# and no numbered row: they run beside other nodes' writes (``SIDE_BY_SIDE``).
SIDE_BY_SIDE.update({claim, sent})
