"""The figures of a wallet's monthly statement, read in one snapshot (see wallet/ledger/statements.py)."""

from __future__ import annotations

from wallet.storage.port import Record
from wallet.storage.sql.reading import Reader

# Every figure comes from the wallet events that carry a transaction (one per posting on a wallet
# line: ``wallet check`` proves them equal), found by ``wallet_events_by_client``.

# A wallet line's balance at an instant: what was booked on it before then.
BALANCES_BEFORE_SQL = (
    "SELECT e.category, COALESCE(SUM(e.amount), 0) AS balance FROM wallet_events e"
    " JOIN transactions t ON t.id = e.transaction_id"
    " WHERE e.client_id = ? AND e.transaction_id IS NOT NULL AND t.created_at < ?"
    " GROUP BY e.category"
)

MOVEMENTS_SQL = (
    "SELECT t.type, e.category, t.provider_id, pr.name AS provider_name,"
    " SUM(e.amount) AS amount, COUNT(*) AS count FROM wallet_events e"
    " JOIN transactions t ON t.id = e.transaction_id"
    " LEFT JOIN providers pr ON pr.id = t.provider_id"
    " WHERE e.client_id = ? AND e.transaction_id IS NOT NULL AND t.created_at >= ? AND t.created_at < ?"
    " GROUP BY t.type, e.category, t.provider_id, pr.name"
    " ORDER BY t.type, e.category, t.provider_id"
)

# Held at an instant: charges made before it and neither captured nor voided before it. Only a
# charge made with a hold is ever held; its hold event finds it (adapter.CLIENT_CHARGES_SQL).
HELD_AT_SQL = (
    "SELECT COALESCE(SUM(c.amount), 0) FROM wallet_events e JOIN charges c ON c.id = e.charge_id"
    " WHERE e.client_id = ? AND e.type = 'hold' AND e.charge_id IS NOT NULL AND c.created_at < ?"
    " AND (c.captured_at IS NULL OR c.captured_at >= ?) AND (c.voided_at IS NULL OR c.voided_at >= ?)"
)


# What the month's captures bought, per service: the items of the itemized charges captured in the
# period (a capture is booked once, when the charge is captured), quantities in hundredths.
BOUGHT_SQL = (
    "SELECT s.code AS service, s.unit, SUM(i.quantity_hundredths) AS quantity_hundredths,"
    " SUM(i.amount) AS amount, SUM(i.own_share) AS own_share, COUNT(*) AS count FROM wallet_events e"
    " JOIN transactions t ON t.id = e.transaction_id"
    " JOIN charge_items i ON i.charge_id = e.charge_id"
    " JOIN services s ON s.id = i.service_id"
    " WHERE e.client_id = ? AND e.transaction_id IS NOT NULL AND t.type = 'capture'"
    " AND t.created_at >= ? AND t.created_at < ?"
    " GROUP BY s.code, s.unit ORDER BY s.code"
)


async def figures(reader: Reader, client_id: str, start: str, until: str) -> Record:
    opening = await reader.execute_fetchall(BALANCES_BEFORE_SQL, (client_id, start))
    closing = await reader.execute_fetchall(BALANCES_BEFORE_SQL, (client_id, until))
    movements = await reader.execute_fetchall(MOVEMENTS_SQL, (client_id, start, until))
    bought = await reader.execute_fetchall(BOUGHT_SQL, (client_id, start, until))
    held = list(await reader.execute_fetchall(HELD_AT_SQL, (client_id, until, until, until)))[0][0]
    return {
        "opening": {row["category"]: row["balance"] for row in opening},
        "closing": {row["category"]: row["balance"] for row in closing},
        "movements": [dict(row) for row in movements],
        "held_at_close": held,
        "bought": [dict(row) for row in bought],
    }
