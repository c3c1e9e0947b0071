"""The notices outbox: messages owed to clients (a new decision, a month's statement), written in
the transaction that makes them owed, sent by the service after the commit and by a sweep, and
marked sent; one whose sending failed stays unsent and is tried again."""

from __future__ import annotations

from collections.abc import Sequence

from wallet.storage.port import Record
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.reading import Reader
from wallet.storage.sql.units import Unit, unit_of_work

INSERT_SQL = (
    "INSERT INTO notices (client_id, kind, subject, language, created_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (client_id, kind, subject) DO NOTHING"
)
# Every client with a budget in the month, in the language of their latest decision (else Finnish).
_QUEUE_STATEMENTS_SQL = (
    "INSERT INTO notices (client_id, kind, subject, language, created_at)"
    " SELECT b.client_id, 'statement', ?, COALESCE((SELECT d.language FROM decisions d"
    " WHERE d.client_id = b.client_id ORDER BY d.seq DESC LIMIT 1), 'fi'), ?"
    " FROM budgets b WHERE b.start_month <= ? AND b.end_month >= ? GROUP BY b.client_id"
    " ON CONFLICT (client_id, kind, subject) DO NOTHING"
)
_UNSENT_SQL = (
    "SELECT n.seq, n.client_id, n.kind, n.subject, n.language, c.phone_ciphertext FROM notices n"
    " JOIN clients c ON c.id = n.client_id WHERE n.sent_at IS NULL AND n.seq > ? {client} ORDER BY n.seq LIMIT ?"
)


def queue(connection: Connection, client_id: str, kind: str, subject: str, language: str, now: str) -> None:
    connection.execute(INSERT_SQL, (client_id, kind, subject, language, now))


@unit_of_work
def queue_statements(month: str, now: str) -> Unit:
    """A statement notice for every client with a budget in ``month``, once each."""

    def unit(connection: Connection) -> Record:
        cursor = connection.execute(_QUEUE_STATEMENTS_SQL, (month, now, month, month))
        return {"queued": max(cursor.rowcount, 0)}

    return unit


@unit_of_work
def mark_sent(seqs: Sequence[int], now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        connection.executemany(
            "UPDATE notices SET sent_at = ? WHERE seq = ? AND sent_at IS NULL", [(now, seq) for seq in seqs]
        )
        return {"sent": len(seqs)}

    return unit


async def unsent(reader: Reader, after: int, limit: int, client_id: str | None) -> list[Record]:
    """Unsent notices after ``after`` (seq), oldest first; only ``client_id``'s if given."""
    if client_id is None:
        rows = await reader.execute_fetchall(_UNSENT_SQL.format(client=""), (after, limit))
    else:
        rows = await reader.execute_fetchall(
            _UNSENT_SQL.format(client="AND n.client_id = ?"), (after, client_id, limit)
        )
    return [dict(row) for row in rows]
