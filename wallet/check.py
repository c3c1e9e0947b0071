"""``wallet check``: verify every invariant of PRODUCT.md on a database, from its raw rows.

Read-only. Each breach is named; the command exits non-zero if there is any. The same queries
run on SQLite and on PostgreSQL, on the storage's ``Connection``, in one snapshot.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from wallet.ledger.audit import AuditEntry, verify_chain
from wallet.storage.migrations import is_postgres
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.decisions import decision_breaches
from wallet.storage.sql.events import MAKES_CHARGE_SQL
from wallet.storage.sql.statement_documents import breaches as statement_document_breaches
from wallet.storage.sqlite.connection import SqliteConnection

if TYPE_CHECKING:
    from wallet.storage.postgres.connection import PostgresConnection


def check_database(path: str, released_through: str | None = None) -> list[str]:
    """Every breach in the database ``path`` names: a SQLite file or a PostgreSQL DSN.

    ``released_through``: a month (``YYYY-MM``) by which every credit staged ahead must have been
    released, as the caller's clock says (``wallet check``: the month begun at least a credit run
    interval ago); without it, only what the database itself says is due is checked."""
    if is_postgres(path):
        return _check_postgres(path, released_through)
    if not Path(path).exists():
        return [f"{path}: no such database"]
    connection = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, factory=SqliteConnection)
    connection.row_factory = sqlite3.Row
    try:
        connection.execute("BEGIN")  # one snapshot for every check
        return _breaches(connection, released_through)
    finally:
        connection.close()


def _check_postgres(dsn: str, released_through: str | None) -> list[str]:
    from wallet.storage.postgres.connection import PostgresConnection

    connection = PostgresConnection(dsn)
    try:
        try:
            connection.connect()
        except connection.dialect.storage_fault as error:
            return [f"cannot reach the database: {error}"]
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one snapshot
        try:
            found = connection.execute("SELECT to_regclass('postings')").fetchone()
            if found is None or found[0] is None:
                return ["no wallet schema in this database (search_path)"]
            return _breaches(connection, released_through)
        finally:
            connection.execute("ROLLBACK")
    finally:
        connection.close()


def _breaches(connection: Connection, released_through: str | None = None) -> list[str]:
    breaches: list[str] = []
    total = connection.execute("SELECT COALESCE(SUM(amount), 0) FROM postings").fetchone()[0]
    if total != 0:
        breaches.append(f"the sum of all postings is {total}, not 0")
    for row in connection.execute(
        "SELECT transaction_id, SUM(amount) AS total, COUNT(*) AS n FROM postings GROUP BY transaction_id"
        " HAVING SUM(amount) <> 0 OR COUNT(*) < 2"
    ):
        breaches.append(f"transaction {row['transaction_id']}: {row['n']} postings summing to {row['total']}")
    for row in connection.execute(
        "SELECT t.id FROM transactions t LEFT JOIN postings p ON p.transaction_id = t.id WHERE p.seq IS NULL"
    ):
        breaches.append(f"transaction {row['id']} has no postings")
    for row in connection.execute(
        "SELECT a.id, a.balance, COALESCE(SUM(p.amount), 0) AS posted FROM accounts a"
        " LEFT JOIN postings p ON p.account_id = a.id GROUP BY a.id HAVING a.balance <> COALESCE(SUM(p.amount), 0)"
    ):
        breaches.append(f"account {row['id']}: balance {row['balance']} but its postings sum to {row['posted']}")
    for row in connection.execute(
        "SELECT a.id, a.held, COALESCE(SUM(c.amount), 0) AS pending FROM accounts a"
        " LEFT JOIN charges c ON c.account_id = a.id AND c.status = 'pending'"
        " WHERE a.kind = 'wallet' GROUP BY a.id HAVING a.held <> COALESCE(SUM(c.amount), 0)"
    ):
        breaches.append(f"wallet line {row['id']}: held {row['held']} but pending charges hold {row['pending']}")
    for row in connection.execute(
        "SELECT id, balance, held FROM accounts WHERE kind = 'wallet' AND (balance - held < 0 OR held < 0)"
    ):
        breaches.append(f"wallet line {row['id']}: available {row['balance'] - row['held']} < 0")
    for row in _whole(
        connection,
        "SELECT p.account_id, p.seq, p.balance_after,"
        " SUM(p.amount) OVER (PARTITION BY p.account_id ORDER BY p.seq) AS running FROM postings p",
    ):
        if row["balance_after"] != row["running"]:
            breaches.append(
                f"posting {row['seq']} on {row['account_id']}: balance_after {row['balance_after']}"
                f" but the running sum is {row['running']}"
            )
            break
    breaches += _event_breaches(connection)
    for row in connection.execute(
        "SELECT c.id, c.amount, c.status, COALESCE(SUM(p.amount), 0) AS captured FROM charges c"
        " LEFT JOIN transactions t ON t.charge_id = c.id AND t.type = 'capture'"
        # `|| ''`: find the posting by its transaction, never by walking the account's postings
        # (the planner's other choice: quadratic for a line charged tens of thousands of times).
        " LEFT JOIN postings p ON p.transaction_id = t.id AND p.account_id || '' = c.account_id"
        " GROUP BY c.id, c.amount, c.status"
        " HAVING (c.status = 'captured' AND -COALESCE(SUM(p.amount), 0) <> c.amount)"
        " OR (c.status <> 'captured' AND COALESCE(SUM(p.amount), 0) <> 0)"
    ):
        breaches.append(
            f"charge {row['id']} ({row['status']}, {row['amount']}): captured on the ledger {-row['captured']}"
        )
    for row in connection.execute(
        "SELECT c.id, c.amount, c.refunded_amount, COALESCE(SUM(r.amount), 0) AS refunds FROM charges c"
        " LEFT JOIN refunds r ON r.charge_id = c.id GROUP BY c.id, c.amount, c.refunded_amount"
        " HAVING COALESCE(SUM(r.amount), 0) <> c.refunded_amount OR COALESCE(SUM(r.amount), 0) > c.amount"
    ):
        breaches.append(
            f"charge {row['id']}: refunds {row['refunds']}, recorded {row['refunded_amount']}, captured {row['amount']}"
        )
    breaches += _settlement_breaches(connection)
    breaches += _representation_breaches(connection)
    breaches += _staged_breaches(connection, released_through)
    breaches += _catalog_breaches(connection)
    breaches += _receipt_breaches(connection)
    breaches += decision_breaches(connection)
    breaches += statement_document_breaches(connection)
    entries = (
        AuditEntry(
            row["seq"],
            row["at"],
            row["actor"],
            row["action"],
            row["subject"],
            row["data"],
            row["previous_hash"],
            row["hash"],
        )
        for row in _whole(connection, "SELECT * FROM audit_log ORDER BY seq")
    )
    broken = verify_chain(entries)
    if broken is not None:
        breaches.append(broken)
    return breaches


def _whole(connection: Connection, sql: str) -> Iterable[Any]:
    """A read of a row for each posting or audit entry, as it comes: a PostgreSQL connection's
    ``execute`` would hold the whole result in memory (SQLite's cursor steps through it anyway)."""
    if connection.dialect.name == "postgresql":
        return cast("PostgresConnection", connection).stream(sql)
    return connection.execute(sql)


# A posting on a wallet line, and the wallet event that carries its transaction: the same line,
# amount and balance after. A client's history and statement are read from the events.
_WALLET_POSTINGS_SQL = (
    "SELECT p.transaction_id, a.client_id, a.category, p.amount, p.balance_after FROM postings p"
    " JOIN accounts a ON a.id = p.account_id WHERE a.kind = 'wallet'"
)
_TRANSACTION_EVENTS_SQL = (
    "SELECT e.transaction_id, e.client_id, e.category, e.amount, e.line_balance FROM wallet_events e"
    " WHERE e.transaction_id IS NOT NULL"
)
# A charge, and the wallet event it was made with (its hold, or its capture if captured at once):
# the same client and amount. A client's charges are listed by these events.
_CHARGES_SQL = "SELECT c.id, c.client_id, -c.amount FROM charges c"
_MADE_WITH_SQL = (
    "SELECT e.charge_id, e.client_id, e.amount FROM wallet_events e JOIN charges c ON c.id = e.charge_id"
    f" WHERE e.charge_id IS NOT NULL AND {MAKES_CHARGE_SQL}"
)
EVENT_BREACHES_SHOWN = 5  # of each kind


def _event_breaches(connection: Connection) -> list[str]:
    """Every posting on a wallet line has exactly one wallet event, and every event with a
    transaction is such a posting; every charge has exactly one event it was made with. So the
    client's feed, history, statement and list of charges agree with the ledger."""
    breaches: list[str] = []
    for counted_sql, found_sql, what in (
        (
            _WALLET_POSTINGS_SQL,
            _TRANSACTION_EVENTS_SQL,
            "postings on wallet lines but {} wallet events with a transaction",
        ),
        (_CHARGES_SQL, _MADE_WITH_SQL, "charges but {} wallet events that make a charge"),
    ):
        counted = connection.execute(f"SELECT COUNT(*) FROM ({counted_sql}) w").fetchone()[0]
        found = connection.execute(f"SELECT COUNT(*) FROM ({found_sql}) w").fetchone()[0]
        if counted != found:
            breaches.append(f"{counted} " + what.format(found))
    for first, second, what in (
        (
            _WALLET_POSTINGS_SQL,
            _TRANSACTION_EVENTS_SQL,
            "transaction {} has no wallet event with its amount and balance after",
        ),
        (
            _TRANSACTION_EVENTS_SQL,
            _WALLET_POSTINGS_SQL,
            "transaction {} has a wallet event that matches none of its postings",
        ),
        (_CHARGES_SQL, _MADE_WITH_SQL, "charge {} has no wallet event it was made with, of its client and amount"),
        (_MADE_WITH_SQL, _CHARGES_SQL, "charge {} has a wallet event that makes it, of another client or amount"),
    ):
        rows = connection.execute(
            f"SELECT * FROM ({first} EXCEPT {second}) w LIMIT {EVENT_BREACHES_SHOWN + 1}"
        ).fetchall()
        for row in rows[:EVENT_BREACHES_SHOWN]:
            breaches.append(f"{what.format(row[0])} ({', '.join(str(value) for value in tuple(row)[1:])})")
        if len(rows) > EVENT_BREACHES_SHOWN:
            breaches.append(f"... and more like it than the {EVENT_BREACHES_SHOWN} shown: {what.format('...')}")
    return breaches


def _settlement_breaches(connection: Connection) -> list[str]:
    """A charge is settled at most once; a settlement's amount equals its lines and its ledger transaction."""
    breaches: list[str] = []
    if connection.execute(connection.dialect.table_exists, ("settlements",)).fetchone() is None:
        return breaches  # a database from before settlements: nothing to check
    for row in connection.execute(
        "SELECT s.id, s.amount, s.count, COALESCE(SUM(i.amount), 0) AS lines, COUNT(i.transaction_id) AS n"
        " FROM settlements s LEFT JOIN settlement_items i ON i.settlement_id = s.id GROUP BY s.id, s.amount, s.count"
        " HAVING s.amount <> COALESCE(SUM(i.amount), 0) OR s.count <> COUNT(i.transaction_id)"
    ):
        breaches.append(
            f"settlement {row['id']}: amount {row['amount']} in {row['count']} lines,"
            f" but its {row['n']} lines sum to {row['lines']}"
        )
    for row in connection.execute(
        "SELECT transaction_id, COUNT(*) AS n FROM settlement_items GROUP BY transaction_id HAVING COUNT(*) > 1"
    ):
        breaches.append(f"transaction {row['transaction_id']} is in {row['n']} settlements")
    # Each line is a capture or refund of the batch's provider, for what it posted on its payable account.
    # (``p.account_id || ''``: look the line's postings up by transaction, never scan the provider's
    # whole payable account once per line, which is quadratic in a batch of 100,000 lines. SQLite's
    # ``+column`` would say the same, but PostgreSQL has no unary plus on text.)
    for row in connection.execute(
        "SELECT * FROM (SELECT i.transaction_id, i.settlement_id, i.amount, t.type, t.provider_id,"
        " s.provider_id AS batch_provider,"
        " (SELECT SUM(p.amount) FROM postings p WHERE p.transaction_id = i.transaction_id"
        "  AND (p.account_id || '') = 'payable:' || s.provider_id) AS posted"
        " FROM settlement_items i JOIN settlements s ON s.id = i.settlement_id"
        " LEFT JOIN transactions t ON t.id = i.transaction_id) line"
        " WHERE type IS NULL OR type NOT IN ('capture', 'refund') OR provider_id IS DISTINCT FROM batch_provider"
        " OR posted IS NULL OR posted <> amount"
    ):
        breaches.append(
            f"settlement {row['settlement_id']}: line {row['transaction_id']} ({row['type']}, {row['amount']})"
            f" is not what the ledger posted for provider {row['batch_provider']} ({row['posted']})"
        )
    # The batch's ledger transaction moves exactly its amount onto the provider's settled account.
    for row in connection.execute(
        "SELECT * FROM (SELECT s.id, s.amount, s.transaction_id, t.type,"
        " (SELECT SUM(p.amount) FROM postings p WHERE p.transaction_id = s.transaction_id"
        "  AND p.account_id = 'settled:' || s.provider_id) AS posted"
        " FROM settlements s LEFT JOIN transactions t ON t.id = s.transaction_id) batch"
        " WHERE (transaction_id IS NULL) <> (amount = 0)"
        " OR (transaction_id IS NOT NULL"
        " AND (type IS DISTINCT FROM 'settlement' OR posted IS NULL OR posted <> amount))"
    ):
        breaches.append(
            f"settlement {row['id']}: amount {row['amount']} but its ledger transaction {row['transaction_id']}"
            f" moved {row['posted']} to settled"
        )
    for row in connection.execute(
        "SELECT t.id FROM transactions t LEFT JOIN settlements s ON s.transaction_id = t.id"
        " WHERE t.type = 'settlement' AND s.id IS NULL"
    ):
        breaches.append(f"settlement transaction {row['id']} belongs to no settlement")
    for row in connection.execute(
        "SELECT * FROM (SELECT a.id, a.balance, COALESCE((SELECT SUM(s.amount) FROM settlements s"
        " WHERE s.provider_id = a.provider_id), 0) AS settled FROM accounts a WHERE a.kind = 'settled') line"
        " WHERE balance <> settled"
    ):
        breaches.append(f"account {row['id']}: balance {row['balance']} but its settlements sum to {row['settled']}")
    for row in connection.execute(
        "SELECT * FROM (SELECT s.id, s.status, (SELECT e.status FROM settlement_events e"
        " WHERE e.settlement_id = s.id ORDER BY e.seq DESC LIMIT 1) AS last FROM settlements s) batch"
        " WHERE last IS DISTINCT FROM status"
    ):
        breaches.append(f"settlement {row['id']}: status {row['status']} but its last event says {row['last']}")
    for row in connection.execute(
        "SELECT s.id, s.status, COUNT(*) AS n FROM reconciliation_invoices r"
        " JOIN settlements s ON s.id = r.settlement_id"
        " WHERE r.outcome = 'matched' GROUP BY s.id, s.status HAVING COUNT(*) > 1 OR s.status NOT IN ('invoiced', 'paid')"
    ):
        breaches.append(f"settlement {row['id']} ({row['status']}) has {row['n']} matched invoices")
    breaches += _payment_breaches(connection)
    return breaches


def _payment_breaches(connection: Connection) -> list[str]:
    """A paid settlement was paid once: every payment but the standing one was returned, by its
    status history and by the bank entries applied to it."""
    breaches: list[str] = []
    for row in connection.execute(
        "SELECT * FROM (SELECT s.id, s.status,"
        " (SELECT COUNT(*) FROM settlement_events e WHERE e.settlement_id = s.id AND e.status = 'paid'"
        " AND e.previous_status IS DISTINCT FROM 'paid') AS paid,"
        " (SELECT COUNT(*) FROM settlement_events e WHERE e.settlement_id = s.id AND e.previous_status = 'paid'"
        " AND e.status <> 'paid') AS returned FROM settlements s) batch"
        " WHERE paid - returned <> CASE WHEN status = 'paid' THEN 1 ELSE 0 END"
    ):
        breaches.append(
            f"settlement {row['id']} ({row['status']}): paid {row['paid']} times, returned {row['returned']}"
        )
    if connection.execute(connection.dialect.table_exists, ("bank_statement_entries",)).fetchone() is None:
        return breaches
    for row in connection.execute(
        "SELECT * FROM (SELECT b.id, b.amount, b.count, COALESCE(SUM(i.amount), 0) AS summed, COUNT(i.seq) AS n"
        " FROM payment_batches b LEFT JOIN payment_batch_items i ON i.batch_id = b.id"
        " GROUP BY b.id, b.amount, b.count) batch WHERE summed <> amount OR n <> count"
    ):
        breaches.append(
            f"payment batch {row['id']}: {row['amount']} in {row['count']} transfers,"
            f" but its settlements sum to {row['summed']} in {row['n']}"
        )
    for row in connection.execute(
        "SELECT i.batch_id, i.settlement_id, i.amount, s.amount AS owed FROM payment_batch_items i"
        " JOIN settlements s ON s.id = i.settlement_id WHERE i.amount <> s.amount"
    ):
        breaches.append(
            f"payment batch {row['batch_id']}: pays settlement {row['settlement_id']} {row['amount']}, not {row['owed']}"
        )
    for row in connection.execute(
        "SELECT * FROM (SELECT s.id, s.status,"
        " (SELECT COUNT(*) FROM bank_statement_entries b WHERE b.settlement_id = s.id AND b.outcome = 'paid')"
        " AS paid, (SELECT COUNT(*) FROM bank_statement_entries b WHERE b.settlement_id = s.id"
        " AND b.outcome = 'returned') AS returned FROM settlements s) batch"
        " WHERE paid - returned NOT IN (0, 1) OR (paid - returned = 1 AND status <> 'paid')"
    ):
        breaches.append(
            f"settlement {row['id']} ({row['status']}): bank entries paid it {row['paid']} times,"
            f" returned {row['returned']}"
        )
    return breaches


STAGED_BREACHES_SHOWN = 5  # of each kind


def _staged_breaches(connection: Connection, released_through: str | None) -> list[str]:
    """One month of money at a time. A credit staged ahead of its month posts nothing: it is held
    by funding until its month's run releases it as that month's credit (a ``credits`` row of the
    same line and month). Each release posts exactly the staged amount onto its line, for the
    budget that staged it, and once a month's run has finished (``month_releases``) nothing staged
    for that month or before is left unreleased."""
    breaches: list[str] = []
    if connection.execute(connection.dialect.table_exists, ("staged_credits",)).fetchone() is None:
        return breaches  # a database from before staging
    for row in connection.execute(
        "SELECT * FROM (SELECT s.account_id, s.month, s.amount, s.budget_id AS staged_by, c.amount AS credited,"
        " c.budget_id, (SELECT SUM(p.amount) FROM postings p WHERE p.transaction_id = c.transaction_id"
        "  AND (p.account_id || '') = s.account_id) AS posted"
        " FROM staged_credits s JOIN credits c ON c.account_id = s.account_id AND c.month = s.month) released"
        " WHERE credited <> amount OR budget_id <> staged_by OR posted IS DISTINCT FROM amount"
        f" ORDER BY account_id, month LIMIT {STAGED_BREACHES_SHOWN}"
    ):
        breaches.append(
            f"staged credit {row['month']} on {row['account_id']}: staged {row['amount']} by {row['staged_by']},"
            f" released {row['credited']} by {row['budget_id']}, posted {row['posted']}"
        )
    for row in connection.execute(
        "SELECT s.account_id, s.month, s.amount FROM staged_credits s"
        " WHERE NOT EXISTS (SELECT 1 FROM credits c WHERE c.account_id = s.account_id AND c.month = s.month)"
        " AND (EXISTS (SELECT 1 FROM month_releases r WHERE r.month >= s.month) OR s.month <= ?)"
        f" ORDER BY s.account_id, s.month LIMIT {STAGED_BREACHES_SHOWN}",
        (released_through or "",),  # "": no month is due by the clock
    ):
        breaches.append(
            f"staged credit {row['month']} on {row['account_id']} ({row['amount']}) is unreleased,"
            f" though its month has begun and its run should have released it"
        )
    return breaches


def _representation_breaches(connection: Connection) -> list[str]:
    """Mandates: at most one active per representative and client, revoked after made, and each
    linking and revocation in the audit log exactly once."""
    breaches: list[str] = []
    if connection.execute(connection.dialect.table_exists, ("representations",)).fetchone() is None:
        return breaches  # a database from before representatives
    for row in connection.execute(
        "SELECT representative_id, client_id, COUNT(*) AS n FROM representations WHERE revoked_at IS NULL"
        " GROUP BY representative_id, client_id HAVING COUNT(*) > 1"
    ):
        breaches.append(
            f"representative {row['representative_id']} has {row['n']} active mandates for {row['client_id']}"
        )
    for row in connection.execute(
        "SELECT m.id FROM representations m LEFT JOIN representatives r ON r.id = m.representative_id"
        " LEFT JOIN clients c ON c.id = m.client_id"
        " WHERE r.id IS NULL OR c.id IS NULL OR (m.revoked_at IS NOT NULL AND m.revoked_at < m.created_at)"
    ):
        breaches.append(f"mandate {row['id']}: no such representative or client, or revoked before it was made")
    for row in connection.execute(
        "SELECT * FROM (SELECT m.id, m.revoked_at,"
        " (SELECT COUNT(*) FROM audit_log a WHERE a.subject = m.id AND a.action = 'representative.linked') AS linked,"
        " (SELECT COUNT(*) FROM audit_log a WHERE a.subject = m.id AND a.action = 'representative.revoked') AS revoked"
        " FROM representations m) mandate"
        " WHERE linked <> 1 OR revoked <> (CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END)"
    ):
        breaches.append(
            f"mandate {row['id']}: the audit log records its linking {row['linked']} times and its revocation"
            f" {row['revoked']} times"
        )
    return breaches


def _catalog_breaches(connection: Connection) -> list[str]:
    """Itemized charges: the charge's amount is the sum of its items', and each item's parts are its
    price (``wallet.ledger.catalog.price_item``); every service has a unit value, every offer a price."""
    breaches: list[str] = []
    if connection.execute(connection.dialect.table_exists, ("charge_items",)).fetchone() is None:
        return breaches  # a database from before the catalog
    for row in connection.execute(
        "SELECT c.id, c.amount, SUM(i.amount) AS items FROM charges c JOIN charge_items i ON i.charge_id = c.id"
        " GROUP BY c.id, c.amount HAVING SUM(i.amount) <> c.amount"
    ):
        breaches.append(f"charge {row['id']}: amount {row['amount']} but its items sum to {row['items']}")
    for row in connection.execute(
        "SELECT charge_id, position FROM charge_items WHERE amount + own_share"
        " <> (unit_price * quantity_hundredths + 50) / 100"
        " OR amount <> (CASE WHEN unit_price < unit_value THEN unit_price ELSE unit_value END"
        " * quantity_hundredths + 50) / 100"
    ):
        breaches.append(f"charge {row['charge_id']} item {row['position']}: its parts are not its price")
    for row in connection.execute(
        "SELECT s.id FROM services s WHERE NOT EXISTS (SELECT 1 FROM service_unit_values v WHERE v.service_id = s.id)"
    ):
        breaches.append(f"service {row['id']} has no unit value")
    for row in connection.execute(
        "SELECT o.id FROM offers o WHERE NOT EXISTS (SELECT 1 FROM offer_prices p WHERE p.offer_id = o.id)"
    ):
        breaches.append(f"offer {row['id']} has no price")
    return breaches


def _receipt_breaches(connection: Connection) -> list[str]:
    """SMS receipts: each is of a capture, refund or void of its own client, and every such movement
    since receipts began (the first receipt's event) has one (the trigger writes it with the event)."""
    breaches: list[str] = []
    if connection.execute(connection.dialect.table_exists, ("receipts",)).fetchone() is None:
        return breaches  # a database from before receipts
    for row in connection.execute(
        "SELECT r.event_seq FROM receipts r JOIN wallet_events e ON e.seq = r.event_seq"  # its key: never dangling
        " WHERE e.client_id <> r.client_id OR e.type NOT IN ('capture', 'refund', 'void')"
    ):
        breaches.append(f"receipt {row['event_seq']}: not of a capture, refund or void of its client")
    for row in connection.execute(
        "SELECT e.seq, e.type FROM wallet_events e WHERE e.type IN ('capture', 'refund', 'void')"
        " AND e.seq > (SELECT MIN(event_seq) FROM receipts)"
        " AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.event_seq = e.seq)"
    ):
        breaches.append(f"wallet event {row['seq']} ({row['type']}) has no receipt")
    return breaches
