"""Decisions on budgets: granting a budget and changing one are decisions, each calculated (from
the client's plan, or lines by hand), rendered once as a PDF in Finnish or Swedish, stored with the
budget in one transaction, and announced to the client by SMS (without amounts or names).

A plan's services are priced at the catalog's unit value in force today; a service outside the
catalog at the ``unit_price`` the case worker gives. The calculation is ``wallet.ledger.plans``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from datetime import datetime

import structlog

from wallet.auth.tokens import Principal
from wallet.documents.decision import DecisionDocument, render_decision
from wallet.documents.pdf import day_name, month_name
from wallet.documents.statement import StatementDocument, render_statement
from wallet.ids import new_id
from wallet.ledger.errors import CategoryNotAllowed, ValidationError
from wallet.ledger.months import previous_month
from wallet.ledger.plans import Calculation, PlanItem, calculate, from_lines
from wallet.service.clients import ClientService, statement_of
from wallet.service.core import MonthPeriod
from wallet.shapes import requests
from wallet.storage.port import NewBudget, NewDecision, Record

log = structlog.get_logger(__name__)

DECISION_NUMBER_RANDOM_BYTES = 6  # HB-2026-XXXX-XXXX-XXXX: unique by its UNIQUE key, unguessable enough
SYSTEM_DECIDER = "system"  # who decided, where no token did (the demo, the CLI)


def decision_number(year: str) -> str:
    random = secrets.token_hex(DECISION_NUMBER_RANDOM_BYTES).upper()
    return f"HB-{year}-{random[:4]}-{random[4:8]}-{random[8:]}"


def calculation_json(calculation: Calculation) -> str:
    """The calculation as stored with the decision and answered: every figure in cents."""
    return json.dumps(render_calculation(calculation), separators=(",", ":"), sort_keys=True)


def render_calculation(calculation: Calculation) -> Record:
    from wallet.ledger.catalog import format_quantity

    return {
        "yearly_amount": calculation.yearly_amount,
        "plan": [
            {
                "service": item.service,
                "category": item.category,
                "quantity": format_quantity(item.quantity_hundredths),
                "per": item.per.value,
                "weeks_per_year": item.weeks_per_year,
                "unit_price": item.unit_price,
                "priced_from": "catalog" if item.from_catalog else "given",
                "note": item.note,
                "yearly_amount": yearly,
            }
            for item, yearly in calculation.items
        ],
        "lines": [
            {
                "category": line.category,
                "yearly_amount": line.yearly_amount,
                "monthly_amounts": list(line.monthly_amounts),
            }
            for line in calculation.lines
        ],
    }


class DecisionService(ClientService):
    """Budgets as decisions, and the decisions' documents."""

    async def _calculate(
        self, lines: tuple[tuple[str, int], ...], plan: tuple[requests.PlanItem, ...] | None, language: str
    ) -> tuple[Calculation, tuple[tuple[str, int], ...]]:
        """The calculation, and the catalog's unit values it used (checked again in the write)."""
        if plan is None:
            return from_lines(lines), ()
        prices = await self.storage.plan_prices([item.service for item in plan], self.today())
        items = []
        used: dict[str, int] = {}
        for index, given in enumerate(plan):
            priced = prices.get(given.service)
            if given.unit_price is not None:
                if priced is not None:
                    raise ValidationError(
                        f"plan[{index}].unit_price", "the service is in the catalog: it is priced at its unit value"
                    )
                assert given.category is not None  # the shape takes both or neither
                items.append(
                    PlanItem(
                        given.service,
                        given.category,
                        given.quantity_hundredths,
                        given.per,
                        given.weeks_per_year,
                        given.unit_price,
                        False,
                        None,
                        given.note,
                    )
                )
                continue
            if priced is None:
                raise CategoryNotAllowed(
                    f"no service {given.service!r} in the catalog: give its unit_price and category",
                    field=f"plan[{index}].service",
                )
            if priced["unit_value"] is None:
                raise ValidationError(f"plan[{index}].service", "has no unit value in force today")
            used[given.service] = priced["unit_value"]
            items.append(
                PlanItem(
                    given.service,
                    priced["category"],
                    given.quantity_hundredths,
                    given.per,
                    given.weeks_per_year,
                    priced["unit_value"],
                    True,
                    priced[language],
                    given.note,
                )
            )
        return calculate(items), tuple(sorted(used.items()))

    async def _decision(
        self,
        *,
        kind: str,
        client_id: str,
        budget_id: str,
        budget: Record,
        from_month: str,
        language: str,
        principal: Principal | None,
        calculation: Calculation,
        prices: tuple[tuple[str, int], ...],
    ) -> NewDecision:
        """The decision with its document rendered (off the event loop), ready to be written."""
        client = await self.storage.get_client(client_id)
        categories = {row["code"]: row["name"] for row in await self.storage.list_categories()}
        today = self.today()
        decided_by = principal.subject if principal is not None else SYSTEM_DECIDER
        number = decision_number(today[:4])
        document = DecisionDocument(
            language=language,
            organizer=self.settings.organizer_name,
            number=number,
            day=today,
            decided_by=decided_by,
            client_name=client["name"],
            kind=kind,
            start_month=budget["start_month"],
            end_month=budget["end_month"],
            from_month=from_month,
            unused=budget["unused"],
            calculation=calculation,
            category_names=categories,
            review_instructions=(
                self.settings.decision_review_fi if language == "fi" else self.settings.decision_review_sv
            ),
        )
        pdf = await asyncio.to_thread(render_decision, document)
        schedule: tuple[tuple[str, str, int], ...] = ()
        if kind == "change" or any(len(set(line.monthly_amounts)) > 1 for line in calculation.lines):
            schedule = tuple(calculation.schedule(budget["start_month"], from_month, budget["end_month"]))
        return NewDecision(
            id=new_id("de"),
            number=number,
            budget_id=budget_id,
            client_id=client_id,
            kind=kind,
            from_month=from_month,
            language=language,
            decided_by=decided_by,
            calculation=calculation_json(calculation),
            lines=tuple((line.category, min(line.monthly_amounts)) for line in calculation.lines),
            schedule=schedule,
            prices=prices,
            document=pdf,
            document_sha256=hashlib.sha256(pdf).hexdigest(),
        )

    async def create_budget(
        self, client_id: str, command: requests.NewBudget, principal: Principal | None = None
    ) -> Record:
        """Grant a budget: by lines, or calculated from the plan; a decision either way."""
        language = command.language.value
        calculation, prices = await self._calculate(command.lines, command.plan, language)
        budget_id = new_id("bu")
        shape = {"start_month": command.start_month, "end_month": command.end_month, "unused": command.unused.value}
        decision = await self._decision(
            kind="grant",
            client_id=client_id,
            budget_id=budget_id,
            budget=shape,
            from_month=command.start_month,
            language=language,
            principal=principal,
            calculation=calculation,
            prices=prices,
        )
        lines = decision.lines
        budget = NewBudget(client_id, command.start_month, command.end_month, command.unused, lines)
        granted = await self.storage.grant_budget(budget, decision, self.today(), self.clock.now())
        await self.deliver_notices(client_id)
        return _with_calculation(granted, calculation)

    async def change_budget(
        self, client_id: str, budget_id: str, command: requests.BudgetChange, principal: Principal | None = None
    ) -> Record:
        """A new decision on a budget: its lines from ``from_month`` on (never a month already credited)."""
        language = command.language.value
        budget = await self.storage.get_budget(client_id, budget_id)
        calculation, prices = await self._calculate(command.lines, command.plan, language)
        decision = await self._decision(
            kind="change",
            client_id=client_id,
            budget_id=budget_id,
            budget=budget,
            from_month=command.from_month,
            language=language,
            principal=principal,
            calculation=calculation,
            prices=prices,
        )
        changed = await self.storage.change_budget(decision, self.current_month(), self.today(), self.clock.now())
        await self.deliver_notices(client_id)
        return _with_calculation(changed, calculation)

    async def deliver_notices(self, client_id: str | None = None) -> int:
        """Send the notices owed (a new decision, a month's statement) by SMS and mark them sent, a
        bounded round (``notices_batch_max``); only ``client_id``'s right after its decision. A notice
        that fails to send stays unsent: the sweep tries it again (the page shows it meanwhile)."""
        owed = await self.storage.unsent_notices(0, self.settings.notices_batch_max, client_id)
        sent: list[int] = []
        for notice in owed:
            try:
                await self.sms.send(self.phones.decrypt(notice["phone_ciphertext"]), self._notice_text(notice))
            except Exception as error:  # the operator's gateway: kept unsent, tried again next round
                log.warning(
                    "notice_not_sent", client_id=notice["client_id"], kind=notice["kind"], error=type(error).__name__
                )
                continue  # the others may go: one bad notice never holds them up
            sent.append(notice["seq"])
        if sent:
            await self.storage.mark_notices_sent(sent, self.clock.now())
        return len(sent)

    def _notice_text(self, notice: Record) -> str:
        fi = notice["language"] == "fi"
        if notice["kind"] == "decision":
            return self.settings.decision_notice_fi if fi else self.settings.decision_notice_sv
        text = self.settings.statement_notice_fi if fi else self.settings.statement_notice_sv
        return text.replace("{month}", month_name(notice["subject"]))

    async def queue_statement_notices(self) -> int:
        """At a month's start: a notice to every client who had a budget last month that its
        statement is ready (once each, however often this runs)."""
        month = previous_month(self.current_month())
        queued = await self.storage.queue_statement_notices(month, self.clock.now())
        if queued:
            log.info("statement_notices_queued", month=month, count=queued)
        while await self.store_statement_documents(month) == self.settings.notices_batch_max:
            pass  # each round stores what is still unstored: this ends when none is left
        return queued

    async def send_notices(self) -> int:
        """The sweep: statement notices queued for last month, then every notice owed, in rounds."""
        await self.queue_statement_notices()
        total = 0
        while True:
            sent = await self.deliver_notices()
            total += sent
            if sent < self.settings.notices_batch_max:
                return total

    async def statement_document(self, principal: Principal, month: str, language: str) -> tuple[bytes, str | None]:
        """The month's statement as a PDF and, for a closed month, its SHA-256: a closed month's is
        stored the first time it is asked for and served as stored afterwards, whatever the ledger
        says later; the open month's is rendered on each request and never stored."""
        period = self.month_so_far(month)
        client_id = await self._wallet_of(principal)
        if month == self.current_month():
            return await self._render_statement(client_id, month, language, period), None
        return await self._closed_statement(client_id, month, language)

    async def _closed_statement(self, client_id: str, month: str, language: str) -> tuple[bytes, str]:
        """A closed month's statement as stored, storing it first if it is not yet (a racing
        request's stored one wins: both answer the same bytes)."""
        stored = await self.storage.statement_document(client_id, month, language)
        if stored is not None:
            return stored[1], stored[0]["document_sha256"]
        document = await self._render_statement(client_id, month, language, self.month_so_far(month))
        kept = await self.storage.store_statement_document(client_id, month, language, document, self.clock.now())
        if kept["document_sha256"] == hashlib.sha256(document).hexdigest():
            return document, kept["document_sha256"]
        stored = await self.storage.statement_document(client_id, month, language)
        assert stored is not None  # stored by the racing request, append-only
        return stored[1], stored[0]["document_sha256"]

    async def store_statement_documents(self, month: str) -> int:
        """The sweep: each statement notice's document for ``month`` (closed), in the notice's
        language, stored before the notice goes out; a bounded round (``notices_batch_max``)."""
        stored = 0
        for owed in await self.storage.statements_to_store(month, self.settings.notices_batch_max):
            await self._closed_statement(owed["client_id"], month, owed["language"])
            stored += 1
        return stored

    async def _render_statement(self, client_id: str, month: str, language: str, period: MonthPeriod) -> bytes:
        """The month's statement as a PDF: the very figures ``statement`` answers, read in one snapshot
        with each charge and refund behind them."""
        read = await self.storage.statement_with_rows(
            client_id, period.start, period.end, self.settings.statement_document_rows_max
        )
        client = await self.storage.get_client(client_id)
        categories = {row["code"]: row["name"] for row in await self.storage.list_categories()}
        zone = self.settings.zone
        document = StatementDocument(
            language=language,
            organizer=self.settings.organizer_name,
            client_name=client["name"],
            statement=statement_of(month, period, read),
            rows=read["rows"],
            truncated=read["truncated"],
            category_names=categories,
            local_days={
                row["created_at"]: day_name(
                    datetime.fromisoformat(row["created_at"]).astimezone(zone).date().isoformat()
                )
                for row in read["rows"]
            },
        )
        return await asyncio.to_thread(render_statement, document)

    async def budget_decision(self, client_id: str, budget_id: str) -> tuple[Record, bytes]:
        """A budget's latest decision and its document as issued."""
        return await self.storage.decision_document(client_id, None, budget_id)

    async def my_decisions(self, principal: Principal) -> list[Record]:
        return await self.storage.client_decisions(await self._wallet_of(principal))

    async def my_decision(self, principal: Principal, decision_id: str) -> tuple[Record, bytes]:
        return await self.storage.decision_document(await self._wallet_of(principal), decision_id, None)


def _with_calculation(budget: Record, calculation: Calculation) -> Record:
    """The budget as answered: from a plan, each line with its yearly amount and twelve monthly
    amounts (index 0 is the budget's first month), the plan's items costed, the yearly sum."""
    rendered = render_calculation(calculation)
    calculated = {line["category"]: line for line in rendered["lines"]}
    lines = budget["lines"]
    if calculation.items:  # lines by hand are answered as they were given
        lines = [{**line, **calculated.get(line["category"], {})} for line in lines]
    return {**budget, "lines": lines, "yearly_amount": rendered["yearly_amount"], "plan": rendered["plan"]}
