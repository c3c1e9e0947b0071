"""The organizer's use cases: categories, clients and their representatives, budgets, providers and
the monthly credit run."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import structlog

from wallet.auth.hashing import slow_hash
from wallet.auth.tokens import Principal, Role
from wallet.ids import new_id
from wallet.ledger.errors import NotFound, ValidationError
from wallet.ledger.months import next_month
from wallet.service.core import NATIONAL_ID, PHONE, ServiceCore
from wallet.shapes import requests
from wallet.storage.port import (
    Idempotency,
    NewClient,
    NewProvider,
    NewRepresentation,
    NewService,
    Page,
    Record,
    Written,
)

log = structlog.get_logger(__name__)

# Budgets a credit-run step takes: one commit each, holding the writer for it. Much smaller steps
# spend more on commits than on the work.
CREDIT_RUN_BATCH_BUDGETS = 500
PROVIDER_SECRET_BYTES = 32


class OrganizerService(ServiceCore):
    """The organizer's (admin's) use cases."""

    async def create_category(self, command: requests.NewCategory) -> Record:
        return await self.storage.create_category(command.code, command.name, self.clock.now())

    async def list_categories(self) -> list[Record]:
        return await self.storage.list_categories()

    async def create_client(self, command: requests.NewClient) -> Record:
        client = await self.storage.create_client(
            NewClient(
                command.name,
                self.hasher.keyed(PHONE, command.phone),
                self.phones.encrypt(command.phone),
                self._national_id_hash(command.national_id),
            ),
            self.clock.now(),
        )
        return self._reveal_phone(client)

    def _national_id_hash(self, national_id: str | None) -> str | None:
        return self.hasher.keyed(NATIONAL_ID, national_id) if national_id is not None else None

    def _reveal_phone(self, client: Record) -> Record:
        revealed = dict(client)
        revealed["phone"] = self.phones.decrypt(revealed.pop("phone_ciphertext"))
        return revealed

    async def get_client(self, client_id: str) -> Record:
        client = self._reveal_phone(await self.storage.get_client(client_id))
        client["identity_lockout"] = await self.storage.identity_lockout(
            "client", client_id, self.limits, self.clock.now()
        )
        return client

    async def create_representation(self, client_id: str, command: requests.NewRepresentation) -> Record:
        """Give a representative (found or made by their phone) a mandate for the client."""
        representation = NewRepresentation(
            client_id=client_id,
            scope=command.scope,
            name=command.name,
            phone_hash=self.hasher.keyed(PHONE, command.phone),
            phone_ciphertext=self.phones.encrypt(command.phone),
            national_id_hash=self._national_id_hash(command.national_id),
        )
        return self._reveal_phone(await self.storage.create_representation(representation, self.clock.now()))

    async def list_representations(self, client_id: str, limit: int, before: int | None) -> Page:
        page = await self.storage.list_representations(client_id, limit, before)
        return Page([self._reveal_phone(record) for record in page.data], page.next_cursor)

    async def revoke_representation(self, client_id: str, representation_id: str) -> Record:
        """Revoke at once: the representative's next request, even with a token already issued, is refused."""
        revoked = await self.storage.revoke_representation(client_id, representation_id, self.clock.now())
        log.info("representative_revoked", representation_id=representation_id, client_id=client_id)
        return self._reveal_phone(revoked)

    async def list_budgets(self, client_id: str, limit: int, before: int | None) -> Page:
        return await self.storage.list_budgets(client_id, limit, before)

    async def end_budget(self, client_id: str, budget_id: str, end_month: str) -> Record:
        """End a budget sooner: from the month after ``end_month`` nothing more is credited, and the
        credit run at that boundary returns what is left (``wallet.ledger.months``)."""
        return await self.storage.end_budget(client_id, budget_id, end_month, self.current_month(), self.clock.now())

    async def create_provider(self, command: requests.NewProvider) -> Record:
        provider = NewProvider(command.name, command.business_id, command.iban, command.categories)
        return await self.storage.create_provider(provider, self.clock.now())

    async def create_service(self, command: requests.NewService) -> Record:
        """A service in the catalog, its unit value in force from today."""
        service = NewService(
            command.code,
            command.category,
            command.name.fi,
            command.name.sv,
            command.name.english,
            command.unit.value,
            command.unit_value,
            self.today(),
        )
        return await self.storage.create_service(service, self.clock.now())

    async def add_unit_value(self, service_id: str, command: requests.NewUnitValue) -> Record:
        return await self.storage.add_unit_value(
            service_id, command.unit_value, command.valid_from, self.today(), self.clock.now()
        )

    async def get_service(self, service_id: str) -> Record:
        return await self.storage.get_service(service_id, self.today())

    async def list_services(self, category: str | None, limit: int, before: int | None) -> Page:
        return await self.storage.list_services(category, self.today(), limit, before)

    async def get_provider(self, provider_id: str, principal: Principal | None = None) -> Record:
        if principal is not None and principal.role is Role.PROVIDER and principal.provider_id != provider_id:
            raise NotFound("no such provider")  # another provider's record: as if it did not exist
        provider = await self.storage.get_provider(provider_id)
        provider["identity_lockout"] = await self.storage.identity_lockout(
            "provider", provider_id, self.limits, self.clock.now()
        )
        return provider

    async def set_provider_status(self, provider_id: str, status: str) -> Record:
        return await self.storage.set_provider_status(provider_id, status, self.clock.now())

    async def issue_credentials(self, provider_id: str) -> Record:
        client_id = new_id("pc")
        client_secret = secrets.token_urlsafe(PROVIDER_SECRET_BYTES)
        secret_hash = await asyncio.to_thread(slow_hash, client_secret)
        await self.storage.add_provider_credential(provider_id, client_id, secret_hash, self.clock.now())
        return {"client_id": client_id, "client_secret": client_secret, "provider_id": provider_id}

    async def credit_run(
        self,
        month: str,
        idempotency: Idempotency | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        plan_ahead: bool = False,
    ) -> Written:
        """Credit every line of every budget active in ``month`` once; idempotent per month.

        Allowed for the current month and, ahead of time, for the next: a run ahead stages the
        month's credits (not spendable); the month's own run releases them onto the wallets. The run goes in steps
        of a bounded number of budgets, each its own transaction, so a crash midway leaves whole
        steps and a rerun finishes the rest. ``plan_ahead`` (``wallet credit-run``, a process of its
        own): the storage may work the next step out while the writer writes this one.
        """
        replay = await self.replay(idempotency)
        if replay is not None:
            return replay
        current = self.current_month()
        if month not in (current, next_month(current)):
            raise ValidationError("month", f"must be the current month ({current}) or the next one")
        after, credited_now, expired_now, released_now, steps, planned = 0, 0, 0, 0, 0, 0
        while True:
            step = await self.storage.credit_run_step(
                month,
                current,
                after,
                CREDIT_RUN_BATCH_BUDGETS,
                self.clock.now(),
                plan_ahead=self.clock.now if plan_ahead else None,
            )
            credited_now += step["credited_now"]
            expired_now += step["expired_now"]
            released_now += step.get("released_now", 0)
            steps += 1
            planned += bool(step.get("planned"))
            after = step["last_budget_seq"]
            if progress is not None:
                progress(step["budgets"])
            if step["done"]:
                break
        if credited_now or expired_now or released_now:
            await self.storage.gather_statistics()  # it wrote in bulk; the charges read the budgets by client
        summary = await self.storage.credit_run_summary(month)
        result = {**summary, "credited_now": credited_now, "expired_now": expired_now, "released_now": released_now}
        log.info(
            "credit_run",
            month=month,
            credited_now=credited_now,
            expired_now=expired_now,
            released_now=released_now,
            credited=summary["credited"],
            amount=summary["amount"],
            steps=steps,
            steps_planned_ahead=planned,
        )
        if idempotency is not None:
            return await self.storage.idempotent_store(idempotency, result, self.clock.now())
        return Written(result)
