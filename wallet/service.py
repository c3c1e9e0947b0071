"""The use cases: what organizers, providers and clients can do. Handlers call these.

The service owns everything around a write that is not the write itself: hashing identities,
making and sending codes (only after the commit), minting tokens, and the background jobs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from wallet import logs
from wallet.auth.crypto import PhoneCipher
from wallet.auth.hashing import Hasher, six_digit_code, slow_hash, verify_slow_hash
from wallet.auth.tokens import Principal, Role, TokenService
from wallet.clock import Clock, month_bounds, month_of, rfc3339
from wallet.events import EventHub, EventSubscription
from wallet.exports import ExportKind
from wallet.ids import new_id
from wallet.invoices import read_csv, read_finvoice
from wallet.ledger import statements, usage
from wallet.ledger.charges import IdentityMethod
from wallet.ledger.errors import Forbidden, NotFound, NothingToSettle, RateLimited, Unauthorized, ValidationError
from wallet.ledger.money import format_euros
from wallet.ledger.months import next_month
from wallet.ledger.parties import RepresentationScope
from wallet.ledger.schedule import is_settlement_day
from wallet.ledger.settlements import SettlementStatus
from wallet.ratelimit import Throttle
from wallet.settings import Settings
from wallet.shapes import requests
from wallet.sms import SmsSender
from wallet.storage.port import (
    ChargeCommand,
    Idempotency,
    Limits,
    NewBudget,
    NewClient,
    NewProvider,
    NewRepresentation,
    Page,
    Record,
    Storage,
    Written,
)

log = structlog.get_logger(__name__)

# Budgets a credit-run step takes: one commit each, holding the writer for it (some 30 ms on a
# 1,000,000-wallet database, in CPU). Below a few hundred the commits cost more than the work
# (docs/performance.md).
CREDIT_RUN_BATCH_BUDGETS = 500
HOLD_SWEEP_BATCH = 500
IDEMPOTENCY_PURGE_BATCH = 1_000
IDEMPOTENCY_PURGE_INTERVAL_SECONDS = 3_600
PROVIDER_SECRET_BYTES = 32

# Hash purposes: a hash made for one use never matches in another.
NATIONAL_ID = "national_id"
OTP = "otp"
LOGIN_CODE = "login_code"
PHONE = "phone"

# Mandate scopes: view reads the wallet; manage also approves and declines charges.
VIEW = RepresentationScope.VIEW
MANAGE = RepresentationScope.MANAGE


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int

    def render(self) -> Record:
        return {"access_token": self.access_token, "token_type": "Bearer", "expires_in": self.expires_in}


def storage_limits(settings: Settings) -> Limits:
    """The guessing limits the storage enforces inside its transactions, from the settings."""
    return Limits(
        identity_failures_max=settings.identity_failures_max,
        identity_failures_window_seconds=settings.identity_failures_window_seconds,
        provider_identity_failures_max=settings.provider_identity_failures_max,
        otp_max_attempts=settings.otp_max_attempts,
        login_code_max_attempts=settings.login_code_max_attempts,
        login_requests_max=settings.login_requests_max,
        login_requests_window_seconds=settings.login_requests_window_seconds,
    )


class WalletService:
    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        tokens: TokenService,
        hasher: Hasher,
        phones: PhoneCipher,
        sms: SmsSender,
        clock: Clock,
    ) -> None:
        self.phones = phones
        self.charge_throttle = Throttle(
            settings.provider_charges_per_second, settings.provider_charges_burst, "charge attempts from this provider"
        )
        self.settings = settings
        self.storage = storage
        self.tokens = tokens
        self.hasher = hasher
        self.sms = sms
        self.clock = clock
        self.limits = storage_limits(settings)
        self.events = EventHub(settings.events_streams_per_client_max, settings.events_streams_max)
        storage.watch_wallet_events(self.events.publish)

    def current_month(self) -> str:
        return month_of(self.clock.now(), self.settings.zone)

    # Tokens.

    def authenticate(self, token: str) -> Principal:
        return self.tokens.verify(token, self.clock.now())

    def mint(self, role: Role, ttl_seconds: int | None = None, **ids: str | tuple[str, ...] | None) -> IssuedToken:
        ttl = ttl_seconds or self.settings.token_ttl_seconds
        if not 0 < ttl <= self.settings.token_max_ttl_seconds:
            raise ValidationError("ttl", f"must be between 1 and {self.settings.token_max_ttl_seconds} seconds")
        return IssuedToken(self.tokens.mint(role, self.clock.now(), ttl, **ids), ttl)  # type: ignore[arg-type]

    async def token_for_credentials(self, client_id: str, client_secret: str) -> IssuedToken:
        credential = await self.storage.get_provider_credential(client_id)
        # Hash even when the client id is unknown, so timing does not tell which ids exist.
        stored = credential["secret_hash"] if credential else _dummy_hash()
        valid = await asyncio.to_thread(verify_slow_hash, client_secret, stored)
        if credential is None or not valid:
            raise Unauthorized("invalid client credentials", error="invalid_client")
        if credential["status"] == "suspended":
            raise Forbidden("the provider is suspended", error="unauthorized_client")
        return self.mint(Role.PROVIDER, provider_id=credential["provider_id"])

    # Organizer.

    async def create_category(self, command: requests.NewCategory) -> Record:
        return await self.storage.create_category(command.code, command.name, self.clock.now())

    async def list_categories(self) -> list[Record]:
        return await self.storage.list_categories()

    async def create_client(self, command: requests.NewClient) -> Record:
        national_id_hash = (
            self.hasher.keyed(NATIONAL_ID, command.national_id) if command.national_id is not None else None
        )
        client = await self.storage.create_client(
            NewClient(
                command.name,
                self.hasher.keyed(PHONE, command.phone),
                self.phones.encrypt(command.phone),
                national_id_hash,
            ),
            self.clock.now(),
        )
        return self._reveal_phone(client)

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
        national_id_hash = (
            self.hasher.keyed(NATIONAL_ID, command.national_id) if command.national_id is not None else None
        )
        representation = NewRepresentation(
            client_id=client_id,
            scope=command.scope,
            name=command.name,
            phone_hash=self.hasher.keyed(PHONE, command.phone),
            phone_ciphertext=self.phones.encrypt(command.phone),
            national_id_hash=national_id_hash,
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

    async def create_budget(self, client_id: str, command: requests.NewBudget) -> Record:
        budget = NewBudget(client_id, command.start_month, command.end_month, command.unused, command.lines)
        return await self.storage.create_budget(budget, self.clock.now())

    async def list_budgets(self, client_id: str, limit: int, before: int | None) -> Page:
        return await self.storage.list_budgets(client_id, limit, before)

    async def end_budget(self, client_id: str, budget_id: str, end_month: str) -> Record:
        """End a budget sooner: from the month after ``end_month`` nothing more is credited, and the
        credit run at that boundary returns what is left (``wallet.ledger.months``)."""
        return await self.storage.end_budget(client_id, budget_id, end_month, self.current_month(), self.clock.now())

    async def create_provider(self, command: requests.NewProvider) -> Record:
        provider = NewProvider(command.name, command.business_id, command.iban, command.categories)
        return await self.storage.create_provider(provider, self.clock.now())

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

        Allowed for the current month and, ahead of time, for the next. The run goes in steps
        of a bounded number of budgets, each its own transaction, so a crash midway leaves whole
        steps and a rerun finishes the rest. ``plan_ahead`` (``wallet credit-run``, a process of its
        own): the storage may work the next step out while the writer writes this one.
        """
        if idempotency is not None:
            replay = await self.storage.idempotent_lookup(idempotency)
            if replay is not None:
                return replay
        current = self.current_month()
        if month not in (current, next_month(current)):
            raise ValidationError("month", f"must be the current month ({current}) or the next one")
        after, credited_now, expired_now, steps, planned = 0, 0, 0, 0, 0
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
            steps += 1
            planned += bool(step.get("planned"))
            after = step["last_budget_seq"]
            if progress is not None:
                progress(step["budgets"])
            if step["done"]:
                break
        summary = await self.storage.credit_run_summary(month)
        result = {**summary, "credited_now": credited_now, "expired_now": expired_now}
        log.info(
            "credit_run",
            month=month,
            credited_now=credited_now,
            expired_now=expired_now,
            credited=summary["credited"],
            amount=summary["amount"],
            steps=steps,
            steps_planned_ahead=planned,
        )
        if idempotency is not None:
            return await self.storage.idempotent_store(idempotency, result, self.clock.now())
        return Written(result)

    # Providers.

    async def charge(
        self, principal: Principal, command: requests.NewCharge, idempotency: Idempotency | None
    ) -> Written:
        provider_id = _provider_id(principal)
        now = self.clock.now()
        try:
            self.charge_throttle.take(provider_id, now.timestamp())
        except RateLimited:
            # A replay answers its first response even in a storm: it costs nothing to repeat.
            replay = await self.storage.idempotent_lookup(idempotency) if idempotency else None
            if replay is None:
                raise
            return replay
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
        charge_command = ChargeCommand(  # built once with its method's fields (dataclasses.replace copies)
            provider_id=provider_id,
            phone_hash=self.hasher.keyed(PHONE, command.phone),
            amount=command.amount,
            category=command.category,
            description=command.description,
            method=command.method,
            national_id_hash=national_id_hash,
            otp_hash=otp_hash,
            otp_expires_at=expires_at,
        )
        month = month_of(now, self.settings.zone)
        written = await self.storage.charge(charge_command, self.limits, now, month, idempotency)
        if code is not None and not written.replayed:
            await self._send_code(command.phone, code, command.amount)
        if logs.enabled(logging.INFO):
            log.info(
                "charge",
                charge_id=written.value["id"],
                status=written.value["status"],
                amount=command.amount,
                category=command.category,
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
            _provider_id(principal), charge_id, self.hasher.keyed(OTP, code), self.limits, self.clock.now(), idempotency
        )

    async def void_charge(self, principal: Principal, charge_id: str, idempotency: Idempotency | None) -> Written:
        return await self.storage.void_charge(_provider_id(principal), charge_id, self.clock.now(), idempotency)

    async def refund(
        self, principal: Principal, charge_id: str, amount: int, idempotency: Idempotency | None
    ) -> Written:
        return await self.storage.refund(_provider_id(principal), charge_id, amount, self.clock.now(), idempotency)

    async def get_charge(self, principal: Principal, charge_id: str) -> Record:
        return await self.storage.get_charge(_provider_id(principal), charge_id)

    async def list_charges(self, principal: Principal, limit: int, before: int | None, status: str | None) -> Page:
        return await self.storage.list_charges(_provider_id(principal), limit, before, status)

    # Clients.

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
        return await self.storage.get_wallet(await self._wallet_of(principal), self.current_month())

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
        current = self.current_month()
        if month > current:
            raise ValidationError("month", f"has not begun; the current month is {current}")
        now = self.clock.now()
        start, end = month_bounds(month, self.settings.zone)
        # The current month is read to its end too: everything booked so far is before it.
        figures = await self.storage.statement_figures(await self._wallet_of(principal), start, end)
        until = min(end, now)
        movements = [statements.Movement(**row) for row in figures["movements"]]
        statement = statements.build(month, figures["opening"], figures["closing"], movements)
        return {
            **statement,
            "time_zone": self.settings.timezone,
            "period_start": rfc3339(start),
            "period_end": rfc3339(end),
            "complete": until == end,
            "as_of": rfc3339(until),
            "held_at_close": figures["held_at_close"],
        }

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

    # The organizer's view of use.

    async def usage_report(self, month: str, low_use_only: bool, limit: int, before: int | None) -> Record:
        """Per client and line: the month's amount, credited, used, held and left; per provider, what
        it charged; clients using little late in the month flagged ``low_use``. The current month
        gives the figures so far. ``limit``/``before`` page the clients (newest first)."""
        current = self.current_month()
        if month > current:
            raise ValidationError("month", f"has not begun; the current month is {current}")
        now = self.clock.now()
        start, end = month_bounds(month, self.settings.zone)
        figures = await self.storage.usage_figures(month, start, end)
        complete = now >= end
        rule = usage.LowUseRule(self.settings.usage_low_use_from_day, self.settings.usage_low_use_percent)
        evaluated = rule.evaluated(complete, now.astimezone(self.settings.zone).day)
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
        selected = [row for row in rows if row["low_use"] or not low_use_only]
        if before is not None:
            selected = [row for row in selected if sequence[row["client_id"]] < before]
        page = selected[:limit]
        more = len(selected) > limit
        return {
            "month": month,
            "time_zone": self.settings.timezone,
            "period_start": rfc3339(start),
            "period_end": rfc3339(end),
            "complete": complete,
            "as_of": rfc3339(min(now, end)),
            "low_use_rule": {"from_day": rule.from_day, "percent": rule.percent, "evaluated": evaluated},
            "totals": usage.totals(rows, providers),
            "providers": providers,
            "data": page,
            "next_cursor": sequence[page[-1]["client_id"]] if more else None,
        }

    # Settlements.

    async def settle(self, principal: Principal, until: datetime | None, idempotency: Idempotency | None) -> Written:
        """Close the provider's unsettled captures and refunds up to ``until`` (default now) into a batch."""
        provider_id = _provider_id(principal)
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

    # Finance exports.

    def export(self, kind: ExportKind, start: datetime | None, end: datetime | None) -> AsyncIterator[list[Record]]:
        """Pages of an export's rows, each at most ``export_page_rows`` long: memory stays bounded."""
        if kind is ExportKind.TRANSACTIONS:
            return self.storage.export_transactions(start, end, self.settings.export_page_rows)
        return self.storage.export_settlements(start, end, self.settings.export_page_rows)

    # Invoice reconciliation.

    async def reconcile(self, document: bytes, source: str, idempotency: Idempotency | None) -> Written:
        """Judge each invoice of a Finvoice 3.0 (``source="finvoice"``) or CSV document."""
        if idempotency is not None:
            replay = await self.storage.idempotent_lookup(idempotency)
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

    # Background jobs.

    async def purge_idempotency_keys(self) -> int:
        """Forget keys older than the retention, a bounded batch per write."""
        now = self.clock.now()
        cutoff = now - timedelta(hours=self.settings.idempotency_retention_hours)
        total = 0
        while True:
            deleted = await self.storage.purge_idempotency_keys(cutoff, IDEMPOTENCY_PURGE_BATCH, now)
            total += deleted
            if deleted < IDEMPOTENCY_PURGE_BATCH:
                return total

    async def sweep_expired_holds(self) -> int:
        total = 0
        while True:
            voided = await self.storage.expire_pending(self.clock.now(), HOLD_SWEEP_BATCH)
            total += voided
            if voided < HOLD_SWEEP_BATCH:
                break
        if total:
            log.info("holds_expired", voided=total)
        return total


def _provider_id(principal: Principal) -> str:
    if principal.role is not Role.PROVIDER or principal.provider_id is None:
        raise Forbidden("this needs a provider token")
    return principal.provider_id


def _own_provider(principal: Principal) -> str | None:
    """Whose settlements a caller sees: a provider its own; finance and the organizer every one."""
    if principal.role is Role.PROVIDER:
        return _provider_id(principal)
    if principal.role in (Role.FINANCE, Role.ADMIN):
        return None
    raise Forbidden("this needs a provider, finance or admin token")


@functools.cache
def _dummy_hash() -> str:
    return slow_hash(secrets.token_urlsafe(16))
