"""The figures of the organizer's usage report, read in one snapshot (see wallet/ledger/usage.py).

Every figure is read from the ledger itself: credits from ``credits``, use from the postings of
capture and refund transactions on wallet lines, balances from postings, holds from the charges
pending at the close, and each provider's charges from its payable account's postings.
"""

from __future__ import annotations

from wallet.storage.port import Record
from wallet.storage.sql.reading import Reader

MONTHLY_SQL = (
    "SELECT b.client_id, l.category, l.monthly_amount AS amount FROM budgets b"
    " JOIN budget_lines l ON l.budget_id = b.id WHERE b.start_month <= ? AND b.end_month >= ?"
)
CREDITED_SQL = (
    "SELECT a.client_id, a.category, SUM(c.amount) AS amount FROM credits c JOIN accounts a ON a.id = c.account_id"
    " WHERE c.month = ? GROUP BY a.id"
)
# Captures (negative on the line) and refunds (positive) booked in [start, end): used = -their sum.
USED_SQL = (
    "SELECT a.client_id, a.category, -SUM(p.amount) AS amount FROM transactions t"
    " JOIN postings p ON p.transaction_id = t.id JOIN accounts a ON a.id = p.account_id"
    " WHERE a.kind = 'wallet' AND t.type IN ('capture', 'refund') AND t.created_at >= ? AND t.created_at < ?"
    " GROUP BY a.id"
)
# A line's balance at the close: its running balance now, less what was booked since the close. This
# reads only the postings after the close (none for the current month), not the line's whole history.
BALANCE_NOW_SQL = "SELECT client_id, category, balance AS amount FROM accounts WHERE kind = 'wallet'"
BOOKED_SINCE_SQL = (
    "SELECT a.client_id, a.category, -SUM(p.amount) AS amount FROM transactions t"
    " JOIN postings p ON p.transaction_id = t.id JOIN accounts a ON a.id = p.account_id"
    " WHERE a.kind = 'wallet' AND t.created_at >= ? GROUP BY a.id"
)
# Held at an instant: charges made before it and neither captured nor voided before it.
HELD_SQL = (
    "SELECT a.client_id, a.category, SUM(c.amount) AS amount FROM charges c JOIN accounts a ON a.id = c.account_id"
    " WHERE c.created_at < ? AND (c.captured_at IS NULL OR c.captured_at >= ?)"
    " AND (c.voided_at IS NULL OR c.voided_at >= ?) GROUP BY a.id"
)
PROVIDERS_SQL = (
    "SELECT t.provider_id, pr.name AS provider_name,"
    " COALESCE(SUM(CASE WHEN t.type = 'capture' THEN p.amount END), 0) AS captured,"
    " COALESCE(-SUM(CASE WHEN t.type = 'refund' THEN p.amount END), 0) AS refunded,"
    " COUNT(CASE WHEN t.type = 'capture' THEN 1 END) AS captures,"
    " COUNT(CASE WHEN t.type = 'refund' THEN 1 END) AS refunds"
    " FROM transactions t JOIN postings p ON p.transaction_id = t.id AND p.account_id = 'payable:' || t.provider_id"
    " JOIN providers pr ON pr.id = t.provider_id"
    " WHERE t.type IN ('capture', 'refund') AND t.created_at >= ? AND t.created_at < ?"
    " GROUP BY t.provider_id, pr.name"
)
# What was bought: the items of the itemized charges captured in [start, end), as priced, by client,
# provider and service (a refund is an amount, not items: it is in the providers' `refunded`).
BOUGHT_SQL = (
    "SELECT c.client_id, c.provider_id, s.code AS service, s.unit, SUM(i.quantity_hundredths) AS quantity_hundredths,"
    " SUM(i.amount) AS amount, SUM(i.own_share) AS own_share, COUNT(*) AS count FROM transactions t"
    " JOIN charges c ON c.id = t.charge_id JOIN charge_items i ON i.charge_id = c.id"
    " JOIN services s ON s.id = i.service_id"
    " WHERE t.type = 'capture' AND t.created_at >= ? AND t.created_at < ?"
    " GROUP BY c.client_id, c.provider_id, s.code, s.unit"
)
# Newest first, as every list; only clients that ever had a wallet line.
CLIENTS_SQL = (
    "SELECT id, seq, name FROM clients WHERE id IN (SELECT client_id FROM accounts WHERE kind = 'wallet')"
    " ORDER BY seq DESC"
)


async def figures(reader: Reader, month: str, start: str, end: str) -> Record:
    lines: dict[tuple[str, str], dict[str, int]] = {}

    async def gather(name: str, sql: str, parameters: tuple[str, ...]) -> None:
        for row in await reader.execute_fetchall(sql, parameters):
            line = lines.setdefault((row["client_id"], row["category"]), {})
            line[name] = line.get(name, 0) + int(row["amount"])

    await gather("monthly_amount", MONTHLY_SQL, (month, month))
    await gather("credited", CREDITED_SQL, (month,))
    await gather("used", USED_SQL, (start, end))
    await gather("balance", BALANCE_NOW_SQL, ())
    await gather("balance", BOOKED_SINCE_SQL, (end,))
    await gather("held", HELD_SQL, (end, end, end))
    providers = await reader.execute_fetchall(PROVIDERS_SQL, (start, end))
    names = await reader.execute_fetchall(CLIENTS_SQL)
    bought = await reader.execute_fetchall(BOUGHT_SQL, (start, end))
    return {
        "lines": [
            {"client_id": client_id, "category": category, **figures}
            for (client_id, category), figures in lines.items()
        ],
        "providers": [dict(row) for row in providers],
        "clients": [{"id": row["id"], "seq": row["seq"], "name": row["name"]} for row in names],
        "bought": [dict(row) for row in bought],
    }
