"""Charges: made by a provider, confirmed by code or answered by the client, voided, refunded, expired."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from wallet.auth.hashing import equal
from wallet.clock import rfc3339
from wallet.ids import new_id
from wallet.ledger import charges as charge_rules
from wallet.ledger.accounts import payable_account, wallet_account
from wallet.ledger.charges import ChargeStatus, IdentityMethod
from wallet.ledger.errors import (
    CategoryNotAllowed,
    Conflict,
    IdentityCheckFailed,
    NotFound,
    ProviderNotApproved,
    RateLimited,
)
from wallet.ledger.transactions import Transaction, TransactionType
from wallet.storage.port import ChargeCommand, Limits, Record, Refusal
from wallet.storage.sql import audit, events, render, representatives
from wallet.storage.sql.connection import Connection, Row
from wallet.storage.sql.ledger_rows import change_held, post, read_line
from wallet.storage.sql.units import Unit, unit_of_work

# Failed identity checks in a window, and the one whose leaving the window lifts a lockout.
LOCKOUT_COUNT_SQL = {
    column: f"SELECT COUNT(*) FROM identity_failures WHERE {column} = ? AND at > ?"
    for column in ("client_id", "provider_id")
}
LOCKOUT_NTH_SQL = {
    column: f"SELECT at FROM identity_failures WHERE {column} = ? AND at > ? ORDER BY at LIMIT 1 OFFSET ?"
    for column in ("client_id", "provider_id")
}


def lockout_record(failures: int, maximum: int, unlocking_failure_at: str | None, window: timedelta) -> Record:
    locked_until = None
    if failures >= maximum and unlocking_failure_at is not None:
        # The lock lifts when enough failures have left the window to fall below the maximum.
        locked_until = rfc3339(datetime.fromisoformat(unlocking_failure_at) + window)
    return {
        "failures": failures,
        "max_failures": maximum,
        "window_seconds": int(window.total_seconds()),
        "locked_until": locked_until,
    }


def _check_rate_limit(
    connection: Connection,
    client_id: str,
    provider_id: str,
    limits: Limits,
    now: datetime,
    failures: tuple[int, int],
) -> None:
    """Refuse while the wallet or the provider is locked out; ``failures`` are their failed checks
    in the window (``CHARGE_CLIENT_SQL`` and ``CHARGE_PROVIDER_SQL`` count them)."""
    if failures[0] < limits.identity_failures_max and failures[1] < limits.provider_identity_failures_max:
        return  # neither is near a lockout: nothing more to read (the loop below would skip both)
    window = timedelta(seconds=limits.identity_failures_window_seconds)
    since = rfc3339(now - window)
    for column, value, count, maximum, whose in (
        ("client_id", client_id, failures[0], limits.identity_failures_max, "this wallet"),
        ("provider_id", provider_id, failures[1], limits.provider_identity_failures_max, "this provider"),
    ):
        if count < maximum:
            continue
        nth = connection.execute(LOCKOUT_NTH_SQL[column], (value, since, count - maximum)).fetchone()[0]
        lockout = lockout_record(count, maximum, nth, window)
        if lockout["locked_until"] is not None:
            retry = datetime.fromisoformat(lockout["locked_until"]) - now
            raise RateLimited(
                f"too many failed identity checks for {whose}; try again later",
                retry_after_seconds=max(math.ceil(retry.total_seconds()), 1),
            )


def _record_identity_failure(connection: Connection, client_id: str, provider_id: str, method: str, now: str) -> None:
    connection.execute(
        "INSERT INTO identity_failures (client_id, provider_id, method, at) VALUES (?, ?, ?, ?)",
        (client_id, provider_id, method, now),
    )


# The charge's reads, two statements: the provider with its approval for the category and its
# failed identity checks in the window; the client with its budget for the category this month
# and its failed identity checks in the window.
CHARGE_PROVIDER_SQL = (
    "SELECT status,"
    " EXISTS (SELECT 1 FROM provider_categories WHERE provider_id = providers.id AND category = ?) AS approved_for,"
    " (SELECT COUNT(*) FROM identity_failures WHERE provider_id = providers.id AND at > ?) AS failures"
    " FROM providers WHERE id = ?"
)
CHARGE_CLIENT_SQL = (
    "SELECT id, national_id_hash,"
    " EXISTS (SELECT 1 FROM budgets b JOIN budget_lines l ON l.budget_id = b.id"
    "  WHERE b.client_id = clients.id AND l.category = ? AND b.start_month <= ? AND b.end_month >= ?) AS budgeted,"
    " (SELECT COUNT(*) FROM identity_failures WHERE client_id = clients.id AND at > ?) AS failures"
    " FROM clients WHERE phone_hash = ?"
)


@unit_of_work
def charge(command: ChargeCommand, limits: Limits, now: datetime, month: str) -> Unit:
    stamp = rfc3339(now)
    since = rfc3339(now - timedelta(seconds=limits.identity_failures_window_seconds))

    def unit(connection: Connection) -> Record | Refusal:
        provider = connection.execute(CHARGE_PROVIDER_SQL, (command.category, since, command.provider_id)).fetchone()
        if provider is None or provider["status"] != "approved":
            raise ProviderNotApproved("the provider is not approved to charge")
        if not provider["approved_for"]:
            raise ProviderNotApproved("the provider is not approved for this category", field="category")
        client = connection.execute(
            CHARGE_CLIENT_SQL, (command.category, month, month, since, command.phone_hash)
        ).fetchone()
        if client is None:
            raise NotFound("no wallet for this phone number", field="phone")
        client_id = client["id"]
        if not client["budgeted"]:
            raise CategoryNotAllowed("this category is not in the client's budget", field="category")
        _check_rate_limit(
            connection, client_id, command.provider_id, limits, now, (client["failures"], provider["failures"])
        )
        account_id = wallet_account(client_id, command.category)
        line = read_line(connection, account_id)
        charge_id = new_id("ch")
        if command.method is IdentityMethod.NATIONAL_ID:
            stored = client["national_id_hash"]
            if stored is None or command.national_id_hash is None or not equal(stored, command.national_id_hash):
                _record_identity_failure(connection, client_id, command.provider_id, command.method.value, stamp)
                return Refusal(IdentityCheckFailed("the national id does not match this wallet"))
            charge_rules.debit(line, command.amount)  # refuses when not available
            written = _insert_charge(connection, charge_id, command, client_id, account_id, "captured", stamp)
            transfer = Transaction.transfer(
                TransactionType.CAPTURE, account_id, payable_account(command.provider_id), command.amount
            )
            post(
                connection,
                transfer,
                stamp,
                client_id=client_id,
                provider_id=command.provider_id,
                category=command.category,
                charge_id=charge_id,
            )
        else:
            charge_rules.reserve(line, command.amount)  # refuses when not available
            written = _insert_charge(connection, charge_id, command, client_id, account_id, "pending", stamp)
            after = change_held(connection, account_id, command.amount)
            audit.append(connection, stamp, "charge.held", charge_id, account_id=account_id, amount=command.amount)
            events.append(
                connection,
                account_id,
                "hold",
                -command.amount,
                stamp,
                charge_id=charge_id,
                provider_id=command.provider_id,
                line=after,
            )
        return render.charge(written)

    return unit


# A new charge, written in its final state for this unit; the columns a new row takes by default.
INSERT_CHARGE_SQL = (
    "INSERT INTO charges (id, provider_id, client_id, category, account_id, amount, method, status,"
    " description, created_at, expires_at, captured_at, otp_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
NEW_CHARGE_DEFAULTS: Record = {"voided_at": None, "void_reason": None, "refunded_amount": 0, "otp_attempts": 0}


def charge_row(
    charge_id: str, command: ChargeCommand, client_id: str, account_id: str, status: str, now: str
) -> Record:
    """A new charge's row (a captured one with its ``captured_at``), every column as written: to
    insert, and to render without reading it back."""
    return {
        "id": charge_id,
        "provider_id": command.provider_id,
        "client_id": client_id,
        "category": command.category,
        "account_id": account_id,
        "amount": command.amount,
        "method": command.method.value,
        "status": status,
        "description": command.description,
        "created_at": now,
        "expires_at": rfc3339(command.otp_expires_at) if command.otp_expires_at else None,
        "captured_at": now if status == "captured" else None,
        "otp_hash": command.otp_hash,
        **NEW_CHARGE_DEFAULTS,
    }


def charge_values(row: Record) -> tuple[object, ...]:
    """The values ``INSERT_CHARGE_SQL`` takes, from ``charge_row``."""
    return (
        row["id"],
        row["provider_id"],
        row["client_id"],
        row["category"],
        row["account_id"],
        row["amount"],
        row["method"],
        row["status"],
        row["description"],
        row["created_at"],
        row["expires_at"],
        row["captured_at"],
        row["otp_hash"],
    )


def _insert_charge(
    connection: Connection,
    charge_id: str,
    command: ChargeCommand,
    client_id: str,
    account_id: str,
    status: str,
    now: str,
) -> Record:
    """Insert a new charge; the row as written."""
    row = charge_row(charge_id, command, client_id, account_id, status, now)
    connection.execute(INSERT_CHARGE_SQL, charge_values(row))
    return row


def _load_charge(connection: Connection, provider_id: str, charge_id: str) -> Row:
    row: Row | None = connection.execute(
        "SELECT * FROM charges WHERE id = ? AND provider_id = ?", (charge_id, provider_id)
    ).fetchone()
    if row is None:
        raise NotFound("no such charge")
    return row


def _void(connection: Connection, row: Row, reason: str, now: str) -> None:
    line = read_line(connection, row["account_id"])
    charge_rules.release(line, row["amount"])
    after = change_held(connection, row["account_id"], -row["amount"])
    connection.execute(
        "UPDATE charges SET status = 'voided', voided_at = ?, void_reason = ? WHERE id = ?", (now, reason, row["id"])
    )
    audit.append(
        connection, now, "charge.voided", row["id"], account_id=row["account_id"], amount=row["amount"], reason=reason
    )
    events.append(
        connection,
        row["account_id"],
        "void",
        row["amount"],
        now,
        charge_id=row["id"],
        provider_id=row["provider_id"],
        reason=reason,
        line=after,
    )


@unit_of_work
def confirm_charge(provider_id: str, charge_id: str, code_hash: str, limits: Limits, now: datetime) -> Unit:
    stamp = rfc3339(now)

    def unit(connection: Connection) -> Record | Refusal:
        row = _load_charge(connection, provider_id, charge_id)
        charge_rules.require_status(ChargeStatus(row["status"]), ChargeStatus.PENDING, "confirm")
        if row["method"] != IdentityMethod.OTP.value:
            raise Conflict("this charge does not wait for a code")
        if row["expires_at"] <= stamp:
            _void(connection, row, "expired", stamp)
            return Refusal(Conflict("the code has expired; the charge is voided", charge_status="voided"))
        if not equal(row["otp_hash"], code_hash):
            attempts = row["otp_attempts"] + 1
            connection.execute("UPDATE charges SET otp_attempts = ? WHERE id = ?", (attempts, charge_id))
            _record_identity_failure(connection, row["client_id"], provider_id, IdentityMethod.OTP.value, stamp)
            if attempts >= limits.otp_max_attempts:
                _void(connection, row, "too_many_attempts", stamp)
                return Refusal(
                    IdentityCheckFailed(
                        "wrong code; too many attempts, the charge is voided", charge_status="voided", attempts_left=0
                    )
                )
            return Refusal(
                IdentityCheckFailed(
                    "wrong code", charge_status="pending", attempts_left=limits.otp_max_attempts - attempts
                )
            )
        _capture_held(connection, row, stamp)
        return render.charge(_load_charge(connection, provider_id, charge_id))

    return unit


def _capture_held(connection: Connection, row: Row, now: str) -> None:
    """Turn a pending charge's hold into a capture: wallet line → the provider's payable."""
    line = read_line(connection, row["account_id"])
    charge_rules.capture_held(line, row["amount"])
    change_held(connection, row["account_id"], -row["amount"])
    transfer = Transaction.transfer(
        TransactionType.CAPTURE, row["account_id"], payable_account(row["provider_id"]), row["amount"]
    )
    post(
        connection,
        transfer,
        now,
        client_id=row["client_id"],
        provider_id=row["provider_id"],
        category=row["category"],
        charge_id=row["id"],
    )
    connection.execute("UPDATE charges SET status = 'captured', captured_at = ? WHERE id = ?", (now, row["id"]))


@unit_of_work
def void_charge(provider_id: str, charge_id: str, now: datetime) -> Unit:
    stamp = rfc3339(now)

    def unit(connection: Connection) -> Record:
        row = _load_charge(connection, provider_id, charge_id)
        status = ChargeStatus(row["status"])
        if status is ChargeStatus.CAPTURED:
            raise Conflict("a captured charge cannot be voided; refund it instead", charge_status=status.value)
        charge_rules.require_status(status, ChargeStatus.PENDING, "void")
        _void(connection, row, "voided_by_provider", stamp)
        return render.charge(_load_charge(connection, provider_id, charge_id))

    return unit


@unit_of_work
def refund(provider_id: str, charge_id: str, amount: int, now: datetime) -> Unit:
    stamp = rfc3339(now)

    def unit(connection: Connection) -> Record:
        row = _load_charge(connection, provider_id, charge_id)
        charge_rules.require_status(ChargeStatus(row["status"]), ChargeStatus.CAPTURED, "refund")
        charge_rules.refundable(row["amount"], row["refunded_amount"], amount)
        refund_id = new_id("re")
        transfer = Transaction.transfer(TransactionType.REFUND, payable_account(provider_id), row["account_id"], amount)
        transaction_id = post(
            connection,
            transfer,
            stamp,
            client_id=row["client_id"],
            provider_id=provider_id,
            category=row["category"],
            charge_id=charge_id,
            refund_id=refund_id,
        )
        connection.execute(
            "INSERT INTO refunds (id, charge_id, provider_id, amount, transaction_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (refund_id, charge_id, provider_id, amount, transaction_id, stamp),
        )
        connection.execute("UPDATE charges SET refunded_amount = refunded_amount + ? WHERE id = ?", (amount, charge_id))
        return {
            "id": refund_id,
            "charge_id": charge_id,
            "amount": amount,
            "status": "succeeded",
            "created_at": stamp,
            "charge": render.charge(_load_charge(connection, provider_id, charge_id)),
        }

    return unit


# Whether any hold has expired (``charges_pending``): the sweep writes only then.
EXPIRED_HOLD_SQL = "SELECT 1 FROM charges WHERE status = 'pending' AND expires_at <= ? LIMIT 1"


@unit_of_work
def expire_pending(now: datetime, batch: int) -> Unit:
    stamp = rfc3339(now)

    def unit(connection: Connection) -> Record:
        rows = connection.execute(
            "SELECT * FROM charges WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
            (stamp, batch),
        ).fetchall()
        for row in rows:
            _void(connection, row, "expired", stamp)
        return {"voided": len(rows)}

    return unit


# The client answers a charge made with the app method: approve (capture) or decline (void).


@unit_of_work
def answer_charge(
    client_id: str, charge_id: str, approve: bool, now: datetime, representative_id: str | None = None
) -> Unit:
    """The client's answer; or, with ``representative_id``, a representative's under a manage mandate."""
    stamp = rfc3339(now)

    def unit(connection: Connection) -> Record | Refusal:
        acting: dict[str, str] = {}
        if representative_id is not None:
            mandate = representatives.require_mandate(connection, representative_id, client_id, representatives.MANAGE)
            acting = {"representative_id": representative_id, "representation_id": mandate}
        row = connection.execute(
            "SELECT * FROM charges WHERE id = ? AND client_id = ?", (charge_id, client_id)
        ).fetchone()
        if row is None:
            raise NotFound("no such charge")  # another wallet's charge is not even there
        charge_rules.require_status(ChargeStatus(row["status"]), ChargeStatus.PENDING, "approve or decline")
        charge_rules.require_client_approval(IdentityMethod(row["method"]))
        if row["expires_at"] <= stamp:
            _void(connection, row, "expired", stamp)
            return Refusal(Conflict("the request has expired; the charge is voided", charge_status="voided"))
        if approve:
            _capture_held(connection, row, stamp)
        else:
            _void(connection, row, "declined_by_client", stamp)
        audit.append(
            connection,
            stamp,
            "charge.approved" if approve else "charge.declined",
            charge_id,
            client_id=client_id,
            **acting,
        )
        return client_charge(connection, charge_id)

    return unit


def client_charge(connection: Connection, charge_id: str) -> Record:
    row = connection.execute(
        "SELECT c.*, p.name AS provider_name FROM charges c JOIN providers p ON p.id = c.provider_id WHERE c.id = ?",
        (charge_id,),
    ).fetchone()
    return render.client_charge(row)


# ``charge``'s batch runner: new charges side by side in a batch, run together. Imported
# here, last, so that wherever ``charge`` is, the writer knows its runner (it registers itself).
from wallet.storage.sql import charge_batch as _charge_batch  # noqa: E402, F401 (registers itself last)
