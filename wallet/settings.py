"""Every setting in one place, read from ``WALLET_*`` environment variables, each with a safe default.

A bad value stops start-up with a message naming the variable (``SettingsError``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wallet.eventloop import EVENT_LOOPS
from wallet.ledger.errors import ValidationError
from wallet.ledger.schedule import parse_days


class SettingsError(ValueError):
    """A ``WALLET_*`` variable has a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    # Where things live.
    db: str = "data/wallet.db"
    signing_key: str = "data/signing-key.pem"
    # Key rotation: earlier signing keys (private or public PEM files, comma-separated) whose
    # tokens are still accepted until they expire. New tokens are signed with signing_key only.
    verification_keys: str = ""
    sms_outbox: str = "data/sms-outbox.jsonl"
    host: str = "127.0.0.1"
    port: int = 8080
    # Tokens.
    token_issuer: str = "personal-budget-wallet"
    token_audience: str = "personal-budget-wallet-api"
    token_ttl_seconds: int = 3600
    token_max_ttl_seconds: int = 86_400
    token_cache_entries: int = 10_000
    # Requests.
    max_body_bytes: int = 65_536
    page_size_default: int = 50
    page_size_max: int = 200
    idempotency_key_max_length: int = 255
    idempotency_retention_hours: int = 48
    # Settlements and exports: the most lines one batch closes (the rest wait for the next), and
    # the rows an export reads per page (its memory bound, whatever the file's size).
    settlement_items_max: int = 20_000
    export_page_rows: int = 1000
    # Invoice reconciliation: the largest document accepted, and the most invoices in one.
    reconciliation_max_bytes: int = 5_000_000
    reconciliation_invoices_max: int = 1000
    # Identity checks.
    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 5
    # How long a charge made with identity method "app" waits for the client's approval.
    approval_ttl_seconds: int = 300
    identity_failures_max: int = 5
    identity_failures_window_seconds: int = 900
    provider_identity_failures_max: int = 20
    provider_charges_per_second: int = 50
    provider_charges_burst: int = 100
    login_code_ttl_seconds: int = 300
    login_code_max_attempts: int = 5
    login_requests_max: int = 5
    login_requests_window_seconds: int = 900
    # The writer.
    writer_queue_max: int = 10_000
    writer_batch_max: int = 64
    # SQLite: run the writer in a process of its own (its own core and GIL, fed units as data over a
    # private socket pair) rather than a thread of the serving process. PostgreSQL: no effect.
    writer_process: bool = True
    # HTTP worker processes of ``wallet serve`` on one port (SO_REUSEPORT), one writer for all of
    # them (wallet/workers.py); 1 serves from the one process. About one per core.
    workers: int = 1
    reader_connections: int = 4
    # PostgreSQL (WALLET_DB=postgresql://...): how many times a write batch is run again after a
    # serialization failure or deadlock, and how long a node waits for the cluster-wide write lock
    # (held by another node's transaction) before answering 503.
    postgres_retry_attempts: int = 5
    postgres_lock_timeout_seconds: int = 10
    # /readyz: the writer counts as stalled when writes wait and no batch has ended for this long;
    # each readiness check (a read) must answer within readiness_timeout_seconds.
    writer_stall_seconds: int = 30
    readiness_timeout_seconds: int = 2
    # Live wallet events (GET /v1/me/events): a heartbeat comment this often; at most this many
    # streams per wallet and in all; a write that waits longer than the timeout (a reader that does
    # not read) ends its stream; a stream lasts at most this long, then the client reconnects with
    # Last-Event-ID (and a token that is still valid); events read from the log per query.
    events_heartbeat_seconds: int = 15
    events_streams_per_client_max: int = 5
    events_streams_max: int = 1000
    events_write_timeout_seconds: int = 10
    events_stream_max_seconds: int = 3600
    events_batch_max: int = 200
    # Background jobs.
    hold_sweep_interval_seconds: int = 5
    credit_run_interval_seconds: int = 3600
    auto_credit_run: bool = True
    # Automatic settlement (the organizer's schedule, wallet/ledger/schedule.py): on these days of
    # the month, in the organizer's time zone, every provider whose unsettled net (lines made
    # before the day began) is at least settlement_min_amount cents gets one batch; the check runs
    # this often, and once per provider per day has any effect.
    auto_settlement: bool = True
    settlement_days: str = "1,8,16,24"
    settlement_min_amount: int = 0
    settlement_check_interval_seconds: int = 3600
    # The organizer's usage report (GET /v1/reports/usage): from this day of the month on (or once the
    # month is over), a client who has used less than this percentage of the month's budget is
    # flagged low_use, a surplus building up.
    usage_low_use_from_day: int = 20
    usage_low_use_percent: int = 50
    timezone: str = "Europe/Helsinki"
    shutdown_timeout_seconds: int = 20
    # The HTTP processes' event loop: "uvloop" (libuv, less CPU a request) or "asyncio" (the
    # standard library's selector loop). The writer process and the CLI run no such loop.
    event_loop: str = "uvloop"
    # Logs: "console" (readable) or "json" (one JSON object a line).
    log_format: str = "console"
    log_level: str = "info"

    @property
    def uses_postgres(self) -> bool:
        """``WALLET_DB`` is a PostgreSQL DSN rather than a SQLite file path."""
        return self.db.startswith(("postgres://", "postgresql://"))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def settlement_day_numbers(self) -> frozenset[int]:
        return parse_days(self.settlement_days)

    @property
    def verification_key_paths(self) -> list[str]:
        return [path.strip() for path in self.verification_keys.split(",") if path.strip()]

    @property
    def secret_dir(self) -> Path:
        return Path(self.signing_key).resolve().parent

    @staticmethod
    def from_env(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(Settings):
            name = f"WALLET_{field.name.upper()}"
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            values[field.name] = _convert(name, raw, field.default)
        values.update(overrides)
        settings = Settings(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        for field in fields(self):
            value, variable = getattr(self, field.name), f"WALLET_{field.name.upper()}"
            if type(value) is not type(field.default):
                raise SettingsError(f"{variable} must be a {type(field.default).__name__}, not {value!r}")
            if isinstance(value, int) and not isinstance(value, bool) and field.name in _MAY_BE_ZERO:
                if value < 0:
                    raise SettingsError(f"{variable} must not be negative")
            elif isinstance(value, int) and not isinstance(value, bool) and value <= 0:
                raise SettingsError(f"{variable} must be a positive integer")  # every number is a limit
            if isinstance(value, str) and field.name not in _MAY_BE_EMPTY and not value.strip():
                raise SettingsError(f"{variable} must not be empty")
        for name in ("db", "signing_key", "sms_outbox"):
            if name == "db" and self.uses_postgres:
                continue
            if Path(getattr(self, name)).is_dir():
                raise SettingsError(
                    f"WALLET_{name.upper()} must be a file path, not the directory {getattr(self, name)!r}"
                )
        if any(character.isspace() for character in self.host):
            raise SettingsError(f"WALLET_HOST must be a host name or address, not {self.host!r}")
        if self.writer_batch_max > self.writer_queue_max:
            raise SettingsError("WALLET_WRITER_BATCH_MAX must not exceed WALLET_WRITER_QUEUE_MAX")
        if self.port > 65535:
            raise SettingsError("WALLET_PORT must be at most 65535")
        if self.page_size_default > self.page_size_max:
            raise SettingsError("WALLET_PAGE_SIZE_DEFAULT must not exceed WALLET_PAGE_SIZE_MAX")
        if self.token_ttl_seconds > self.token_max_ttl_seconds:
            raise SettingsError("WALLET_TOKEN_TTL_SECONDS must not exceed WALLET_TOKEN_MAX_TTL_SECONDS")
        if self.events_streams_per_client_max > self.events_streams_max:
            raise SettingsError("WALLET_EVENTS_STREAMS_PER_CLIENT_MAX must not exceed WALLET_EVENTS_STREAMS_MAX")
        if self.events_heartbeat_seconds >= self.events_stream_max_seconds:
            raise SettingsError("WALLET_EVENTS_HEARTBEAT_SECONDS must be less than WALLET_EVENTS_STREAM_MAX_SECONDS")
        if self.usage_low_use_from_day > 31:
            raise SettingsError("WALLET_USAGE_LOW_USE_FROM_DAY must be a day of the month (1-31)")
        if self.usage_low_use_percent > 100:
            raise SettingsError("WALLET_USAGE_LOW_USE_PERCENT must be a percentage (1-100)")
        if self.event_loop not in EVENT_LOOPS:
            raise SettingsError(f"WALLET_EVENT_LOOP must be {' or '.join(EVENT_LOOPS)}, not {self.event_loop!r}")
        if self.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise SettingsError("WALLET_EVENT_LOOP=uvloop needs the uvloop package installed; or set it to asyncio")
        if self.log_format not in ("console", "json"):
            raise SettingsError("WALLET_LOG_FORMAT must be console or json")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise SettingsError("WALLET_LOG_LEVEL must be debug, info, warning or error")
        for path in self.verification_key_paths:
            if not Path(path).is_file():
                raise SettingsError(f"WALLET_VERIFICATION_KEYS: no such file {path!r}")
        try:
            parse_days(self.settlement_days)
        except ValidationError:
            raise SettingsError(
                f"WALLET_SETTLEMENT_DAYS must be days of the month (1-31) separated by commas, not {self.settlement_days!r}"
            ) from None
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise SettingsError(f"WALLET_TIMEZONE: unknown time zone {self.timezone!r}") from error


# Settings whose empty value means "none"; every other text setting must have a value.
_MAY_BE_EMPTY = frozenset({"verification_keys"})
# Numbers for which zero means "no minimum"; every other number is a limit and must be positive.
_MAY_BE_ZERO = frozenset({"settlement_min_amount"})


def _convert(name: str, raw: str, default: object) -> object:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, not {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw, 10)
        except ValueError as error:
            raise SettingsError(f"{name} must be an integer, not {raw!r}") from error
    return raw


def describe() -> list[tuple[str, object]]:
    """Every variable with its default, for ``wallet --help`` and README."""
    return [(f"WALLET_{field.name.upper()}", field.default) for field in fields(Settings)]
