"""A client's use cases, or its representative's: logging in, the wallet and its transactions, answering
charges, mandates, statements and the live event stream."""

from __future__ import annotations

from datetime import timedelta

import structlog

from wallet.auth.hashing import six_digit_code
from wallet.auth.tokens import Principal, Role
from wallet.clock import month_bounds, rfc3339
from wallet.events import EventSubscription
from wallet.ledger import catalog, statements
from wallet.ledger.errors import Forbidden, ValidationError
from wallet.ledger.parties import RepresentationScope
from wallet.service.core import LOGIN_CODE, PHONE, IssuedToken, MonthPeriod, ServiceCore
from wallet.storage.port import Idempotency, OfferFilter, Page, Record, Written

log = structlog.get_logger(__name__)

# Mandate scopes: view reads the wallet; manage also approves and declines charges.
VIEW = RepresentationScope.VIEW
MANAGE = RepresentationScope.MANAGE


class ClientService(ServiceCore):
    """A client's use cases, or a representative's acting for one under an active mandate."""

    async def compare_offers(
        self, principal: Principal, offer_filter: OfferFilter, limit: int, after: tuple[int, int, int] | None
    ) -> tuple[list[Record], tuple[int, int, int] | None]:
        """Offers to compare: approved providers' only, the smallest own share first. Asked by a client,
        or by a representative acting for one now, each offer also says how many whole units the
        client's line of its category still pays for this month (``units_left``)."""
        data, last = await self.storage.compare_offers(offer_filter, self.today(), limit, after)
        client_id = await self._comparing_for(principal)
        if client_id is not None and data:
            wallet = await self.storage.get_wallet(client_id, self.current_month())
            available = {line["category"]: line["available"] for line in wallet["lines"]}
            for offer in data:
                offer["units_left"] = catalog.units_left(
                    available.get(offer["category"], 0), offer["unit_price"], offer["unit_value"]
                )
        return data, last

    async def _comparing_for(self, principal: Principal) -> str | None:
        """Whose line the comparison counts units from: the client's own, or the client a representative
        has chosen and holds an active mandate for; None for the organizer, or a representative acting
        for nobody now (the comparison itself is open to them)."""
        if principal.role is Role.CLIENT:
            return await self._wallet_of(principal)
        if principal.role is not Role.REPRESENTATIVE or principal.client_id is None:
            return None
        try:
            return await self._wallet_of(principal)
        except Forbidden:
            return None

    async def start_login(self, phone: str) -> Record:
        now = self.clock.now()
        code = six_digit_code()
        expires_at = now + timedelta(seconds=self.settings.login_code_ttl_seconds)
        sent = await self.storage.start_login(
            self.hasher.keyed(PHONE, phone),
            self.hasher.keyed(LOGIN_CODE, f"{phone}:{code}"),
            expires_at,
            self.limits,
            now,
        )
        if sent:
            minutes = max(self.settings.login_code_ttl_seconds // 60, 1)
            await self.sms.send(
                phone, f"Henkilökohtainen budjetti: kirjautumiskoodisi on {code}. Voimassa {minutes} min."
            )
        # The same answer whether or not the number has a wallet: nobody learns who is a client.
        return {"status": "code_sent", "expires_at": rfc3339(expires_at)}

    async def verify_login(self, phone: str, code: str, client_id: str | None = None) -> IssuedToken:
        """A client's token, or a representative's for the clients it has an active mandate for."""
        subject = await self.storage.verify_login(
            self.hasher.keyed(PHONE, phone),
            self.hasher.keyed(LOGIN_CODE, f"{phone}:{code}"),
            client_id,
            self.limits,
            self.clock.now(),
        )
        if subject["role"] == Role.REPRESENTATIVE.value:
            log.info(
                "representative_login",
                representative_id=subject["representative_id"],
                clients=len(subject["client_ids"]),
                chosen=subject["client_id"],
            )
            return self.mint(
                Role.REPRESENTATIVE,
                representative_id=subject["representative_id"],
                client_ids=tuple(subject["client_ids"]),
                client_id=subject["client_id"],
            )
        return self.mint(Role.CLIENT, client_id=subject["client_id"])

    async def _wallet_of(self, principal: Principal, scope: str = VIEW, *, quiet: bool = False) -> str:
        """Whose wallet the caller acts on: its own (a client), or, for a representative, the client
        chosen for this request, with an active mandate of at least ``scope`` read now from the
        database: a revoked mandate stops the very next request, whatever the token says. Each use
        of a mandate is logged (ids only), unless ``quiet`` (an open stream's repeated checks)."""
        if principal.role is Role.CLIENT and principal.client_id is not None:
            return principal.client_id
        if principal.role is not Role.REPRESENTATIVE or principal.representative_id is None:
            raise Forbidden("this needs a client or representative token")
        if principal.client_id is None:
            raise ValidationError("client_id", "choose the client to act for: this token acts for several")
        mandate = await self.storage.active_mandate(principal.representative_id, principal.client_id)
        if mandate is None:
            raise Forbidden("no active mandate for this client")
        if scope == MANAGE and mandate["scope"] != MANAGE:
            raise Forbidden("this mandate lets you view the wallet, not approve or decline charges")
        if not quiet:
            log.info(
                "acting_for",
                representative_id=principal.representative_id,
                client_id=principal.client_id,
                representation_id=mandate["id"],
                scope=scope,
            )
        return principal.client_id

    async def wallet(self, principal: Principal) -> Record:
        wallet = await self.storage.get_wallet(await self._wallet_of(principal), self.current_month())
        # Staged money is spendable from its month's first midnight in the organizer's time zone.
        for item in [*wallet["upcoming"], *(entry for line in wallet["lines"] for entry in line["upcoming"])]:
            item["available_from"] = rfc3339(month_bounds(item["month"], self.settings.zone)[0])
        return wallet

    async def transactions(self, principal: Principal, limit: int, before: int | None) -> Page:
        return await self.storage.list_transactions(await self._wallet_of(principal), limit, before)

    async def answer_charge(
        self, principal: Principal, charge_id: str, approve: bool, idempotency: Idempotency | None
    ) -> Written:
        """Approve (capture) or decline (void) a charge that waits in the app: the caller's own, or,
        for a representative with a manage mandate, the chosen client's (checked again in the write)."""
        client_id = await self._wallet_of(principal, MANAGE)
        now = self.clock.now()
        if principal.role is Role.REPRESENTATIVE and principal.representative_id is not None:
            written = await self.storage.answer_charge_for(
                principal.representative_id, client_id, charge_id, approve, now, idempotency
            )
        else:
            written = await self.storage.answer_charge(client_id, charge_id, approve, now, idempotency)
        log.info(
            "charge_answered",
            charge_id=charge_id,
            approve=approve,
            status=written.value["status"],
            replayed=written.replayed,
            actor=principal.scope,
        )
        return written

    async def my_charges(self, principal: Principal, limit: int, before: int | None, status: str | None) -> Page:
        return await self.storage.list_client_charges(await self._wallet_of(principal), limit, before, status)

    async def mandates(self, principal: Principal) -> list[Record]:
        """The clients a representative may act for now (its active mandates)."""
        if principal.role is not Role.REPRESENTATIVE or principal.representative_id is None:
            raise Forbidden("this needs a representative token")
        return await self.storage.list_mandates(principal.representative_id)

    async def statement(self, principal: Principal, month: str) -> Record:
        """The monthly statement (saldotiliote) of the caller's wallet; the current month so far."""
        period = self.month_so_far(month)
        # The current month is read to its end too: everything booked so far is before it.
        figures = await self.storage.statement_figures(await self._wallet_of(principal), period.start, period.end)
        return statement_of(month, period, figures)

    async def subscribe_events(self, principal: Principal) -> EventSubscription:
        """Open a live stream of the caller's wallet events; ``RateLimited`` past the stream limits.

        Subscribe first, then read the position (``wallet()["last_event_id"]``) or resume from a
        Last-Event-ID: a commit after subscribing always wakes the stream.
        """
        return self.events.subscribe(await self._wallet_of(principal))

    async def events_after(self, principal: Principal, after: int) -> list[Record]:
        """The caller's wallet events above id ``after``, oldest first, at most ``events_batch_max``.
        A representative's mandate is checked at each read: a revocation ends an open stream."""
        client_id = await self._wallet_of(principal, quiet=True)
        return await self.storage.list_wallet_events(client_id, after, self.settings.events_batch_max)


def statement_of(month: str, period: MonthPeriod, figures: Record) -> Record:
    """The statement as answered, from the figures read in one snapshot (``statement_figures``)."""
    movements = [statements.Movement(**row) for row in figures["movements"]]
    statement = statements.build(month, figures["opening"], figures["closing"], movements)
    statement["charges"].update(statements.bought(figures["bought"]))
    return {
        **statement,
        **period.render(),
        "held_at_close": figures["held_at_close"],
    }
