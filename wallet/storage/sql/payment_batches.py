"""Payment batches: the units that make and cancel them, and the reads of a batch and its file.

The settlements are chosen, checked and taken in one unit of work; the partial unique index on
``payment_batch_items (settlement_id) WHERE released_at IS NULL`` says again that a settlement is
in one batch at most that is not cancelled, so two racing requests cannot both take it.
"""

from __future__ import annotations

from typing import Any

from wallet.ids import new_id
from wallet.ledger import payments as rules
from wallet.ledger.errors import Conflict, NotFound
from wallet.ledger.payments import Candidate, PaymentBatchStatus
from wallet.ledger.settlements import SettlementStatus
from wallet.pain import PaymentFile, Transfer
from wallet.storage.port import ACTOR, Record
from wallet.storage.sql import audit
from wallet.storage.sql.connection import Connection, Row
from wallet.storage.sql.units import Unit, unit_of_work

_CANDIDATE = (
    "SELECT s.seq, s.id, s.amount, s.status, s.reference, p.name, p.iban,"
    " (SELECT i.batch_id FROM payment_batch_items i WHERE i.settlement_id = s.id AND i.released_at IS NULL)"
    " AS in_batch FROM settlements s JOIN providers p ON p.id = s.provider_id"
)


@unit_of_work
def create(
    settlement_ids: tuple[str, ...] | None,
    payer: tuple[str, str, str],
    execution_date: str,
    now: str,
    settlements_max: int,
) -> Unit:
    def unit(connection: Connection) -> Record:
        if settlement_ids is None:  # every invoiced settlement owed and in no batch, the oldest first
            rows = connection.execute(
                _CANDIDATE + " WHERE s.status = 'invoiced' AND s.amount > 0 AND NOT EXISTS (SELECT 1 FROM"
                " payment_batch_items i WHERE i.settlement_id = s.id AND i.released_at IS NULL)"
                " ORDER BY s.seq LIMIT ?",
                (settlements_max,),
            ).fetchall()
            if not rows:
                raise Conflict("no invoiced settlement waits for payment")
        else:
            rows = []
            for settlement_id in settlement_ids:
                row = connection.execute(_CANDIDATE + " WHERE s.id = ?", (settlement_id,)).fetchone()
                if row is None:
                    raise NotFound(f"no settlement {settlement_id}", settlement_id=settlement_id)
                rules.require_payable(
                    Candidate(row["id"], row["amount"], SettlementStatus(row["status"]), row["in_batch"])
                )
                rows.append(row)
        sequence = connection.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM payment_batches").fetchone()[0]
        batch_id = new_id("pb")
        amount = sum(int(row["amount"]) for row in rows)
        name, iban, bic = payer
        connection.execute(
            "INSERT INTO payment_batches (seq, id, message_id, status, count, amount, payer_name, payer_iban,"
            " payer_bic, execution_date, actor, created_at) VALUES (?, ?, ?, 'created', ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sequence,
                batch_id,
                rules.message_id(sequence),
                len(rows),
                amount,
                name,
                iban,
                bic,
                execution_date,
                ACTOR.get(),
                now,
            ),
        )
        connection.executemany(
            "INSERT INTO payment_batch_items (batch_id, settlement_id, amount, reference, end_to_end_id,"
            " creditor_name, creditor_iban) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (batch_id, row["id"], row["amount"], row["reference"], row["reference"], row["name"], row["iban"])
                for row in rows
            ],
        )
        audit.append(connection, now, "payment_batch.created", batch_id, count=len(rows), amount=amount)
        return _render(connection, batch_id)

    return unit


@unit_of_work
def cancel(batch_id: str, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        batch = _load(connection, batch_id)
        paid = connection.execute(
            "SELECT COUNT(*) FROM payment_batch_items i JOIN settlements s ON s.id = i.settlement_id"
            " WHERE i.batch_id = ? AND s.status = 'paid'",
            (batch_id,),
        ).fetchone()[0]
        rules.require_cancellable(PaymentBatchStatus(batch["status"]), int(paid))
        connection.execute(
            "UPDATE payment_batches SET status = 'cancelled', cancelled_at = ? WHERE id = ?", (now, batch_id)
        )
        connection.execute("UPDATE payment_batch_items SET released_at = ? WHERE batch_id = ?", (now, batch_id))
        audit.append(connection, now, "payment_batch.cancelled", batch_id)
        return _render(connection, batch_id)

    return unit


def _load(connection: Any, batch_id: str) -> Row:
    row = connection.execute("SELECT * FROM payment_batches WHERE id = ?", (batch_id,)).fetchone()
    if row is None:
        raise NotFound("no such payment batch")
    return row  # type: ignore[no-any-return]


def _render_rows(batch: Row, items: list[Row]) -> Record:
    return {
        "id": batch["id"],
        "message_id": batch["message_id"],
        "status": batch["status"],
        "count": batch["count"],
        "amount": batch["amount"],
        "execution_date": batch["execution_date"],
        "created_at": batch["created_at"],
        "cancelled_at": batch["cancelled_at"],
        "payer": {"name": batch["payer_name"], "iban": batch["payer_iban"], "bic": batch["payer_bic"]},
        "settlements": [
            {
                "settlement_id": item["settlement_id"],
                "amount": item["amount"],
                "reference": item["reference"],
                "end_to_end_id": item["end_to_end_id"],
                "creditor_name": item["creditor_name"],
                "creditor_iban": item["creditor_iban"],
            }
            for item in items
        ],
    }


_ITEMS = "SELECT * FROM payment_batch_items WHERE batch_id = ? ORDER BY seq"


def _render(connection: Connection, batch_id: str) -> Record:
    return _render_rows(_load(connection, batch_id), connection.execute(_ITEMS, (batch_id,)).fetchall())


async def get(reader: Any, batch_id: str) -> Record:
    rows = list(await reader.execute_fetchall("SELECT * FROM payment_batches WHERE id = ?", (batch_id,)))
    if not rows:
        raise NotFound("no such payment batch")
    return _render_rows(rows[0], list(await reader.execute_fetchall(_ITEMS, (batch_id,))))


def payment_file(batch: Record) -> PaymentFile:
    """The batch's pain.001 as it was made: the payer and creditors stored with it."""
    return PaymentFile(
        message_id=batch["message_id"],
        created_at=batch["created_at"],
        execution_date=batch["execution_date"],
        payer_name=batch["payer"]["name"],
        payer_iban=batch["payer"]["iban"],
        payer_bic=batch["payer"]["bic"],
        transfers=[
            Transfer(
                item["end_to_end_id"], item["amount"], item["creditor_name"], item["creditor_iban"], item["reference"]
            )
            for item in batch["settlements"]
        ],
    )
