"""Finance's and the organizer's view of the money: the usage report, settlements (scheduled, paid,
read), exports and invoice reconciliation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import structlog

from wallet.auth.tokens import Principal, Role
from wallet.camt import read_statement
from wallet.clock import rfc3339
from wallet.exports import ExportKind
from wallet.invoices import read_csv, read_finvoice
from wallet.ledger import usage
from wallet.ledger.bank_statements import require_account
from wallet.ledger.errors import Conflict, Forbidden, NothingToSettle
from wallet.ledger.schedule import is_settlement_day
from wallet.ledger.settlements import SettlementStatus
from wallet.pain import pain_001
from wallet.service.core import ServiceCore, provider_of
from wallet.storage.port import Idempotency, Page, Record, Written
from wallet.storage.sql.payment_batches import payment_file

log = structlog.get_logger(__name__)


class FinanceService(ServiceCore):
    """Finance's use cases, and the organizer's reports."""

    async def usage_report(self, month: str, low_use_only: bool, limit: int, before: int | None) -> Record:
        """Per client and line: the month's amount, credited, used, held and left; per provider, what
        it charged; clients using little late in the month flagged ``low_use``. The current month
        gives the figures so far. ``limit``/``before`` page the clients (newest first)."""
        period = self.month_so_far(month)
        figures = await self.storage.usage_figures(month, period.start, period.end)
        rule = usage.LowUseRule(self.settings.usage_low_use_from_day, self.settings.usage_low_use_percent)
        evaluated = rule.evaluated(period.complete, period.now.astimezone(self.settings.zone).day)
        lines = [
            usage.LineFigures(
                client_id=line["client_id"],
                category=line["category"],
                monthly_amount=line.get("monthly_amount", 0),
                credited=line.get("credited", 0),
                used=line.get("used", 0),
                held=line.get("held", 0),
                balance=line.get("balance", 0),
            )
            for line in figures["lines"]
        ]
        names = {client["id"]: client["name"] for client in figures["clients"]}
        sequence = {client["id"]: int(client["seq"]) for client in figures["clients"]}
        rows = usage.client_rows(lines, names, rule, evaluated)
        providers = usage.provider_rows(figures["providers"])
        # What was bought (items of itemized charges captured in the month): per client, per provider, in all.
        by_client = usage.bought(figures["bought"], "client_id")
        by_provider = usage.bought(figures["bought"], "provider_id")
        for row in rows:
            row["bought"] = by_client.get(row["client_id"], [])
        for provider in providers:
            provider["bought"] = by_provider.get(provider["provider_id"], [])
        selected = [row for row in rows if row["low_use"] or not low_use_only]
        if before is not None:
            selected = [row for row in selected if sequence[row["client_id"]] < before]
        page = selected[:limit]
        more = len(selected) > limit
        return {
            "month": month,
            **period.render(),
            "low_use_rule": {"from_day": rule.from_day, "percent": rule.percent, "evaluated": evaluated},
            "totals": usage.totals(rows, providers),
            "providers": providers,
            "services": usage.bought(figures["bought"]).get(None, []),
            "data": page,
            "next_cursor": sequence[page[-1]["client_id"]] if more else None,
        }

    async def settle_due(self) -> Record:
        """The organizer's automatic settlement (wallet/ledger/schedule.py): on a settlement day,
        every provider whose unsettled lines made before the day began net at least
        ``settlement_min_amount`` gets a batch of them (several when there are more than
        ``settlement_items_max``). A negative net (refunds outweighing captures) waits for the
        provider's next captures or a request of its own. Repeating it on the same day, on this
        node or another, settles nothing twice: the lines before the cut-off are closed by then.
        """
        now = self.clock.now()
        today = now.astimezone(self.settings.zone).date()
        if not is_settlement_day(today, self.settings.settlement_day_numbers):
            return {"settlement_day": False, "settlements": []}
        day_began = datetime(today.year, today.month, today.day, tzinfo=self.settings.zone)
        until = day_began - timedelta(milliseconds=1)  # times are stored to the millisecond
        made: list[Record] = []
        waiting = 0
        for provider in await self.storage.unsettled_by_provider(until):
            if provider["net"] < self.settings.settlement_min_amount or provider["net"] < 0:
                waiting += 1
                continue
            more = True
            while more:
                try:
                    written = await self.storage.settle(
                        provider["provider_id"], until, self.settings.settlement_items_max, now, None
                    )
                except NothingToSettle:  # another node (or a request) closed them first
                    break
                made.append(written.value)
                more = bool(written.value.get("more_to_settle"))
                log.info(
                    "settlement_automatic",
                    settlement_id=written.value["id"],
                    amount=written.value["amount"],
                    count=written.value["count"],
                )
        return {"settlement_day": True, "until": rfc3339(until), "settlements": made, "waiting": waiting}

    async def mark_settlement_paid(
        self, settlement_id: str, note: str | None, idempotency: Idempotency | None
    ) -> Written:
        return await self.storage.set_settlement_status(
            settlement_id, SettlementStatus.PAID, note, self.clock.now(), idempotency
        )

    async def get_settlement(
        self, principal: Principal, settlement_id: str, lines_limit: int, lines_after: int | None
    ) -> Record:
        return await self.storage.get_settlement(settlement_id, _own_provider(principal), lines_limit, lines_after)

    async def list_settlements(
        self, principal: Principal, limit: int, before: int | None, status: str | None, provider_id: str | None
    ) -> Page:
        own = _own_provider(principal)
        return await self.storage.list_settlements(own or provider_id, limit, before, status)

    def export(self, kind: ExportKind, start: datetime | None, end: datetime | None) -> AsyncIterator[list[Record]]:
        """Pages of an export's rows, each at most ``export_page_rows`` long (items: the items of that
        many captures): memory stays bounded."""
        if kind is ExportKind.TRANSACTIONS:
            return self.storage.export_transactions(start, end, self.settings.export_page_rows)
        if kind is ExportKind.ITEMS:
            return self.storage.export_items(start, end, self.settings.export_page_rows)
        return self.storage.export_settlements(start, end, self.settings.export_page_rows)

    async def reconcile(self, document: bytes, source: str, idempotency: Idempotency | None) -> Written:
        """Judge each invoice of a Finvoice 3.0 (``source="finvoice"``) or CSV document."""
        replay = await self.replay(idempotency)
        if replay is not None:
            return replay  # not even parsed again
        invoices_max = self.settings.reconciliation_invoices_max
        if source == "finvoice":
            invoices = await asyncio.to_thread(read_finvoice, document, invoices_max)
        else:
            invoices = await asyncio.to_thread(read_csv, document, invoices_max)
        written = await self.storage.reconcile(invoices, source, self.clock.now(), idempotency)
        log.info(
            "reconciliation",
            reconciliation_id=written.value["id"],
            replayed=written.replayed,
            **written.value["summary"],
        )
        return written

    async def create_payment_batch(
        self, settlement_ids: tuple[str, ...] | None, idempotency: Idempotency | None
    ) -> Written:
        """One credit transfer per settlement (default: every invoiced one owed and in no batch)."""
        settings = self.settings
        if not settings.payer_configured:
            raise Conflict(
                "no payment file without the payer's account: set WALLET_PAYER_NAME, WALLET_PAYER_IBAN and"
                " WALLET_PAYER_BIC",
                missing=[name for name in ("payer_name", "payer_iban", "payer_bic") if not getattr(settings, name)],
            )
        now = self.clock.now()
        execution_date = now.astimezone(settings.zone).date().isoformat()
        written = await self.storage.create_payment_batch(
            settlement_ids,
            (settings.payer_name, settings.payer_iban, settings.payer_bic),
            execution_date,
            settings.payment_batch_settlements_max,
            now,
            idempotency,
        )
        log.info(
            "payment_batch",
            payment_batch_id=written.value["id"],
            count=written.value["count"],
            amount=written.value["amount"],
            replayed=written.replayed,
        )
        return written

    async def cancel_payment_batch(self, batch_id: str, idempotency: Idempotency | None) -> Written:
        return await self.storage.cancel_payment_batch(batch_id, self.clock.now(), idempotency)

    async def get_payment_batch(self, batch_id: str) -> Record:
        return await self.storage.get_payment_batch(batch_id)

    async def payment_file(self, batch_id: str) -> tuple[Record, bytes]:
        """The batch's pain.001.001.09 file, from what was stored when it was made."""
        batch = await self.storage.get_payment_batch(batch_id)
        return batch, pain_001(payment_file(batch))

    async def apply_bank_statement(self, document: bytes, idempotency: Idempotency | None) -> Written:
        """Judge each entry of a camt.054 notification or camt.053 statement; apply what pays or returns."""
        replay = await self.replay(idempotency)
        if replay is not None:
            return replay  # not even parsed again
        statement = await asyncio.to_thread(read_statement, document, self.settings.bank_statement_entries_max)
        require_account(statement, self.settings.payer_iban)
        written = await self.storage.apply_bank_statement(statement, self.clock.now(), idempotency)
        log.info(
            "bank_statement",
            statement_id=written.value["id"],
            kind=written.value["kind"],
            replayed=written.replayed,
            **written.value["summary"],
        )
        return written


def _own_provider(principal: Principal) -> str | None:
    """Whose settlements a caller sees: a provider its own; finance and the organizer every one."""
    if principal.role is Role.PROVIDER:
        return provider_of(principal)
    if principal.role in (Role.FINANCE, Role.ADMIN):
        return None
    raise Forbidden("this needs a provider, finance or admin token")
