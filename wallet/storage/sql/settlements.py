"""Settlement batches in SQLite: the units of work that make and move them, and their reads.

The units run in the writer thread like every unit: no ``await`` between reading what is
unsettled and closing it, and ``settlement_items`` keyed by transaction id, so that a line is in
one batch at most even if two requests race (the second finds nothing left: ``nothing_to_settle``).
"""

from __future__ import annotations

from typing import Any

from wallet.ids import new_id
from wallet.ledger import settlements as rules
from wallet.ledger.accounts import payable_account, settled_account
from wallet.ledger.errors import NotFound, NothingToSettle
from wallet.ledger.reference import group_finnish_reference, group_rf_reference
from wallet.ledger.settlements import Line, SettlementStatus
from wallet.ledger.transactions import TransactionType
from wallet.storage.port import ACTOR, Page, Record
from wallet.storage.sql import audit
from wallet.storage.sql.connection import Connection, Row
from wallet.storage.sql.ledger_rows import ensure_account, post
from wallet.storage.sql.reading import Reader
from wallet.storage.sql.units import Unit, unit_of_work

# The provider's captures and refunds not in any batch, from a sequence number on.
_NOT_SETTLED = (
    " FROM transactions t JOIN postings p ON p.transaction_id = t.id AND p.account_id = ?"
    " WHERE t.provider_id = ? AND t.seq >= ? AND t.type IN ('capture', 'refund')"
    " AND NOT EXISTS (SELECT 1 FROM settlement_items i WHERE i.transaction_id = t.id)"
)
_UNSETTLED_UNTIL = (
    "SELECT t.seq, t.id, t.type, t.created_at, p.amount"
    + _NOT_SETTLED
    + " AND t.created_at <= ? ORDER BY t.seq LIMIT ?"
)
_FIRST_UNSETTLED_AFTER = "SELECT MIN(t.seq)" + _NOT_SETTLED + " AND t.created_at > ?"
_UNSETTLED_TOTAL_UNTIL = "SELECT COALESCE(SUM(p.amount), 0), COUNT(*)" + _NOT_SETTLED + " AND t.created_at <= ?"


async def unsettled_by_provider(reader: Any, until: str) -> list[Record]:
    """Per provider, the net and count of lines made at or before ``until`` in no batch yet; each
    provider's scan starts where its last batch left off (``scan_from_seq``), as ``settle`` does."""
    providers = await reader.execute_fetchall(
        "SELECT p.id, (SELECT s.scan_from_seq FROM settlements s WHERE s.provider_id = p.id ORDER BY s.seq DESC"
        " LIMIT 1) AS scan_from FROM providers p ORDER BY p.seq"
    )
    found = []
    for provider in providers:
        rows = list(
            await reader.execute_fetchall(
                _UNSETTLED_TOTAL_UNTIL,
                (payable_account(provider["id"]), provider["id"], provider["scan_from"] or 0, until),
            )
        )
        net, count = rows[0][0], rows[0][1]
        if count:
            found.append({"provider_id": provider["id"], "net": int(net), "count": int(count)})
    return found


@unit_of_work
def settle(provider_id: str, until: str, now: str, items_max: int) -> Unit:
    """Close the provider's unsettled captures and refunds made at or before ``until`` into a batch.

    At most ``items_max`` lines, the oldest first; the answer says whether more are waiting.
    """

    def unit(connection: Connection) -> Record:
        if connection.execute("SELECT 1 FROM providers WHERE id = ?", (provider_id,)).fetchone() is None:
            raise NotFound("no such provider")
        previous = connection.execute(
            "SELECT scan_from_seq FROM settlements WHERE provider_id = ? ORDER BY seq DESC LIMIT 1", (provider_id,)
        ).fetchone()
        scan_from = previous[0] if previous else 0
        payable = payable_account(provider_id)
        rows = connection.execute(_UNSETTLED_UNTIL, (payable, provider_id, scan_from, until, items_max + 1)).fetchall()
        if not rows:
            raise NothingToSettle(f"no unsettled captures or refunds at or before {until}", until=until)
        more = len(rows) > items_max
        lines = [
            Line(row["id"], TransactionType(row["type"]), row["amount"], row["created_at"]) for row in rows[:items_max]
        ]
        batch = rules.batch_of(lines)

        # Every line of this provider below scan_from_seq is now settled: later batches start there.
        waiting = connection.execute(_FIRST_UNSETTLED_AFTER, (payable, provider_id, scan_from, until)).fetchone()[0]
        candidates = [seq for seq in (waiting, rows[items_max]["seq"] if more else None) if seq is not None]
        if candidates:
            next_scan_from = min(candidates)
        else:
            next_scan_from = connection.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM transactions").fetchone()[0]

        sequence = connection.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM settlements").fetchone()[0]
        reference, rf_reference = rules.references_for(sequence)
        settlement_id = new_id("se")
        transaction = rules.settlement_transaction(provider_id, batch.amount)
        transaction_id = None
        if transaction is not None:
            ensure_account(connection, settled_account(provider_id), provider_id=provider_id)
            transaction_id = post(connection, transaction, now, provider_id=provider_id)
        connection.execute(
            "INSERT INTO settlements (seq, id, provider_id, reference, rf_reference, amount, count, period_start,"
            " period_end, until, transaction_id, scan_from_seq, status, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
            (
                sequence,
                settlement_id,
                provider_id,
                reference,
                rf_reference,
                batch.amount,
                batch.count,
                batch.period_start,
                batch.period_end,
                until,
                transaction_id,
                next_scan_from,
                now,
                now,
            ),
        )
        connection.executemany(
            "INSERT INTO settlement_items (transaction_id, settlement_id, amount) VALUES (?, ?, ?)",
            [(line.transaction_id, settlement_id, line.amount) for line in lines],
        )
        _record_event(connection, settlement_id, None, SettlementStatus.OPEN, now, None)
        audit.append(
            connection,
            now,
            "settlement.created",
            settlement_id,
            provider_id=provider_id,
            reference=reference,
            amount=batch.amount,
            count=batch.count,
            until=until,
            transaction_id=transaction_id,
        )
        record = render(_load(connection, settlement_id))
        record["more_to_settle"] = more
        return record

    return unit


