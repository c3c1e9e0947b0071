"""The reads of the storage port, written once for both databases.

Each reads one committed snapshot: ``_read()`` gives a reader (``reading.Reader``) for several
statements, ``_read_statement`` answers one statement by itself. The adapters supply both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from wallet.clock import rfc3339
from wallet.ledger.errors import NotFound
from wallet.ledger.months import previous_month
from wallet.storage.port import (
    Idempotency,
    Limits,
    OfferFilter,
    Page,
    Record,
    Written,
)
from wallet.storage.sql import (
    catalog,
    charges,
    events,
    exports,
    itemized,
    payment_batches,
    render,
    representatives,
    settlements,
    statement_rows,
    statements,
    usage,
)
from wallet.storage.sql.connection import Row
from wallet.storage.sql.idempotency import REPLAY_SQL, replay_outcome
from wallet.storage.sql.reading import Reader


class SqlReads:
    def _read(self, *, scan: bool = False) -> AbstractAsyncContextManager[Reader]:
        """A reader for one consistent snapshot (``scan``: a long read, kept off the event loop)."""
        raise NotImplementedError

    async def _read_statement(self, sql: str, parameters: tuple[Any, ...]) -> list[Row]:
        """The rows of one statement, one snapshot by itself."""
        async with self._read() as reader:
            return list(await reader.execute_fetchall(sql, parameters))

    async def list_categories(self) -> list[Record]:
        async with self._read() as reader:
            rows = await reader.execute_fetchall("SELECT code, name, created_at FROM categories ORDER BY code")
        return [dict(row) for row in rows]

    async def get_service(self, service_id: str, today: str) -> Record:
        async with self._read() as reader:
            return await catalog.get_service(reader, service_id, today)

    async def list_services(self, category: str | None, today: str, limit: int, before: int | None) -> Page:
        async with self._read() as reader:
            return Page(*await catalog.list_services(reader, category, today, limit, before))

    async def list_provider_offers(self, provider_id: str, limit: int, before: int | None) -> Page:
        async with self._read() as reader:
            return Page(*await catalog.list_provider_offers(reader, provider_id, limit, before))

    async def compare_offers(
        self, offer_filter: OfferFilter, today: str, limit: int, after: tuple[int, int, int] | None
    ) -> tuple[list[Record], tuple[int, int, int] | None]:
        async with self._read() as reader:  # one snapshot: the offers, their prices and places agree
            return await catalog.compare_offers(reader, offer_filter, today, limit, after)

    async def get_client(self, client_id: str) -> Record:
        async with self._read() as reader:
            rows = list(await reader.execute_fetchall("SELECT * FROM clients WHERE id = ?", (client_id,)))
        if not rows:
            raise NotFound("no such client")
        return render.client(rows[0])

    async def identity_lockout(self, kind: str, owner_id: str, limits: Limits, now: datetime) -> Record:
        """A wallet's (``client``) or a provider's (``provider``) identity-check lockout."""
        column, maximum = {
            "client": ("client_id", limits.identity_failures_max),
            "provider": ("provider_id", limits.provider_identity_failures_max),
        }[kind]
        window = timedelta(seconds=limits.identity_failures_window_seconds)
        since = rfc3339(now - window)
        async with self._read() as reader:
            count_rows = await reader.execute_fetchall(charges.LOCKOUT_COUNT_SQL[column], (owner_id, since))
            failures = list(count_rows)[0][0]
            nth = None
            if failures >= maximum:
                nth_rows = await reader.execute_fetchall(
                    charges.LOCKOUT_NTH_SQL[column], (owner_id, since, failures - maximum)
                )
                nth = list(nth_rows)[0][0]
        return charges.lockout_record(failures, maximum, nth, window)

    async def list_budgets(self, client_id: str, limit: int, before: int | None) -> Page:
        async with self._read() as reader:
            if not list(await reader.execute_fetchall("SELECT 1 FROM clients WHERE id = ?", (client_id,))):
                raise NotFound("no such client")
            rows = list(
                await reader.execute_fetchall(
                    "SELECT * FROM budgets WHERE client_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                    (client_id, before if before is not None else 2**63 - 1, limit + 1),
                )
            )
            budgets = []
            for row in rows[:limit]:
                lines = await reader.execute_fetchall(
                    "SELECT category, monthly_amount FROM budget_lines WHERE budget_id = ? ORDER BY category",
                    (row["id"],),
                )
                budgets.append(render.budget(row, [dict(line) for line in lines]))
        return Page(budgets, rows[limit - 1]["seq"] if len(rows) > limit else None)

    async def get_provider(self, provider_id: str) -> Record:
        async with self._read() as reader:
            rows = list(await reader.execute_fetchall("SELECT * FROM providers WHERE id = ?", (provider_id,)))
            if not rows:
                raise NotFound("no such provider")
            categories = await reader.execute_fetchall(
                "SELECT category FROM provider_categories WHERE provider_id = ? ORDER BY category", (provider_id,)
            )
        return render.provider(rows[0], [row["category"] for row in categories])

    async def get_provider_credential(self, client_id: str) -> Record | None:
        async with self._read() as reader:
            rows = list(
                await reader.execute_fetchall(
                    "SELECT c.client_id, c.provider_id, c.secret_hash, p.status FROM provider_credentials c"
                    " JOIN providers p ON p.id = c.provider_id WHERE c.client_id = ?",
                    (client_id,),
                )
            )
        return dict(rows[0]) if rows else None

    async def credit_run_budgets(self, month: str) -> int:
        async with self._read() as reader:
            rows = list(
                await reader.execute_fetchall(
                    "SELECT COUNT(*) FROM budgets WHERE start_month <= ? AND end_month >= ?",
                    (month, previous_month(month)),
                )
            )
        return int(rows[0][0])

    async def credit_run_summary(self, month: str) -> Record:
        async with self._read() as reader:
            rows = list(
                await reader.execute_fetchall(
                    _CREDIT_RUN_SUMMARY_SQL,
                    (month, month),
                )
            )
        return {"month": month, "credited": rows[0]["credited"], "amount": rows[0]["amount"]}

    async def idempotent_lookup(self, idempotency: Idempotency) -> Written | None:
        async with self._read() as reader:
            rows = list(
                await reader.execute_fetchall(
                    REPLAY_SQL,
                    (idempotency.scope, idempotency.key),
                )
            )
        if not rows:
            return None
        outcome = replay_outcome(rows[0], idempotency)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def get_charge(self, provider_id: str, charge_id: str) -> Record:
        async with self._read() as reader:
            rows = list(
                await reader.execute_fetchall(
                    "SELECT * FROM charges WHERE id = ? AND provider_id = ?", (charge_id, provider_id)
                )
            )
            if not rows:
                raise NotFound("no such charge")
            found = await itemized.items_of(reader, [charge_id])
        return _with_items([render.charge(rows[0])], found)[0]

    async def list_charges(self, provider_id: str, limit: int, before: int | None, status: str | None) -> Page:
        query = "SELECT * FROM charges WHERE provider_id = ? AND seq < ?"
        return await self._charges_page(query, "status", "seq", provider_id, limit, before, status, render.charge)

    async def _charges_page(
        self,
        query: str,
        status_column: str,
        seq_column: str,
        owner: str,
        limit: int,
        before: int | None,
        status: str | None,
        render_row: Callable[[Row], Record],
    ) -> Page:
        """A page of ``query`` (its parameters: the owner, then the cursor), newest first, of one
        status or of all."""
        parameters: list[object] = [owner, before if before is not None else 2**62]
        if status is not None:
            query += f" AND {status_column} = ?"
            parameters.append(status)
        parameters.append(limit + 1)
        async with self._read() as reader:
            rows = list(await reader.execute_fetchall(f"{query} ORDER BY {seq_column} DESC LIMIT ?", parameters))
            page = _page(rows, limit, render_row)
            found = await itemized.items_of(reader, [record["id"] for record in page.data])
        return Page(_with_items(page.data, found), page.next_cursor)

    async def get_wallet(self, client_id: str, month: str) -> Record:
        # One statement, so one snapshot: the wallet's accounts, its budget lines of the month, and
        # the stream position this wallet state stands at (part 0, 1 and 2).
        rows = await self._read_statement(_WALLET_SQL, (client_id, client_id, month, month, client_id, client_id))
        return wallet_from_rows(client_id, rows)

    async def list_wallet_events(self, client_id: str, after: int, limit: int) -> list[Record]:
        async with self._read() as reader:
            return await events.read_after(reader, client_id, after, limit)

    async def list_client_charges(self, client_id: str, limit: int, before: int | None, status: str | None) -> Page:
        return await self._charges_page(
            CLIENT_CHARGES_SQL, "c.status", "e.seq", client_id, limit, before, status, render.client_charge
        )

    async def statement_figures(self, client_id: str, start: datetime, until: datetime) -> Record:
        async with self._read() as reader:  # one snapshot: the balances and movements agree
            return await statements.figures(reader, client_id, rfc3339(start), rfc3339(until))

    async def statement_with_rows(self, client_id: str, start: datetime, until: datetime, rows_max: int) -> Record:
        """``statement_figures`` with each charge and refund behind them, in the same snapshot."""
        async with self._read() as reader:
            return await statement_rows.figures_and_rows(reader, client_id, rfc3339(start), rfc3339(until), rows_max)

    async def list_transactions(self, client_id: str, limit: int, before: int | None) -> Page:
        async with self._read() as reader:
            parameters = (client_id, before if before is not None else 2**62, limit + 1)
            rows = list(await reader.execute_fetchall(HISTORY_SQL, parameters))
            # A capture of an itemized charge carries its items and own share, from the same snapshot.
            captures = [row["charge_id"] for row in rows[:limit] if row["type"] == "capture" and row["charge_id"]]
            found = await itemized.items_of(reader, captures)

        def item(row: Row) -> Record:
            record = {key: row[key] for key in row.keys() if key != "seq"}
            if record["provider_name"] is None:
                del record["provider_name"], record["provider_id"]
            if record["type"] == "capture" and record["charge_id"] in found:
                record["own_share"], record["items"] = found[record["charge_id"]]
            return record

        return _page(rows, limit, item)

    async def list_representations(self, client_id: str, limit: int, before: int | None) -> Page:
        async with self._read() as reader:
            if not list(await reader.execute_fetchall("SELECT 1 FROM clients WHERE id = ?", (client_id,))):
                raise NotFound("no such client")
            rows, _ = await representatives.list_page(reader, client_id, limit, before)
        return _page(rows, limit, representatives.render)

    async def active_mandate(self, representative_id: str, client_id: str) -> Record | None:
        async with self._read() as reader:
            rows = list(
                await reader.execute_fetchall(representatives.ACTIVE_MANDATE_SQL, (representative_id, client_id))
            )
        return dict(rows[0]) if rows else None

    async def list_mandates(self, representative_id: str) -> list[Record]:
        async with self._read() as reader:
            rows = await reader.execute_fetchall(representatives.MANDATES_SQL, (representative_id,))
        return [dict(row) for row in rows]

    async def usage_figures(self, month: str, start: datetime, end: datetime) -> Record:
        async with self._read() as reader:  # one snapshot: every figure of the report agrees
            return await usage.figures(reader, month, rfc3339(start), rfc3339(end))

    async def unsettled_by_provider(self, until: datetime) -> list[Record]:
        async with self._read(scan=True) as reader:  # one snapshot; may scan many lines
            return await settlements.unsettled_by_provider(reader, rfc3339(until))

    async def get_settlement(
        self, settlement_id: str, provider_id: str | None, lines_limit: int, lines_after: int | None
    ) -> Record:
        async with self._read() as reader:
            return await settlements.get(reader, settlement_id, provider_id, lines_limit, lines_after)

    async def get_payment_batch(self, batch_id: str) -> Record:
        async with self._read() as reader:
            return await payment_batches.get(reader, batch_id)

    async def list_settlements(
        self, provider_id: str | None, limit: int, before: int | None, status: str | None
    ) -> Page:
        async with self._read() as reader:
            return await settlements.list_page(reader, provider_id, limit, before, status)

    def export_transactions(
        self, start: datetime | None, end: datetime | None, page_rows: int
    ) -> AsyncIterator[list[Record]]:
        return self._export("transactions", exports.transactions_page, start, end, page_rows)

    def export_settlements(
        self, start: datetime | None, end: datetime | None, page_rows: int
    ) -> AsyncIterator[list[Record]]:
        return self._export("settlements", exports.settlements_page, start, end, page_rows)

    async def export_items(
        self, start: datetime | None, end: datetime | None, page_rows: int
    ) -> AsyncIterator[list[Record]]:
        """The items of the itemized charges captured in [start, end): a page is the items of up to
        ``page_rows`` captures (each at most ``MAX_CHARGE_ITEMS``), under the same ceiling as the
        transactions export, so both files are the ledger at one moment when started together."""
        async with self._read(scan=True) as reader:
            top = await exports.ceiling(reader, "transactions")
        after: exports.Keyset = (exports.EARLIEST, 0)
        start_at, end_at = (rfc3339(start) if start else None), (rfc3339(end) if end else None)
        while True:
            async with self._read(scan=True) as reader:
                page, after, captures = await exports.items_page(reader, start_at, end_at, top, after, page_rows)
            yield page
            if captures < page_rows:
                return

    async def _export(
        self, table: str, read_page: exports.PageReader, start: datetime | None, end: datetime | None, page_rows: int
    ) -> AsyncIterator[list[Record]]:
        async with self._read(scan=True) as reader:
            top = await exports.ceiling(reader, table)
        after: exports.Keyset = (exports.EARLIEST, 0)
        start_at, end_at = (rfc3339(start) if start else None), (rfc3339(end) if end else None)
        while True:
            async with self._read(scan=True) as reader:  # one short read a page: no reader is held between them
                page, after = await read_page(reader, start_at, end_at, top, after, page_rows)
            yield page
            if len(page) < page_rows:
                return


_NO_POSITION = object()


def wallet_from_rows(client_id: str, rows: Sequence[Row]) -> Record:
    """``GET /v1/me/wallet``'s record from the rows of _WALLET_SQL, in one pass over them: a line per
    category with an account or a budget line this month, in the order of their codes."""
    accounts: dict[str, tuple[int, int]] = {}
    monthly: dict[str, int] = {}
    upcoming: dict[str, list[Record]] = {}  # by category: credits staged ahead, not yet released
    last_event: object = _NO_POSITION
    for part, category, amount, held in rows:  # in one pass: a read of a wallet is a hot path
        if part == 0:
            accounts[category] = (amount, held)
        elif part == 1:
            monthly[category] = amount
        elif part == 3:  # "YYYY-MM" then the category (see _WALLET_SQL)
            upcoming.setdefault(category[7:], []).append({"month": category[:7], "amount": amount})
        else:
            last_event = amount
    if last_event is _NO_POSITION:
        raise RuntimeError("the wallet read gave no stream position")  # its part 2 is always one row
    lines: list[Record] = []
    total_balance = total_held = 0
    upcoming_by_month: dict[str, int] = {}
    for category in sorted(accounts.keys() | monthly.keys() | upcoming.keys()):
        balance, held = accounts.get(category, (0, 0))
        total_balance += balance
        total_held += held
        lines.append(
            {
                "category": category,
                "balance": balance,
                "held": held,
                "available": balance - held,
                "monthly_amount": monthly.get(category, 0),
                "upcoming": sorted(upcoming.get(category, ()), key=lambda item: str(item["month"])),
            }
        )
        for item in upcoming.get(category, ()):
            upcoming_by_month[item["month"]] = upcoming_by_month.get(item["month"], 0) + item["amount"]
    return {
        "client_id": client_id,
        "balance": total_balance,
        "held": total_held,
        "available": total_balance - total_held,
        "lines": lines,
        "upcoming": [{"month": month, "amount": upcoming_by_month[month]} for month in sorted(upcoming_by_month)],
        "last_event_id": str(last_event),
    }


# A month's credits in all: posted ones, and those staged ahead and not yet released (a staged
# credit, once released, is a ``credits`` row of the same line and month).
_CREDIT_RUN_SUMMARY_SQL = (
    "SELECT COUNT(*) AS credited, COALESCE(SUM(amount), 0) AS amount FROM ("
    "SELECT amount FROM credits WHERE month = ?"
    " UNION ALL SELECT s.amount FROM staged_credits s WHERE s.month = ? AND NOT EXISTS"
    " (SELECT 1 FROM credits c WHERE c.account_id = s.account_id AND c.month = s.month)) month_credits"
)


# GET /v1/me/wallet in one statement (see get_wallet): each part's rows as its own query would
# give them, tagged with the part.
# Part 3: credits staged ahead of their month and not yet released (not spendable), the month and
# the category in one text column ("2027-02home_care": a month is 7 characters).
# Parameters: client, client, month, month, client, client.
_WALLET_SQL = (
    "SELECT 0, category, balance, held FROM accounts WHERE client_id = ? AND kind = 'wallet'"
    " UNION ALL"
    " SELECT 1, l.category, l.monthly_amount, NULL FROM budgets b JOIN budget_lines l ON l.budget_id = b.id"
    " WHERE b.client_id = ? AND b.start_month <= ? AND b.end_month >= ?"
    f" UNION ALL SELECT 2, NULL, ({events.LAST_SEQ_OF_CLIENT_SQL}), NULL"
    " UNION ALL SELECT 3, s.month || a.category, s.amount, NULL FROM staged_credits s"
    " JOIN accounts a ON a.id = s.account_id WHERE a.client_id = ? AND a.kind = 'wallet' AND NOT EXISTS"
    " (SELECT 1 FROM credits c WHERE c.account_id = s.account_id AND c.month = s.month)"
)


# A client's history, newest first: one item per posting on one of its wallet lines, read from the
# wallet events (one per such posting; ``wallet check`` proves them equal) by ``wallet_events_by_client``.
# The events' ``seq`` is the cursor. Holds and voids move no money: no transaction, not history.
HISTORY_SQL = (
    "SELECT e.seq, t.id, t.type, t.created_at, t.category, t.charge_id, t.refund_id,"
    " e.amount, e.line_balance AS balance_after, pr.name AS provider_name, t.provider_id"
    " FROM wallet_events e"
    " JOIN transactions t ON t.id = e.transaction_id"
    " LEFT JOIN providers pr ON pr.id = t.provider_id"
    " WHERE e.client_id = ? AND e.seq < ? AND e.transaction_id IS NOT NULL ORDER BY e.seq DESC LIMIT ?"
)


# A client's charges, newest first, found by the wallet event each charge is made with
# (``events.MAKES_CHARGE_SQL``). The event's ``seq`` is the cursor; the charge's own columns by name
# (``seq`` is the event's, for ``_page``).
CLIENT_CHARGES_SQL = (
    "SELECT e.seq, c.id, c.status, c.amount, c.category, c.method, c.description, c.created_at, c.expires_at,"
    " c.captured_at, c.voided_at, c.void_reason, c.refunded_amount, c.provider_id, p.name AS provider_name"
    " FROM wallet_events e"
    " JOIN charges c ON c.id = e.charge_id"
    " JOIN providers p ON p.id = c.provider_id"
    f" WHERE e.client_id = ? AND e.seq < ? AND e.charge_id IS NOT NULL AND {events.MAKES_CHARGE_SQL}"
)


def _with_items(records: list[Record], found: dict[str, tuple[int, list[Record]]]) -> list[Record]:
    """Charges with their own share and items, where they are itemized."""
    for record in records:
        if record["id"] in found:
            record["own_share"], record["items"] = found[record["id"]]
    return records


def _page(rows: list[Row], limit: int, render_row: Callable[[Row], Record]) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([render_row(row) for row in rows], rows[-1]["seq"] if more else None)
