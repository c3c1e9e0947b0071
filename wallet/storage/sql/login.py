"""Login, for clients and representatives alike: a one-time code sent by SMS within a rate limit, and
its verification. A phone that is a client's keeps its codes with the client."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from wallet.auth.hashing import equal
from wallet.clock import rfc3339
from wallet.ledger.errors import Forbidden, IdentityCheckFailed, InvariantViolation, RateLimited
from wallet.storage.port import Limits, Record, Refusal
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.units import Unit, unit_of_work

# The codes of each kind of person: their table and the column naming their owner.
CLIENT_CODES = ("login_codes", "client_id")
REPRESENTATIVE_CODES = ("representative_login_codes", "representative_id")


def issue_code(
    connection: Connection,
    codes: tuple[str, str],
    owner: str,
    code_hash: str,
    expires_at: datetime,
    limits: Limits,
    now: datetime,
) -> Record:
    """Keep a new code for ``owner``; refused while it has had ``login_requests_max`` in the window."""
    table, owner_column = codes
    window = timedelta(seconds=limits.login_requests_window_seconds)
    recent = connection.execute(
        f"SELECT COUNT(*), MIN(created_at) FROM {table} WHERE {owner_column} = ? AND created_at > ?",
        (owner, rfc3339(now - window)),
    ).fetchone()
    if recent[0] >= limits.login_requests_max:
        retry = datetime.fromisoformat(recent[1]) + window - now
        raise RateLimited(
            "too many login codes requested; try again later",
            retry_after_seconds=max(math.ceil(retry.total_seconds()), 1),
        )
    connection.execute(
        f"INSERT INTO {table} ({owner_column}, code_hash, created_at, expires_at) VALUES (?, ?, ?, ?)",
        (owner, code_hash, rfc3339(now), rfc3339(expires_at)),
    )
    return {"sent": True}


@unit_of_work
def start_login(phone_hash: str, code_hash: str, expires_at: datetime, limits: Limits, now: datetime) -> Unit:
    def unit(connection: Connection) -> Record:
        client = connection.execute("SELECT id FROM clients WHERE phone_hash = ?", (phone_hash,)).fetchone()
        if client is not None:
            return issue_code(connection, CLIENT_CODES, client["id"], code_hash, expires_at, limits, now)
        # A phone that is no client's: a code for its representative, if it has an active mandate.
        person = connection.execute(
            "SELECT r.id FROM representatives r WHERE r.phone_hash = ? AND EXISTS"
            " (SELECT 1 FROM representations m WHERE m.representative_id = r.id AND m.revoked_at IS NULL)",
            (phone_hash,),
        ).fetchone()
        if person is None:
            return {"sent": False}
        return issue_code(connection, REPRESENTATIVE_CODES, person["id"], code_hash, expires_at, limits, now)

    return unit


@unit_of_work
def verify_login(phone_hash: str, code_hash: str, client_id: str | None, limits: Limits, now: datetime) -> Unit:
    stamp = rfc3339(now)

    def unit(connection: Connection) -> Record | Refusal:
        failure = Refusal(IdentityCheckFailed("wrong or expired code"))
        client = connection.execute("SELECT id FROM clients WHERE phone_hash = ?", (phone_hash,)).fetchone()
        person = connection.execute("SELECT id FROM representatives WHERE phone_hash = ?", (phone_hash,)).fetchone()
        # A phone that is a client's keeps its codes with the client (as before representatives).
        if client is not None:
            (table, owner_column), owner = CLIENT_CODES, client["id"]
        elif person is not None:
            (table, owner_column), owner = REPRESENTATIVE_CODES, person["id"]
        else:
            return failure
        code = connection.execute(
            f"SELECT * FROM {table} WHERE {owner_column} = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?"
            " ORDER BY seq DESC LIMIT 1",
            (owner, stamp, limits.login_code_max_attempts),
        ).fetchone()
        if code is None:
            return failure
        if not equal(code["code_hash"], code_hash):
            connection.execute(f"UPDATE {table} SET attempts = attempts + 1 WHERE seq = ?", (code["seq"],))
            return failure
        mandates: list[str] = []
        if person is not None:
            mandates = [
                row["client_id"]
                for row in connection.execute(
                    "SELECT client_id FROM representations WHERE representative_id = ? AND revoked_at IS NULL"
                    " ORDER BY seq",
                    (person["id"],),
                )
            ]
        own = client["id"] if client is not None else None
        if client_id is None:
            chosen = own if own is not None else (mandates[0] if len(mandates) == 1 else None)
        elif client_id == own or client_id in mandates:
            chosen = client_id
        else:
            raise Forbidden("this phone may not act for that client", field="client_id")  # the code stays unspent
        if chosen is None and not mandates:
            return failure  # a representative whose every mandate was revoked since the code was sent
        connection.execute(f"UPDATE {table} SET used_at = ? WHERE seq = ?", (stamp, code["seq"]))
        if chosen is not None and chosen == own:
            return {"role": "client", "client_id": own}
        if person is None:
            raise InvariantViolation("mandates without a representative")
        return {
            "role": "representative",
            "representative_id": person["id"],
            "client_ids": mandates,
            "client_id": chosen,
        }

    return unit
