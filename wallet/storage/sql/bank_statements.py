"""Bank statements: one unit of work judges every entry of a camt file in order and applies it.

A debit that pays a settlement moves it to paid in the same transaction, so the same entry later in
the file, or in a racing upload, finds it applied (``already_applied``) or the settlement paid
(``already_paid``). The statements' and notifications' ids are remembered: a file whose id was
received before is refused whole (``Conflict``), with nothing changed.
"""

from __future__ import annotations

from wallet.ids import new_id
from wallet.ledger import bank_statements as rules
from wallet.ledger import settlements as settlement_rules
from wallet.ledger.bank_statements import BankEntry, EntryOutcome, Statement
from wallet.ledger.errors import Conflict
from wallet.ledger.settlements import SettlementStatus
from wallet.storage.port import ACTOR, Record
from wallet.storage.sql import audit
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.settlements import change_status
from wallet.storage.sql.units import Unit, unit_of_work


@unit_of_work
def apply_statement(statement: Statement, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        keys = [f"{statement.kind.value}:{document_id}" for document_id in statement.document_ids]
        for key in keys:
            earlier = connection.execute(
                "SELECT statement_id FROM bank_statement_documents WHERE document_key = ?", (key,)
            ).fetchone()
            if earlier is not None:
                raise Conflict(
                    f"{key} was received before, as {earlier[0]}: nothing was applied again",
                    statement_id=earlier[0],
                )
        statement_id = new_id("bs")
        connection.execute(
            "INSERT INTO bank_statements (id, kind, message_id, entries, applied, actor, created_at)"
            " VALUES (?, ?, ?, ?, 0, ?, ?)",
            (statement_id, statement.kind.value, statement.message_id, len(statement.entries), ACTOR.get(), now),
        )
        connection.executemany(
            "INSERT INTO bank_statement_documents (document_key, statement_id) VALUES (?, ?)",
            [(key, statement_id) for key in keys],
        )
        results = [_apply(connection, statement_id, entry, now) for entry in statement.entries]
        applied = sum(1 for result in results if result["outcome"] in rules.APPLIED)
        connection.execute("UPDATE bank_statements SET applied = ? WHERE id = ?", (applied, statement_id))
        summary = {outcome.value: sum(1 for r in results if r["outcome"] == outcome) for outcome in EntryOutcome}
        audit.append(
            connection,
            now,
            "bank_statement.received",
            statement_id,
            kind=statement.kind.value,
            message_id=statement.message_id,
            **summary,
        )
        return {
            "id": statement_id,
            "kind": statement.kind.value,
            "message_id": statement.message_id,
            "document_ids": list(statement.document_ids),
            "created_at": now,
            "summary": summary,
            "entries": results,
        }

    return unit


def _apply(connection: Connection, statement_id: str, entry: BankEntry, now: str) -> Record:
    settlement = _settlement(connection, entry)
    applied_before = entry.entry_reference is not None and (
        connection.execute(
            "SELECT 1 FROM bank_statement_entries WHERE entry_reference = ? AND outcome IN ('paid', 'returned')",
            (entry.entry_reference,),
        ).fetchone()
        is not None
    )
    judgement = rules.judge(entry, settlement, applied_before)
    if settlement is not None and judgement.outcome is EntryOutcome.PAID:
        note = (
            f"paid, booked {entry.booking_date or '(no date)'}: entry {entry.position} of bank statement {statement_id}"
        )
        change_status(connection, settlement.id, SettlementStatus.PAID, now, note)
    elif settlement is not None and judgement.outcome is EntryOutcome.RETURNED:
        back_to = settlement_rules.status_after_return(_paid_from(connection, settlement.id))
        note = f"returned by the bank, booked {entry.booking_date or '(no date)'}: entry {entry.position} of {statement_id}"
        change_status(connection, settlement.id, back_to, now, note)
        # The transfer failed: the settlement leaves its payment batch (the batch's file stays as sent) so
        # that a new batch can pay it again.
        connection.execute(
            "UPDATE payment_batch_items SET released_at = ? WHERE settlement_id = ? AND released_at IS NULL",
            (now, settlement.id),
        )
    connection.execute(
        "INSERT INTO bank_statement_entries (statement_id, position, direction, amount, booking_date,"
        " entry_reference, reference, end_to_end_id, outcome, settlement_id, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            statement_id,
            entry.position,
            entry.direction.value,
            entry.amount,
            entry.booking_date,
            entry.entry_reference,
            entry.reference,
            entry.end_to_end_id,
            judgement.outcome.value,
            settlement.id if settlement else None,
            judgement.detail,
        ),
    )
    result: Record = {
        "position": entry.position,
        "direction": entry.direction.value,
        "amount": entry.amount,
        "booking_date": entry.booking_date,
        "entry_reference": entry.entry_reference,
        "reference": entry.reference,
        "end_to_end_id": entry.end_to_end_id,
        "outcome": judgement.outcome.value,
        "detail": judgement.detail,
        "settlement_id": settlement.id if settlement else None,
    }
    if settlement is not None and judgement.outcome is EntryOutcome.AMOUNT_MISMATCH:
        result["settlement_amount"] = settlement.amount
    return result


def _settlement(connection: Connection, entry: BankEntry) -> rules.Settlement | None:
    """The settlement the entry's end-to-end id names (a settlement id), else its creditor reference."""
    row = None
    if entry.end_to_end_id is not None:
        # A payment file's end-to-end id is the settlement's reference (wallet/storage/sql/payment_batches.py).
        row = connection.execute(
            "SELECT id, amount, status FROM settlements WHERE id = ? OR reference = ?",
            (entry.end_to_end_id, entry.end_to_end_id),
        ).fetchone()
    reference = rules.creditor_reference(entry.reference)
    if row is None and reference is not None:
        row = connection.execute(
            "SELECT id, amount, status FROM settlements WHERE reference = ?", (reference,)
        ).fetchone()
    if row is None:
        return None
    return rules.Settlement(row["id"], row["amount"], SettlementStatus(row["status"]))


def _paid_from(connection: Connection, settlement_id: str) -> SettlementStatus | None:
    row = connection.execute(
        "SELECT previous_status FROM settlement_events WHERE settlement_id = ? AND status = 'paid'"
        " ORDER BY seq DESC LIMIT 1",
        (settlement_id,),
    ).fetchone()
    return SettlementStatus(row[0]) if row is not None and row[0] is not None else None
