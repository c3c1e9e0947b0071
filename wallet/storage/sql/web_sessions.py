"""Page sessions (OpenID Connect sign-in) and the look-up of a signed-in person by national id.

A session row is found by the keyed hash of the cookie's secret; the secret itself is never
stored. Opening and ending a session are in the audit chain (who signed in, and as what).
"""

from __future__ import annotations

import json

from wallet.storage.port import NewSession, Record
from wallet.storage.sql import audit
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.reading import Reader
from wallet.storage.sql.units import Unit, unit_of_work

SESSION_SQL = "SELECT * FROM web_sessions WHERE id_hash = ?"


@unit_of_work
def open_session(session: NewSession) -> Unit:
    def unit(connection: Connection) -> Record:
        connection.execute(
            "INSERT INTO web_sessions (id_hash, audience, role, subject, name, client_id, representative_id,"
            " client_ids, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session.id_hash,
                session.audience,
                session.role,
                session.subject,
                session.name,
                session.client_id,
                session.representative_id,
                json.dumps(list(session.client_ids)),
                session.created_at,
                session.created_at,
                session.expires_at,
            ),
        )
        audit.append(connection, session.created_at, "session.signed_in", session.subject, audience=session.audience)
        return {"opened": True}

    return unit


@unit_of_work
def touch_session(id_hash: str, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        connection.execute(
            "UPDATE web_sessions SET last_seen_at = ? WHERE id_hash = ? AND ended_at IS NULL AND last_seen_at < ?",
            (now, id_hash, now),
        )
        return {}

    return unit


@unit_of_work
def end_session(id_hash: str, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        row = connection.execute(SESSION_SQL, (id_hash,)).fetchone()
        if row is None or row["ended_at"] is not None:
            return {"ended": False}
        connection.execute("UPDATE web_sessions SET ended_at = ? WHERE id_hash = ?", (now, id_hash))
        audit.append(connection, now, "session.signed_out", row["subject"], audience=row["audience"])
        return {"ended": True}

    return unit


@unit_of_work
def purge_sessions(now: str, idle_cutoff: str, batch: int) -> Unit:
    """Forget a batch of sessions that have ended: signed out, past their absolute lifetime, or idle."""

    def unit(connection: Connection) -> Record:
        deleted = connection.execute(
            "DELETE FROM web_sessions WHERE id_hash IN (SELECT id_hash FROM web_sessions WHERE ended_at IS NOT NULL"
            " OR expires_at <= ? OR last_seen_at <= ? LIMIT ?)",
            (now, idle_cutoff, batch),
        ).rowcount
        return {"deleted": deleted}

    return unit


async def find_session(reader: Reader, id_hash: str) -> Record | None:
    rows = list(await reader.execute_fetchall(SESSION_SQL, (id_hash,)))
    if not rows:
        return None
    session = dict(rows[0])
    session["client_ids"] = tuple(json.loads(session["client_ids"]))
    return session


async def person_by_national_id(reader: Reader, national_id_hash: str) -> Record | None:
    """Whose wallet a person signed in by national id may open: their own (a client), else the
    clients they hold an active mandate for (a representative); None for neither (or, never
    expected, a national id two clients share: nobody is guessed)."""
    clients = list(
        await reader.execute_fetchall("SELECT id FROM clients WHERE national_id_hash = ? LIMIT 2", (national_id_hash,))
    )
    if len(clients) == 1:
        return {"role": "client", "client_id": clients[0]["id"]}
    if clients:
        return None
    people = list(
        await reader.execute_fetchall(
            "SELECT id, name FROM representatives WHERE national_id_hash = ? LIMIT 2", (national_id_hash,)
        )
    )
    if len(people) != 1:
        return None
    mandates = [
        row["client_id"]
        for row in await reader.execute_fetchall(
            "SELECT client_id FROM representations WHERE representative_id = ? AND revoked_at IS NULL ORDER BY seq",
            (people[0]["id"],),
        )
    ]
    if not mandates:
        return None
    return {"role": "representative", "representative_id": people[0]["id"], "client_ids": mandates}
