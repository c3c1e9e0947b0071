"""The figures of a wallet's monthly statement, read in one snapshot (see wallet/ledger/statements.py)."""

from __future__ import annotations


from wallet.storage.sqlite.reading import Reader
from wallet.storage.port import Record

# A wallet line's balance at an instant: its postings booked before it.
BALANCES_BEFORE_SQL = (
    "SELECT a.category, COALESCE(SUM(p.amount), 0) AS balance FROM accounts a"
    " JOIN postings p ON p.account_id = a.id"
    " JOIN transactions t ON t.id = p.transaction_id"
    " WHERE a.client_id = ? AND a.kind = 'wallet' AND t.created_at < ?"
    " GROUP BY a.category"
)

MOVEMENTS_SQL = (
    "SELECT t.type, a.category, t.provider_id, pr.name AS provider_name,"
    " SUM(p.amount) AS amount, COUNT(*) AS count FROM accounts a"
    " JOIN postings p ON p.account_id = a.id"
    " JOIN transactions t ON t.id = p.transaction_id"
    " LEFT JOIN providers pr ON pr.id = t.provider_id"
    " WHERE a.client_id = ? AND a.kind = 'wallet' AND t.created_at >= ? AND t.created_at < ?"
    " GROUP BY t.type, a.category, t.provider_id, pr.name"
    " ORDER BY t.type, a.category, t.provider_id"
)

# Held at an instant: charges made before it and neither captured nor voided before it.
HELD_AT_SQL = (
    "SELECT COALESCE(SUM(amount), 0) FROM charges WHERE client_id = ? AND created_at < ?"
    " AND (captured_at IS NULL OR captured_at >= ?) AND (voided_at IS NULL OR voided_at >= ?)"
)


async def figures(reader: Reader, client_id: str, start: str, until: str) -> Record:
    opening = await reader.execute_fetchall(BALANCES_BEFORE_SQL, (client_id, start))
    closing = await reader.execute_fetchall(BALANCES_BEFORE_SQL, (client_id, until))
    movements = await reader.execute_fetchall(MOVEMENTS_SQL, (client_id, start, until))
    held = list(await reader.execute_fetchall(HELD_AT_SQL, (client_id, until, until, until)))[0][0]
    return {
        "opening": {row["category"]: row["balance"] for row in opening},
        "closing": {row["category"]: row["balance"] for row in closing},
        "movements": [dict(row) for row in movements],
        "held_at_close": held,
    }
