"""Representatives and their mandates (puolesta-asiointi): units of work for the writer, and the
reads of the adapter. Their login is ``login``'s.

A representative is a person, found by the keyed hash of their phone. A mandate (a row of
``representations``) lets them act for one client with a scope: ``view`` reads the wallet,
``manage`` also approves and declines charges. Revocation sets ``revoked_at`` once; a trigger keeps
everything else fixed. Each change is in the audit chain with who made it.
"""

from __future__ import annotations

from wallet.auth.hashing import equal
from wallet.ids import new_id
from wallet.ledger.errors import Conflict, Forbidden, NotFound
from wallet.ledger.parties import RepresentationScope
from wallet.storage.port import ACTOR, NewRepresentation, Record
from wallet.storage.sql import audit
from wallet.storage.sql.connection import Connection, Row
from wallet.storage.sql.reading import Reader
from wallet.storage.sql.units import Unit, unit_of_work

VIEW = RepresentationScope.VIEW
MANAGE = RepresentationScope.MANAGE

REPRESENTATION_SQL = (
    "SELECT m.seq, m.id, m.client_id, m.representative_id, m.scope, m.created_at, m.revoked_at,"
    " r.name, r.phone_ciphertext, r.national_id_hash"
    " FROM representations m JOIN representatives r ON r.id = m.representative_id"
)
ACTIVE_MANDATE_SQL = (
    "SELECT id, scope FROM representations WHERE representative_id = ? AND client_id = ? AND revoked_at IS NULL"
)
MANDATES_SQL = (
    "SELECT m.id, m.client_id, c.name AS client_name, m.scope, m.created_at FROM representations m"
    " JOIN clients c ON c.id = m.client_id WHERE m.representative_id = ? AND m.revoked_at IS NULL ORDER BY m.seq"
)


def render(row: Row) -> Record:
    return {
        "id": row["id"],
        "client_id": row["client_id"],
        "representative_id": row["representative_id"],
        "name": row["name"],
        "phone_ciphertext": row["phone_ciphertext"],
        "has_national_id": row["national_id_hash"] is not None,
        "scope": row["scope"],
        "status": "active" if row["revoked_at"] is None else "revoked",
        "created_at": row["created_at"],
        "revoked_at": row["revoked_at"],
    }


def _load(connection: Connection, client_id: str, representation_id: str) -> Row:
    row: Row | None = connection.execute(
        REPRESENTATION_SQL + " WHERE m.id = ? AND m.client_id = ?", (representation_id, client_id)
    ).fetchone()
    if row is None:
        raise NotFound("no such representative for this client")
    return row


@unit_of_work
def create(representation: NewRepresentation, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        client = connection.execute(
            "SELECT id, phone_hash FROM clients WHERE id = ?", (representation.client_id,)
        ).fetchone()
        if client is None:
            raise NotFound("no such client")
        if equal(client["phone_hash"], representation.phone_hash):
            raise Conflict("this is the client's own phone: a client needs no representative", field="phone")
        person = connection.execute(
            "SELECT * FROM representatives WHERE phone_hash = ?", (representation.phone_hash,)
        ).fetchone()
        if person is None:
            representative_id = new_id("rp")
            connection.execute(
                "INSERT INTO representatives (id, name, phone_hash, phone_ciphertext, national_id_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    representative_id,
                    representation.name,
                    representation.phone_hash,
                    representation.phone_ciphertext,
                    representation.national_id_hash,
                    now,
                ),
            )
        else:
            representative_id = person["id"]
            stored = person["national_id_hash"]
            given = representation.national_id_hash
            if stored is not None and given is not None and not equal(stored, given):
                raise Conflict("this phone belongs to a representative with another national id", field="national_id")
            if (stored is None and given is not None) or representation.name is not None:
                connection.execute(
                    "UPDATE representatives SET national_id_hash = COALESCE(national_id_hash, ?),"
                    " name = COALESCE(?, name) WHERE id = ?",
                    (given, representation.name, representative_id),
                )
        existing = connection.execute(ACTIVE_MANDATE_SQL, (representative_id, representation.client_id)).fetchone()
        if existing is not None:
            raise Conflict(
                "this representative already acts for this client; revoke that first to change it",
                representation_id=existing["id"],
                scope=existing["scope"],
            )
        representation_id = new_id("rl")
        connection.execute(
            "INSERT INTO representations (id, representative_id, client_id, scope, created_at, created_by)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (representation_id, representative_id, representation.client_id, representation.scope, now, ACTOR.get()),
        )
        audit.append(
            connection,
            now,
            "representative.linked",
            representation_id,
            client_id=representation.client_id,
            representative_id=representative_id,
            scope=representation.scope,
            with_national_id=representation.national_id_hash is not None,
        )
        return render(_load(connection, representation.client_id, representation_id))

    return unit


@unit_of_work
def revoke(client_id: str, representation_id: str, now: str) -> Unit:
    """Revoke a mandate; revoking a revoked one changes nothing and answers it as it is."""

    def unit(connection: Connection) -> Record:
        row = _load(connection, client_id, representation_id)
        if row["revoked_at"] is None:
            connection.execute(
                "UPDATE representations SET revoked_at = ?, revoked_by = ? WHERE id = ?",
                (now, ACTOR.get(), representation_id),
            )
            audit.append(
                connection,
                now,
                "representative.revoked",
                representation_id,
                client_id=client_id,
                representative_id=row["representative_id"],
                scope=row["scope"],
            )
        return render(_load(connection, client_id, representation_id))

    return unit


def require_mandate(connection: Connection, representative_id: str, client_id: str, scope: str) -> str:
    """The id of the representative's active mandate for the client with ``scope``; Forbidden without one."""
    row = connection.execute(ACTIVE_MANDATE_SQL, (representative_id, client_id)).fetchone()
    if row is None:
        raise Forbidden("no active mandate for this client")
    if scope == MANAGE and row["scope"] != MANAGE:
        raise Forbidden("this mandate lets you view the wallet, not approve or decline charges")
    return str(row["id"])


async def list_page(reader: Reader, client_id: str, limit: int, before: int | None) -> tuple[list[Row], bool]:
    rows = list(
        await reader.execute_fetchall(
            REPRESENTATION_SQL + " WHERE m.client_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?",
            (client_id, before if before is not None else 2**62, limit + 1),
        )
    )
    return rows, len(rows) > limit
