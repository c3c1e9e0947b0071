"""A monthly statement's figures with each charge and refund behind them, read in one snapshot, so
that a statement document (``wallet.documents.statement``) matches the statement's JSON to the cent."""

from __future__ import annotations

from wallet.storage.port import Record
from wallet.storage.sql import itemized, statements
from wallet.storage.sql.reading import Reader

# Each charge captured and each refund made on the wallet's lines in the period, oldest first: one
# wallet event per posting (``statements``), with the charge's provider and description.
ROWS_SQL = (
    "SELECT t.type, t.created_at, t.charge_id, e.category, e.amount, pr.name AS provider_name, c.description"
    " FROM wallet_events e JOIN transactions t ON t.id = e.transaction_id"
    " LEFT JOIN providers pr ON pr.id = t.provider_id LEFT JOIN charges c ON c.id = t.charge_id"
    " WHERE e.client_id = ? AND e.transaction_id IS NOT NULL AND t.created_at >= ? AND t.created_at < ?"
    " AND t.type IN ('capture', 'refund') ORDER BY e.seq LIMIT ?"
)


async def figures_and_rows(reader: Reader, client_id: str, start: str, until: str, rows_max: int) -> Record:
    """``statements.figures`` and, beside them, up to ``rows_max`` rows (``truncated`` if more)."""
    figures = await statements.figures(reader, client_id, start, until)
    rows = [dict(row) for row in await reader.execute_fetchall(ROWS_SQL, (client_id, start, until, rows_max + 1))]
    truncated = len(rows) > rows_max
    rows = rows[:rows_max]
    items = await itemized.items_of(reader, sorted({row["charge_id"] for row in rows if row["charge_id"]}))
    for row in rows:
        row["items"] = items.get(row["charge_id"], (0, []))[1] if row["charge_id"] else []
    return {**figures, "rows": rows, "truncated": truncated}
