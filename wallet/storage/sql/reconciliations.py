"""Invoice reconciliation in SQLite: one unit of work judges every invoice of a document in order.

An invoice that matches moves its batch to invoiced in the same transaction, so a second invoice
for the same batch, later in the file or in a racing request, is judged a duplicate.
"""

from __future__ import annotations

from wallet.ids import new_id
from wallet.ledger import reconciliation as rules
from wallet.ledger.reconciliation import Batch, Invoice, Outcome
from wallet.ledger.settlements import SettlementStatus
from wallet.storage.port import ACTOR, Record
from wallet.storage.sql import audit
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.settlements import change_status
from wallet.storage.sql.units import Unit, unit_of_work


@unit_of_work
def reconcile(invoices: tuple[Invoice, ...], source: str, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        reconciliation_id = new_id("rc")
        connection.execute(
            "INSERT INTO reconciliations (id, source, invoices, matched, actor, created_at) VALUES (?, ?, ?, 0, ?, ?)",
            (reconciliation_id, source, len(invoices), ACTOR.get(), now),
        )
        results: list[Record] = []
        for invoice in invoices:
            reference = rules.payment_reference(invoice)
            batch = _batch(connection, reference) if reference else None
            seller = rules.business_id_digits(invoice.business_id)
            judgement = rules.judge(invoice, batch, _matched_before(connection, seller, invoice.invoice_number))
            if judgement.outcome is Outcome.MATCHED and batch is not None:
                note = f"invoice {invoice.invoice_number or '(no number)'} in reconciliation {reconciliation_id}"
                change_status(connection, batch.id, SettlementStatus.INVOICED, now, note)
            connection.execute(
                "INSERT INTO reconciliation_invoices (reconciliation_id, position, invoice_number, reference,"
                " payment_reference, seller_business_id, seller_digits, amount, outcome, settlement_id, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    reconciliation_id,
                    invoice.position,
                    invoice.invoice_number,
                    invoice.reference,
                    reference,
                    invoice.business_id,
                    seller,
                    invoice.amount,
                    judgement.outcome.value,
                    batch.id if batch else None,
                    judgement.detail,
                ),
            )
            if invoice.sender is not None or invoice.invoice_total is not None or invoice.version is not None:
                connection.execute(
                    "INSERT INTO reconciliation_invoice_details (reconciliation_id, position, sender, invoice_total,"
                    " finvoice_version) VALUES (?, ?, ?, ?, ?)",
                    (reconciliation_id, invoice.position, invoice.sender, invoice.invoice_total, invoice.version),
                )
            result: Record = {
                "position": invoice.position,
                "invoice_number": invoice.invoice_number,
                "reference": invoice.reference,
                "business_id": invoice.business_id,
                "amount": invoice.amount,
                "outcome": judgement.outcome.value,
                "detail": judgement.detail,
                "settlement_id": batch.id if batch else None,
                "sender": invoice.sender,
                "invoice_total": invoice.invoice_total,
                "finvoice_version": invoice.version,
            }
            if batch is not None and judgement.outcome is Outcome.AMOUNT_MISMATCH:
                result["settlement_amount"] = batch.amount
            results.append(result)
        matched = sum(1 for result in results if result["outcome"] == Outcome.MATCHED.value)
        connection.execute("UPDATE reconciliations SET matched = ? WHERE id = ?", (matched, reconciliation_id))
        summary = {outcome.value: sum(1 for r in results if r["outcome"] == outcome.value) for outcome in Outcome}
        audit.append(connection, now, "reconciliation.created", reconciliation_id, source=source, **summary)
        return {"id": reconciliation_id, "source": source, "created_at": now, "summary": summary, "invoices": results}

    return unit


def _batch(connection: Connection, reference: str) -> Batch | None:
    row = connection.execute(
        "SELECT s.id, s.amount, s.status, p.business_id,"
        " EXISTS (SELECT 1 FROM reconciliation_invoices r WHERE r.settlement_id = s.id AND r.outcome = 'matched')"
        " AS invoiced FROM settlements s JOIN providers p ON p.id = s.provider_id WHERE s.reference = ?",
        (reference,),
    ).fetchone()
    if row is None:
        return None
    return Batch(row["id"], row["amount"], SettlementStatus(row["status"]), row["business_id"], bool(row["invoiced"]))


def _matched_before(connection: Connection, seller: str | None, invoice_number: str | None) -> bool:
    if seller is None or invoice_number is None:
        return False
    return (
        connection.execute(
            "SELECT 1 FROM reconciliation_invoices WHERE seller_digits = ? AND invoice_number = ? AND outcome = 'matched'",
            (seller, invoice_number),
        ).fetchone()
        is not None
    )