@unit_of_work
def set_status(settlement_id: str, wanted: SettlementStatus, now: str, note: str | None) -> Unit:
    def unit(connection: Connection) -> Record:
        change_status(connection, settlement_id, wanted, now, note)
        return render(_load(connection, settlement_id))

    return unit


def change_status(
    connection: Connection, settlement_id: str, wanted: SettlementStatus, now: str, note: str | None
) -> None:
    """Move a batch to ``wanted`` if its life allows, recording who and when. For other units too."""
    row = _load(connection, settlement_id)
    current = SettlementStatus(row["status"])
    rules.require_transition(current, wanted)
    connection.execute(
        "UPDATE settlements SET status = ?, updated_at = ? WHERE id = ?", (wanted.value, now, settlement_id)
    )
    _record_event(connection, settlement_id, current, wanted, now, note)
    audit.append(connection, now, f"settlement.{wanted.value}", settlement_id, previous_status=current.value, note=note)


def _record_event(
    connection: Connection,
    settlement_id: str,
    previous: SettlementStatus | None,
    status: SettlementStatus,
    now: str,
    note: str | None,
) -> None:
    connection.execute(
        "INSERT INTO settlement_events (settlement_id, previous_status, status, actor, at, note) VALUES (?, ?, ?, ?, ?, ?)",
        (settlement_id, previous.value if previous else None, status.value, ACTOR.get(), now, note),
    )


def _load(connection: Connection, settlement_id: str) -> Row:
    row = connection.execute("SELECT * FROM settlements WHERE id = ?", (settlement_id,)).fetchone()
    if row is None:
        raise NotFound("no such settlement")
    return row  # type: ignore[no-any-return]


# Rendering.


def render(row: Row) -> Record:
    return {
        "id": row["id"],
        "provider_id": row["provider_id"],
        "reference": row["reference"],
        "reference_printed": group_finnish_reference(row["reference"]),
        "rf_reference": row["rf_reference"],
        "rf_reference_printed": group_rf_reference(row["rf_reference"]),
        "amount": row["amount"],
        "count": row["count"],
        "period_start": row["period_start"],
        "period_end": row["period_end"],
        "until": row["until"],
        "status": row["status"],
        "transaction_id": row["transaction_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _render_line(row: Row) -> Record:
    return {
        "transaction_id": row["transaction_id"],
        "type": row["type"],
        "charge_id": row["charge_id"],
        "refund_id": row["refund_id"],
        "category": row["category"],
        "amount": row["amount"],
        "created_at": row["created_at"],
    }


def _render_event(row: Row) -> Record:
    return {
        "previous_status": row["previous_status"],
        "status": row["status"],
        "actor": row["actor"],
        "at": row["at"],
        "note": row["note"],
    }


# Reads, on a reader's snapshot.


async def get(
    reader: Reader, settlement_id: str, provider_id: str | None, lines_limit: int, lines_after: int | None
) -> Record:
    rows = list(await reader.execute_fetchall("SELECT * FROM settlements WHERE id = ?", (settlement_id,)))
    if not rows or (provider_id is not None and rows[0]["provider_id"] != provider_id):
        raise NotFound("no such settlement")  # another provider's batch does not exist for this one
    record = render(rows[0])
    events = await reader.execute_fetchall(
        "SELECT * FROM settlement_events WHERE settlement_id = ? ORDER BY seq", (settlement_id,)
    )
    record["events"] = [_render_event(row) for row in events]
    lines = list(
        await reader.execute_fetchall(
            "SELECT t.seq, i.transaction_id, i.amount, t.type, t.charge_id, t.refund_id, t.category, t.created_at"
            " FROM settlement_items i JOIN transactions t ON t.id = i.transaction_id"
            " WHERE i.settlement_id = ? AND t.seq > ? ORDER BY t.seq LIMIT ?",
            (settlement_id, lines_after if lines_after is not None else 0, lines_limit + 1),
        )
    )
    more = len(lines) > lines_limit
    lines = lines[:lines_limit]
    record["lines"] = [_render_line(row) for row in lines]
    record["lines_next_cursor"] = lines[-1]["seq"] if more else None
    return record


async def list_page(
    reader: Reader, provider_id: str | None, limit: int, before: int | None, status: str | None
) -> Page:
    query = _LISTED + " WHERE s.seq < ?"
    parameters: list[Any] = [before if before is not None else 2**62]
    if provider_id is not None:
        query += " AND s.provider_id = ?"
        parameters.append(provider_id)
    if status is not None:
        query += " AND s.status = ?"
        parameters.append(status)
    query += " ORDER BY s.seq DESC LIMIT ?"
    parameters.append(limit + 1)
    rows = list(await reader.execute_fetchall(query, parameters))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        [{**render(row), "payment_batch_id": row["payment_batch_id"]} for row in rows],
        rows[-1]["seq"] if more else None,
    )


# A listed batch names the payment batch (not cancelled) that holds it, so finance sees which
# settlements wait in a payment file and which are still to be put in one.
_LISTED = (
    "SELECT s.*, (SELECT i.batch_id FROM payment_batch_items i WHERE i.settlement_id = s.id"
    " AND i.released_at IS NULL) AS payment_batch_id FROM settlements s"
)
