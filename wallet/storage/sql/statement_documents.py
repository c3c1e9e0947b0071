"""Closed months' statements as stored PDFs: written once per client, month and language (the first
to arrive wins, a racing second keeps the first's), read back as stored, and checked by ``wallet check``."""

from __future__ import annotations

import hashlib

from wallet.storage.port import Record
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.reading import Reader
from wallet.storage.sql.units import Unit, unit_of_work

_INSERT_SQL = (
    "INSERT INTO statement_documents (client_id, month, language, document, document_sha256, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (client_id, month, language) DO NOTHING"
)
_READ_SQL = (
    "SELECT document, document_sha256, created_at FROM statement_documents"
    " WHERE client_id = ? AND month = ? AND language = ?"
)


@unit_of_work
def store(client_id: str, month: str, language: str, document: bytes, now: str) -> Unit:
    """Keep ``document`` unless one is kept already; either way answer the SHA-256 of the one kept."""

    def unit(connection: Connection) -> Record:
        sha256 = hashlib.sha256(document).hexdigest()
        connection.execute(_INSERT_SQL, (client_id, month, language, document, sha256, now))
        kept = connection.execute(_READ_SQL, (client_id, month, language)).fetchone()
        return {"document_sha256": kept["document_sha256"], "created_at": kept["created_at"]}

    return unit


async def read(reader: Reader, client_id: str, month: str, language: str) -> tuple[Record, bytes] | None:
    """A stored statement document with its SHA-256, or None if none is stored yet."""
    rows = list(await reader.execute_fetchall(_READ_SQL, (client_id, month, language)))
    if not rows:
        return None
    row = rows[0]
    return {"document_sha256": row["document_sha256"], "created_at": row["created_at"]}, bytes(row["document"])


def breaches(connection: Connection) -> list[str]:
    """``wallet check``: each stored statement document is the one stored (its SHA-256)."""
    found: list[str] = []
    if connection.execute(connection.dialect.table_exists, ("statement_documents",)).fetchone() is None:
        return found  # a database from before statement documents were kept
    for row in connection.execute(
        "SELECT client_id, month, language, document, document_sha256 FROM statement_documents"
        " ORDER BY client_id, month, language"
    ):
        if hashlib.sha256(bytes(row["document"])).hexdigest() != row["document_sha256"]:
            found.append(
                f"statement {row['client_id']} {row['month']} {row['language']}:"
                " its document is not the one stored (SHA-256 differs)"
            )
    return found


async def unstored(reader: Reader, month: str, limit: int) -> list[Record]:
    """``month``'s statement notices whose document (in the notice's language) is not stored yet."""
    rows = await reader.execute_fetchall(
        "SELECT n.client_id, n.language FROM notices n LEFT JOIN statement_documents s"
        " ON s.client_id = n.client_id AND s.month = n.subject AND s.language = n.language"
        " WHERE n.kind = 'statement' AND n.subject = ? AND s.client_id IS NULL ORDER BY n.seq LIMIT ?",
        (month, limit),
    )
    return [dict(row) for row in rows]
