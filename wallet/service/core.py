"""What every role shares: the collaborators, the clock, token minting and the storage's limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wallet.auth.crypto import PhoneCipher
from wallet.auth.hashing import Hasher
from wallet.auth.tokens import Principal, Role, TokenService
from wallet.clock import Clock, month_bounds, month_of, rfc3339
from wallet.events import EventHub
from wallet.ledger.errors import Forbidden, ValidationError
from wallet.ratelimit import Throttle
from wallet.settings import Settings
from wallet.sms import SmsSender
from wallet.storage.port import Idempotency, Limits, Record, Storage, Written

# Hash purposes: a hash made for one use never matches in another.
NATIONAL_ID = "national_id"
OTP = "otp"
LOGIN_CODE = "login_code"
PHONE = "phone"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int

    def render(self) -> Record:
        return {"access_token": self.access_token, "token_type": "Bearer", "expires_in": self.expires_in}


@dataclass(frozen=True)
class MonthPeriod:
    """A month in the organizer's time zone as read at ``now``: the current month is read so far."""

    time_zone: str
    start: datetime
    end: datetime
    now: datetime

    @property
    def complete(self) -> bool:
        return self.now >= self.end

    def render(self) -> Record:
        return {
            "time_zone": self.time_zone,
            "period_start": rfc3339(self.start),
            "period_end": rfc3339(self.end),
            "complete": self.complete,
            "as_of": rfc3339(min(self.now, self.end)),
        }


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


def provider_of(principal: Principal) -> str:
    """The provider a provider token acts for; anyone else is refused."""
    if principal.role is not Role.PROVIDER or principal.provider_id is None:
        raise Forbidden("this needs a provider token")
    return principal.provider_id


class ServiceCore:
    """The state every role's use cases work with; each role's class adds its methods to it."""

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
        self.settings = settings
        self.storage = storage
        self.tokens = tokens
        self.hasher = hasher
        self.phones = phones
        self.sms = sms
        self.clock = clock
        self.limits = storage_limits(settings)
        # Per process: the providers' charge attempts, and the clients' open event streams.
        self.charge_throttle = Throttle(
            settings.provider_charges_per_second, settings.provider_charges_burst, "charge attempts from this provider"
        )
        self.events = EventHub(settings.events_streams_per_client_max, settings.events_streams_max)
        storage.watch_wallet_events(self.events.publish)

    def current_month(self) -> str:
        return month_of(self.clock.now(), self.settings.zone)

    def seconds_until_next_month(self) -> float:
        """From now to the next month's first midnight in the organizer's time zone: when the
        scheduled credit run must run next, to release what was staged for that month."""
        _, end = month_bounds(self.current_month(), self.settings.zone)
        return max((end - self.clock.now()).total_seconds(), 0.0)

    def today(self) -> str:
        """Today (YYYY-MM-DD) in the organizer's time zone: the day unit values are in force on."""
        return self.clock.now().astimezone(self.settings.zone).date().isoformat()

    def authenticate(self, token: str) -> Principal:
        return self.tokens.verify(token, self.clock.now())

    def mint(self, role: Role, ttl_seconds: int | None = None, **ids: str | tuple[str, ...] | None) -> IssuedToken:
        ttl = ttl_seconds or self.settings.token_ttl_seconds
        if not 0 < ttl <= self.settings.token_max_ttl_seconds:
            raise ValidationError("ttl", f"must be between 1 and {self.settings.token_max_ttl_seconds} seconds")
        return IssuedToken(self.tokens.mint(role, self.clock.now(), ttl, **ids), ttl)  # type: ignore[arg-type]

    def month_so_far(self, month: str) -> MonthPeriod:
        """``month``'s bounds as read now; a month that has not begun is refused."""
        current = self.current_month()
        if month > current:
            raise ValidationError("month", f"has not begun; the current month is {current}")
        start, end = month_bounds(month, self.settings.zone)
        return MonthPeriod(self.settings.timezone, start, end, self.clock.now())

    async def replay(self, idempotency: Idempotency | None) -> Written | None:
        """The stored answer when ``idempotency`` names a request already made, else None."""
        return await self.storage.idempotent_lookup(idempotency) if idempotency is not None else None
