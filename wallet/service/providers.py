"""A provider's use cases: its token, charges (with their identity checks), confirming, voiding and
refunding them, and settling what it has charged."""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from datetime import datetime, timedelta

import structlog

from wallet import logs
from wallet.auth.hashing import six_digit_code, slow_hash, verify_slow_hash
from wallet.auth.tokens import Principal, Role
from wallet.clock import month_of
from wallet.ledger.charges import IdentityMethod
from wallet.ledger.errors import Forbidden, NotFound, RateLimited, Unauthorized, ValidationError
from wallet.ledger.money import format_euros
from wallet.ledger.parties import ProviderStatus
from wallet.service.core import NATIONAL_ID, OTP, PHONE, IssuedToken, ServiceCore, provider_of
from wallet.shapes import requests
from wallet.storage.port import (
    ChargeCommand,
    ChargeItemCommand,
    Idempotency,
    NewOffer,
    OfferChange,
    Page,
    Record,
    Written,
)

log = structlog.get_logger(__name__)


class ProviderService(ServiceCore):
    """A provider's use cases; charges and settlements act only for the provider its token names."""

    @staticmethod
    def _acting_for(principal: Principal, provider_id: str) -> str:
        """Offers are the provider's own, or the organizer's on its behalf; another provider's are as if
        they did not exist (404), as with ``GET /v1/providers/{id}``."""
        if principal.role is Role.PROVIDER and principal.provider_id != provider_id:
            raise NotFound("no such provider")
        return provider_id

    async def create_offer(self, principal: Principal, provider_id: str, command: requests.NewOffer) -> Record:
        offer = NewOffer(
            self._acting_for(principal, provider_id),
            command.service,
            command.unit_price,
            command.description,
            command.municipalities,
            command.languages,
            command.address,
        )
        return await self.storage.create_offer(offer, self.clock.now())

    async def change_offer(
        self, principal: Principal, provider_id: str, offer_id: str, command: requests.OfferChange
    ) -> Record:
        change = OfferChange(
            command.unit_price, command.description, command.municipalities, command.languages, command.address
        )
        return await self.storage.change_offer(
            self._acting_for(principal, provider_id), offer_id, change, self.clock.now()
        )

    async def withdraw_offer(self, principal: Principal, provider_id: str, offer_id: str) -> Record:
        return await self.storage.withdraw_offer(self._acting_for(principal, provider_id), offer_id, self.clock.now())

    async def list_provider_offers(
        self, principal: Principal, provider_id: str, limit: int, before: int | None
    ) -> Page:
        return await self.storage.list_provider_offers(self._acting_for(principal, provider_id), limit, before)

    async def token_for_credentials(self, client_id: str, client_secret: str) -> IssuedToken:
        credential = await self.storage.get_provider_credential(client_id)
        # Hash even when the client id is unknown, so timing does not tell which ids exist.
        stored = credential["secret_hash"] if credential else _dummy_hash()
        valid = await asyncio.to_thread(verify_slow_hash, client_secret, stored)
        if credential is None or not valid:
            raise Unauthorized("invalid client credentials", error="invalid_client")
        if credential["status"] == ProviderStatus.SUSPENDED:
            raise Forbidden("the provider is suspended", error="unauthorized_client")
        return self.mint(Role.PROVIDER, provider_id=credential["provider_id"])

    async def charge(
        self, principal: Principal, command: requests.NewCharge, idempotency: Idempotency | None
    ) -> Written:
        provider_id = provider_of(principal)
        now = self.clock.now()
        try:
            self.charge_throttle.take(provider_id, now.timestamp())
        except RateLimited:
            # A replay answers its first response even in a storm: it costs nothing to repeat.
            replay = await self.replay(idempotency)
            if replay is None:
                raise
            return replay
        if command.items is None and not self.settings.plain_amount_charges:
            raise ValidationError("items", "are required: the organizer takes only itemized charges")
        code = national_id_hash = otp_hash = expires_at = None
        if command.method is IdentityMethod.NATIONAL_ID:
            national_id_hash = self.hasher.keyed(NATIONAL_ID, command.national_id or "")
        elif command.method is IdentityMethod.APP:
            # Held until the client answers in the app (the hold appears on its event stream).
            expires_at = now + timedelta(seconds=self.settings.approval_ttl_seconds)
        else:
            code = six_digit_code()
            expires_at = now + timedelta(seconds=self.settings.otp_ttl_seconds)
            otp_hash = self.hasher.keyed(OTP, code)
        charge_command = ChargeCommand(
            provider_id=provider_id,
            phone_hash=self.hasher.keyed(PHONE, command.phone),
            amount=command.amount or 0,  # itemized: the items' sum, worked out in the transaction
            category=command.category or "",  # itemized: the items' category
            description=command.description,
            method=command.method,
            national_id_hash=national_id_hash,
            otp_hash=otp_hash,
            otp_expires_at=expires_at,
        )
        month = month_of(now, self.settings.zone)
        if command.items is None:
            written = await self.storage.charge(charge_command, self.limits, now, month, idempotency)
        else:
            items = tuple(
                ChargeItemCommand(item.service, item.quantity_hundredths, item.service_date) for item in command.items
            )
            written = await self.storage.itemized_charge(
                charge_command, items, self.limits, now, month, self.today(), idempotency
            )
        if code is not None and not written.replayed and "amount" in written.value:
            await self._send_code(command.phone, code, written.value["amount"])
        if logs.enabled(logging.INFO):
            log.info(
                "charge",
                charge_id=written.value.get("id"),
                status=written.value.get("status"),
                amount=written.value.get("amount"),
                category=written.value.get("category"),
                items=None if command.items is None else len(command.items),
                replayed=written.replayed,
            )
        return written

    async def _send_code(self, phone: str, code: str, amount: int) -> None:
        minutes = max(self.settings.otp_ttl_seconds // 60, 1)
        text = (
            f"Henkilökohtainen budjetti: vahvistuskoodi {code}. Veloitus {format_euros(amount)}. "
            f"Koodi on voimassa {minutes} min. Älä kerro koodia puhelimessa."
        )
        await self.sms.send(phone, text)

    async def confirm_charge(
        self, principal: Principal, charge_id: str, code: str, idempotency: Idempotency | None
    ) -> Written:
        return await self.storage.confirm_charge(
            provider_of(principal), charge_id, self.hasher.keyed(OTP, code), self.limits, self.clock.now(), idempotency
        )

    async def void_charge(self, principal: Principal, charge_id: str, idempotency: Idempotency | None) -> Written:
        return await self.storage.void_charge(provider_of(principal), charge_id, self.clock.now(), idempotency)

    async def refund(
        self, principal: Principal, charge_id: str, amount: int, idempotency: Idempotency | None
    ) -> Written:
        return await self.storage.refund(provider_of(principal), charge_id, amount, self.clock.now(), idempotency)

    async def get_charge(self, principal: Principal, charge_id: str) -> Record:
        return await self.storage.get_charge(provider_of(principal), charge_id)

    async def list_charges(self, principal: Principal, limit: int, before: int | None, status: str | None) -> Page:
        return await self.storage.list_charges(provider_of(principal), limit, before, status)

    async def settle(self, principal: Principal, until: datetime | None, idempotency: Idempotency | None) -> Written:
        """Close the provider's unsettled captures and refunds up to ``until`` (default now) into a batch."""
        provider_id = provider_of(principal)
        now = self.clock.now()
        if until is not None and until > now:
            raise ValidationError("until", "must not be in the future")
        written = await self.storage.settle(
            provider_id, until or now, self.settings.settlement_items_max, now, idempotency
        )
        log.info(
            "settlement",
            settlement_id=written.value["id"],
            amount=written.value["amount"],
            count=written.value["count"],
            replayed=written.replayed,
        )
        return written


@functools.cache
def _dummy_hash() -> str:
    return slow_hash(secrets.token_urlsafe(16))
