"""The wallet event log: written inside units of work, read by the live streams.

``append`` runs in the writer thread, in the transaction that changes the wallet line, so an
event exists exactly when its change was committed. ``Watermark`` runs in the writer thread right
after each COMMIT and says which clients have new events (from this process or any other), so
the streams of only those clients wake. ``read_after`` is what a stream sends.
"""

from __future__ import annotations

from wallet.ledger.errors import InvariantViolation
from wallet.storage.port import Record
from wallet.storage.sql.connection import Connection, Row
from wallet.storage.sql.reading import Reader

EVENT_TYPES = ("credit", "expiry", "hold", "capture", "void", "refund")

# The event a charge is made with, of wallet event ``e`` and its charge ``c``: its hold, or for a
# charge captured at once (by national id: never held) its capture. A client's charges are listed
# by it (adapter.CLIENT_CHARGES_SQL), and ``wallet check`` proves each charge has exactly one.
MAKES_CHARGE_SQL = "(e.type = 'hold' OR (e.type = 'capture' AND c.method = 'national_id'))"


# The event row, with the whole wallet's totals summed in the same statement (one statement, not
# three, on the charge path: the line's own figures usually come from the UPDATE that moved it).
INSERT_EVENT_SQL = (
    "INSERT INTO wallet_events (client_id, type, category, amount, charge_id, provider_id, transaction_id, reason,"
    " line_balance, line_available, balance, available, created_at)"
    " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, SUM(balance), SUM(balance) - SUM(held), ?"
    " FROM accounts WHERE client_id = ? AND kind = 'wallet'"
)
LINE_SQL = "SELECT client_id, category, balance, held, kind FROM accounts WHERE id = ? AND kind = 'wallet'"


def append(
    connection: Connection,
    account_id: str,
    type_: str,
    amount: int,
    now: str,
    *,
    charge_id: str | None = None,
    provider_id: str | None = None,
    transaction_id: str | None = None,
    reason: str | None = None,
    line: Row | None = None,
) -> None:
    """Record a change of ``amount`` (signed) on wallet line ``account_id``, as it stands after it.

    ``line``, when given, is the line as it stands after the change (``client_id``, ``category``,
    ``balance``, ``held``, ``kind``), as read right after the UPDATE that made the change;
    otherwise it is read here."""
    if type_ not in EVENT_TYPES:
        raise InvariantViolation(f"unknown wallet event type {type_!r}")
    if line is None:
        line = connection.execute(LINE_SQL, (account_id,)).fetchone()
    if line is None or line["kind"] != "wallet" or line["client_id"] is None:
        raise InvariantViolation(f"wallet event on {account_id}, which is not a wallet line")
    connection.execute(
        INSERT_EVENT_SQL,
        (
            line["client_id"],
            type_,
            line["category"],
            amount,
            charge_id,
            provider_id,
            transaction_id,
            reason,
            line["balance"],
            line["balance"] - line["held"],
            now,
            line["client_id"],
        ),
    )


LAST_SEQ_SQL = "SELECT COALESCE(MAX(seq), 0) FROM wallet_events"
LAST_SEQ_OF_CLIENT_SQL = "SELECT COALESCE(MAX(seq), 0) FROM wallet_events WHERE client_id = ?"


# After every commit: the new events only, by their ``seq``. ``+client_id`` keeps SQLite's planner
# from grouping by walking the whole ``wallet_events_by_client`` index (every event, every commit).
FRESH_SQL = "SELECT client_id, MAX(seq) AS last FROM wallet_events WHERE seq > ? GROUP BY +client_id"


class Watermark:
    """The last event id already announced. Touched only by the writer thread after ``start``."""

    def __init__(self, last_seq: int) -> None:
        self.last_seq = last_seq

    def advance(self, connection: Connection) -> dict[str, int]:
        """The clients with events above the watermark, each with its newest id; then move up."""
        rows = connection.execute(FRESH_SQL, (self.last_seq,)).fetchall()
        fresh = {row["client_id"]: row["last"] for row in rows}
        if fresh:
            self.last_seq = max(fresh.values())
        return fresh


EVENTS_AFTER_SQL = (
    "SELECT e.seq, e.type, e.category, e.amount, e.charge_id, e.provider_id, e.transaction_id, e.reason,"
    " e.line_balance, e.line_available, e.balance, e.available, e.created_at,"
    " pr.name AS provider_name, c.method, c.expires_at, c.description"
    " FROM wallet_events e"
    " LEFT JOIN providers pr ON pr.id = e.provider_id"
    " LEFT JOIN charges c ON c.id = e.charge_id"
    " WHERE e.client_id = ? AND e.seq > ? ORDER BY e.seq LIMIT ?"
)


async def read_after(reader: Reader, client_id: str, after: int, limit: int) -> list[Record]:
    rows = await reader.execute_fetchall(EVENTS_AFTER_SQL, (client_id, after, limit))
    return [render(row) for row in rows]


def render(row: Row) -> Record:
    record: Record = {
        "id": str(row["seq"]),
        "type": row["type"],
        "category": row["category"],
        "amount": row["amount"],
        "balance": row["balance"],
        "available": row["available"],
        "line": {"category": row["category"], "balance": row["line_balance"], "available": row["line_available"]},
        "created_at": row["created_at"],
    }
    for key in ("charge_id", "transaction_id", "provider_id", "provider_name", "reason", "description"):
        if row[key] is not None:
            record[key] = row[key]
    if row["type"] == "hold":
        record["method"] = row["method"]
        record["expires_at"] = row["expires_at"]
    return record
