"""Every setting in one place, read from ``WALLET_*`` environment variables, each with a safe default.

Each setting is declared once, in ``Settings``, with its default and its help; ``wallet --help``
and the tables in README.md and docs/configuration.md are made from those declarations
(``python -m wallet.settings --update``). A bad value stops start-up with a message naming the
variable (``SettingsError``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stdnum import iban as stdnum_iban

from wallet.eventloop import EVENT_LOOPS
from wallet.ledger.errors import ValidationError
from wallet.ledger.schedule import parse_days
from wallet.storage import is_postgres

T = TypeVar("T")


class SettingsError(ValueError):
    """A ``WALLET_*`` variable has a value the service cannot run with."""


def setting(default: T, help: str, *, may_be_empty: bool = False, may_be_zero: bool = False) -> T:
    """Declare one setting: its default, its help, and the exceptions to the checks every value gets
    (text must not be blank unless ``may_be_empty``; a number must be positive, or not negative
    when ``may_be_zero``)."""
    return field(default=default, metadata={"help": help, "may_be_empty": may_be_empty, "may_be_zero": may_be_zero})


@dataclass(frozen=True)
class Settings:
    # Where things live.
    db: str = setting(
        "data/wallet.db",
        "The SQLite database file (created with its directory on first start), or a PostgreSQL DSN "
        "`postgresql://user@host:5432/db` (the schema is created or migrated on start; `?search_path=name` picks "
        "a schema other than `public`).",
    )
    signing_key: str = setting(
        "data/signing-key.pem",
        "The Ed25519 private key (PEM) that signs tokens; created on first use. The HMAC secret "
        "(`hmac-secret.key`) and the phone-number key are created beside it: keep the directory private and "
        "backed up.",
    )
    verification_keys: str = setting(
        "",
        "Key rotation: earlier signing keys (PEM paths, comma-separated) whose tokens stay valid until they "
        "expire. Each must exist.",
        may_be_empty=True,
    )
    sms_outbox: str = setting(
        "data/sms-outbox.jsonl",
        'Every SMS is appended here as a JSON line `{"to", "text"}` (development and tests).',
    )
    host: str = setting("127.0.0.1", "The address `wallet serve` listens on (`0.0.0.0` in the container).")
    port: int = setting(8080, "The port `wallet serve` listens on (1–65535).")
    # Tokens.
    token_issuer: str = setting("personal-budget-wallet", "The `iss` of every token, checked on every request.")
    token_audience: str = setting("personal-budget-wallet-api", "The `aud` of every token, checked on every request.")
    token_ttl_seconds: int = setting(3600, "Token lifetime.")
    token_max_ttl_seconds: int = setting(86_400, "The longest lifetime `wallet token --ttl` may ask for.")
    token_cache_entries: int = setting(10_000, "Verified tokens kept in memory until they expire.")
    # Requests.
    max_body_bytes: int = setting(
        65_536,
        "The largest request body on every route but reconciliations (413 `payload_too_large` beyond, before "
        "anything else is done).",
    )
    max_request_line_bytes: int = setting(
        8000,
        "The longest request line the HTTP parser reads (414 `uri_too_long` beyond). Must differ from "
        "`WALLET_MAX_HEADER_FIELD_BYTES`: the parser tells the two apart only by the limit it hit.",
    )
    max_header_field_bytes: int = setting(
        8190, "The longest header field, name and value (431 `headers_too_large` beyond)."
    )
    max_header_fields: int = setting(128, "The most header fields in one request (431 `headers_too_large` beyond).")
    page_size_default: int = setting(50, "List page size when `limit` is not given.")
    page_size_max: int = setting(200, "The largest `limit` a list accepts.")
    idempotency_key_max_length: int = setting(255, "The longest `Idempotency-Key` header.")
    idempotency_retention_hours: int = setting(
        48,
        "Idempotency keys are kept this long, then purged hourly (the effects stay).",
    )
    # Settlements, exports and invoice reconciliation.
    settlement_items_max: int = setting(
        20_000,
        "The most lines one settlement batch closes; the rest wait for the next (`more_to_settle`).",
    )
    export_page_rows: int = setting(
        1000,
        "Rows an export reads and writes at a time: its memory bound, whatever the file's size.",
    )
    reconciliation_max_bytes: int = setting(5_000_000, "The largest invoice document `POST /v1/reconciliations` reads.")
    reconciliation_invoices_max: int = setting(1000, "The most invoices in one document.")
    bank_statement_max_bytes: int = setting(
        10_000_000, "The largest camt.053/camt.054 file `POST /v1/bank-statements` reads (413 beyond)."
    )
    bank_statement_entries_max: int = setting(10_000, "The most entries (transaction details) in one bank file.")
    # The organizer's account that pays the providers: the debtor of every payment file (pain.001).
    # All three or none; without them a payment batch is refused (409).
    payer_name: str = setting("", "The debtor's name in payment files (at most 70 characters).", may_be_empty=True)
    payer_iban: str = setting("", "The debtor's IBAN in payment files.", may_be_empty=True)
    payer_bic: str = setting("", "The BIC of the debtor's bank in payment files.", may_be_empty=True)
    payment_batch_settlements_max: int = setting(1000, "The most settlements in one payment batch.")
    # Identity checks and guessing limits.
    otp_ttl_seconds: int = setting(300, "Lifetime of a charge's SMS code; the hold is voided after it.")
    otp_max_attempts: int = setting(5, "Wrong codes before the charge is voided.")
    approval_ttl_seconds: int = setting(
        300,
        "How long a charge made with identity method `app` waits for the client's approval.",
    )
    plain_amount_charges: bool = setting(
        True,
        "Whether a charge may name a bare `amount` and `category`; false: only itemized charges (`items`), each "
        "priced at the provider's offer and the service's unit value.",
    )
    identity_failures_max: int = setting(
        5,
        "Failed identity checks per wallet in the window before 429 `rate_limited`.",
    )
    identity_failures_window_seconds: int = setting(900, "The window of the identity-check limits.")
    provider_identity_failures_max: int = setting(
        20,
        "Failed identity checks by one provider (across wallets) in the window before 429.",
    )
    provider_charges_per_second: int = setting(
        50,
        "Charge attempts per provider per second (a token bucket, per process) before 429.",
    )
    provider_charges_burst: int = setting(100, "The bucket's size: a burst of charge attempts allowed at once.")
    login_code_ttl_seconds: int = setting(300, "Lifetime of a client's login code.")
    login_code_max_attempts: int = setting(5, "Wrong guesses of one login code before it is spent.")
    login_requests_max: int = setting(5, "Login codes per phone in the window before 429.")
    login_requests_window_seconds: int = setting(900, "The window of the login-code limit.")
    # The writer and the readers.
    writer_queue_max: int = setting(10_000, "Writes queued for the single writer before 503 `unavailable`.")
    writer_batch_max: int = setting(64, "Writes that share one commit (group commit).")
    writer_process: bool = setting(
        True,
        "The writer runs in a process of its own (its own core and GIL; units sent to it as data over a private "
        "socket pair) instead of a thread of the serving process: with SQLite, and with PostgreSQL each node's "
        "writer. `false` keeps it a thread.",
    )
    workers: int = setting(
        1,
        "HTTP worker processes of `wallet serve`, all on one port (`SO_REUSEPORT`), writing through one writer "
        "process (SQLite) or each its own writer process (PostgreSQL); about one per core. Per worker, as per node: the "
        "per-provider charge throttle, the event-stream caps, `/metrics`. See `wallet/workers.py`.",
    )
    reader_connections: int = setting(
        4,
        "Read-only connections: SQLite readers, or the size of the PostgreSQL read pool.",
    )
    # PostgreSQL.
    postgres_retry_attempts: int = setting(
        5,
        "PostgreSQL: times a write batch is run in all when PostgreSQL reports a serialization failure or "
        "deadlock; then 503.",
    )
    postgres_side_by_side: bool = setting(
        False,
        "PostgreSQL: whether batches of new charges (and SMS receipt claims and marks) take the write lock shared "
        "and run beside other nodes' batches, locking their keys and wallet lines themselves; off, every write "
        "transaction takes it exclusively. On 2 shared cores it cost more CPU a charge than it gained "
        "(docs/postgresql-writes.md).",
    )
    postgres_lock_timeout_seconds: int = setting(
        10,
        "PostgreSQL: how long a node's writer waits for a lock (the cluster-wide write lock, a wallet line or "
        "idempotency key another node's batch holds) before answering 503 `unavailable`.",
    )
    # Readiness (/readyz).
    writer_stall_seconds: int = setting(
        30,
        "`/readyz`: the writer counts as stalled when writes wait and no batch has ended for this long.",
    )
    readiness_timeout_seconds: int = setting(2, "`/readyz`: the database read must answer within this.")
    # Live wallet events (GET /v1/me/events).
    events_heartbeat_seconds: int = setting(
        15,
        "`GET /v1/me/events`: a comment line after this long without an event. Less than "
        "`WALLET_EVENTS_STREAM_MAX_SECONDS`.",
    )
    events_streams_per_client_max: int = setting(5, "Open event streams per wallet.")
    events_streams_max: int = setting(1000, "Open event streams in all.")
    events_write_timeout_seconds: int = setting(
        10,
        "A stream whose reader does not take a write for this long is ended.",
    )
    events_stream_max_seconds: int = setting(
        3600,
        "A stream lasts at most this long; the client reconnects with `Last-Event-ID`.",
    )
    events_batch_max: int = setting(200, "Events read from the log per query.")
    # Background jobs.
    hold_sweep_interval_seconds: int = setting(5, "How often expired holds are voided.")
    credit_run_interval_seconds: int = setting(
        3600,
        "How often the service checks whether this month's credit run is done; it also runs at each month's"
        " first midnight (WALLET_TIMEZONE), releasing the credits staged for the month.",
    )
    auto_credit_run: bool = setting(True, "Whether the service runs the monthly credit run by itself.")
    auto_settlement: bool = setting(True, "Whether the service settles providers by itself on the settlement days.")
    settlement_days: str = setting(
        "1,8,16,24",
        "Days of the month (organizer's time zone) on which every provider's unsettled lines made before that day "
        "are closed into a batch.",
    )
    settlement_min_amount: int = setting(
        0,
        "The smallest net, in cents, an automatic batch is made for; below it the lines wait for the next day (0: "
        "any non-zero net).",
        may_be_zero=True,
    )
    settlement_check_interval_seconds: int = setting(
        3600,
        "How often the service checks whether a settlement day's batches are made.",
    )
    receipt_interval_seconds: int = setting(
        10,
        "How often the service looks for SMS receipts not yet sent (by another process, or after a failure); a "
        "movement committed anywhere wakes it at once.",
    )
    receipt_batch_max: int = setting(100, "SMS receipts claimed for sending in one write.")
    receipt_sends_at_once: int = setting(
        10,
        "SMS receipts a process has with the gateway at once, each to another client (one client's receipts go "
        "one after another, in the order of their movements); also how many a crash may send twice.",
    )
    receipt_lease_seconds: int = setting(
        300,
        "A claimed SMS receipt not marked sent within this long (its sender died, or the gateway failed) is "
        "claimed again.",
    )
    receipt_attempts_max: int = setting(
        5, "Claims of one SMS receipt before it is given up (`abandoned_at`; logged, never sent late)."
    )
    # The organizer's usage report and time zone.
    usage_low_use_from_day: int = setting(
        20,
        "`GET /v1/reports/usage`: from this day of the month (organizer's time zone) on, or once the month is "
        "over, clients who have used little are flagged `low_use` (1–31).",
    )
    usage_low_use_percent: int = setting(
        50,
        "A client is `low_use` when the month's use (captures less refunds) is below this percentage of the "
        "month's budget, all lines together (1–100).",
    )
    timezone: str = setting(
        "Europe/Helsinki",
        "The organizer's time zone: what \"this month\" and an export's days mean.",
    )
    # Decisions on budgets (their documents: wallet/documents/decision.py).
    organizer_name: str = setting(
        "Hyvinvointialue / Välfärdsområdet",
        "The organizer's name at the top of every decision and statement document.",
    )
    decision_review_fi: str = setting(
        "Tähän päätökseen tyytymätön voi hakea siihen oikaisua. Oikaisuvaatimus on tehtävä kirjallisesti 30 päivän "
        "kuluessa päätöksen tiedoksisaannista. Tiedoksisaannin katsotaan tapahtuneen seitsemäntenä päivänä "
        "päätöksen lähettämisestä, jollei muuta näytetä. Oikaisuvaatimuksessa on ilmoitettava päätös, johon "
        "haetaan oikaisua, miltä osin ja millaista oikaisua vaaditaan sekä vaatimuksen perusteet. "
        "Oikaisuvaatimus osoitetaan järjestäjän sosiaalipalveluista vastaavalle toimielimelle.",
        "The instructions for asking for a review of a decision (oikaisuvaatimusohje), in Finnish.",
    )
    decision_review_sv: str = setting(
        "Den som är missnöjd med detta beslut kan begära omprövning. Begäran om omprövning ska göras skriftligen "
        "inom 30 dagar från delfåendet av beslutet. Delfåendet anses ha skett den sjunde dagen efter att beslutet "
        "sändes, om inte något annat visas. I begäran ska anges vilket beslut omprövning begärs i, till vilka delar "
        "och vilken ändring som yrkas samt grunderna för yrkandet. Begäran riktas till det organ hos anordnaren "
        "som ansvarar för socialtjänsten.",
        "The instructions for asking for a review of a decision (anvisning om begäran om omprövning), in Swedish.",
    )
    statement_document_rows_max: int = setting(
        1000,
        "The most charges and refunds a statement PDF lists one by one; past it the document says so (its totals "
        "are always whole).",
    )
    decision_notice_fi: str = setting(
        "Sinulle on uusi päätös henkilökohtaisesta budjetista. Näet sen lompakkosovelluksessa.",
        "The message (SMS) that tells a client a new decision is available, in Finnish: no amounts, no names.",
    )
    decision_notice_sv: str = setting(
        "Du har ett nytt beslut om personlig budget. Du ser det i plånboksappen.",
        "The message (SMS) that tells a client a new decision is available, in Swedish.",
    )
    statement_notice_fi: str = setting(
        "Tiliote kuukaudelta {month} on nyt luettavissa lompakkosovelluksessa.",
        "The message (SMS) at a month's end that its statement is ready, in Finnish (`{month}`: 1/2027).",
    )
    statement_notice_sv: str = setting(
        "Kontoutdraget för {month} finns nu i plånboksappen.",
        "The message (SMS) at a month's end that its statement is ready, in Swedish.",
    )
    notices_batch_max: int = setting(
        200, "Notices (SMS about decisions and statements) sent in one round of the sweep."
    )
    notice_sweep_interval_seconds: int = setting(
        60, "How often unsent notices are sent (and those that failed to send tried again)."
    )
    # The process.
    shutdown_timeout_seconds: int = setting(
        20,
        "On SIGTERM, how long requests in flight may take; then queued writes are finished and the process exits. "
        "Give the container's stop timeout more than this.",
    )
    event_loop: str = setting(
        "uvloop",
        "The HTTP processes' event loop: `uvloop` (libuv; less CPU a request) or `asyncio` (the standard "
        "library's selector loop). The writer process and the CLI run no such loop. `uvloop` needs the package (a "
        "dependency, not on Windows).",
    )
    log_format: str = setting("console", "`console` (readable) or `json` (one JSON object a line, for production).")
    log_level: str = setting("info", "`debug`, `info`, `warning` or `error`.")

    # OpenID Connect sign-in for the pages (wallet/auth/oidc.py): one set per audience, CLIENT (clients
    # and representatives, through an identification broker) and STAFF (the organizer's identity provider).
    public_url: str = setting(
        "http://127.0.0.1:8080",
        "The service's address as browsers reach it: the base of the sign-in redirect URIs "
        "(`{WALLET_PUBLIC_URL}/v1/auth/{client|staff}/callback`). `https://` makes the session cookie `Secure`.",
    )
    oidc_client_issuer: str = setting(
        "",
        "The identification broker's issuer (discovery at `{issuer}/.well-known/openid-configuration`). Empty: "
        "client sign-in through the broker is off.",
        may_be_empty=True,
    )
    oidc_client_client_id: str = setting("", "Our client id at the broker.", may_be_empty=True)
    oidc_client_client_secret: str = setting(
        "",
        "A client secret at the broker (`client_secret_basic`); brokers of the Finnish Trust Network ask for "
        "`WALLET_OIDC_CLIENT_PRIVATE_KEY` instead.",
        may_be_empty=True,
    )
    oidc_client_private_key: str = setting(
        "",
        "A PEM path: the private key that signs our `private_key_jwt` client assertions (RSA or EC); its public "
        "half is published at `/v1/auth/client/jwks`.",
        may_be_empty=True,
    )
    oidc_client_encryption_key: str = setting(
        "",
        "A PEM path: the RSA private key the broker encrypts ID tokens to (published at `/v1/auth/client/jwks`). "
        "Empty: only signed ID tokens are accepted.",
        may_be_empty=True,
    )
    oidc_client_scopes: str = setting("openid profile", "The scopes asked of the broker (space-separated).")
    oidc_client_acr_values: str = setting(
        "",
        "`acr_values` sent to the broker (space-separated), e.g. `http://ftn.ficora.fi/2017/loa2`; empty: none.",
        may_be_empty=True,
    )
    oidc_client_algorithms: str = setting(
        "RS256 ES256 PS256",
        "The ID token signature algorithms accepted from the broker (space-separated; `none` never is).",
    )
    oidc_client_national_id_claim: str = setting("hetu", "The ID token claim holding the national identity number.")
    oidc_staff_issuer: str = setting(
        "",
        "The organizer's identity provider's issuer (discovery as above). Empty: staff sign-in is off.",
        may_be_empty=True,
    )
    oidc_staff_client_id: str = setting("", "Our client id at the staff identity provider.", may_be_empty=True)
    oidc_staff_client_secret: str = setting(
        "", "A client secret at the staff identity provider (`client_secret_basic`).", may_be_empty=True
    )
    oidc_staff_private_key: str = setting(
        "",
        "A PEM path for `private_key_jwt` at the staff identity provider (published at `/v1/auth/staff/jwks`).",
        may_be_empty=True,
    )
    oidc_staff_encryption_key: str = setting(
        "", "A PEM path: the RSA key staff ID tokens are encrypted to; empty: signed only.", may_be_empty=True
    )
    oidc_staff_scopes: str = setting("openid profile", "The scopes asked of the staff identity provider.")
    oidc_staff_acr_values: str = setting("", "`acr_values` sent to the staff identity provider.", may_be_empty=True)
    oidc_staff_algorithms: str = setting(
        "RS256 ES256 PS256", "The ID token signature algorithms accepted from the staff identity provider."
    )
    oidc_staff_groups_claim: str = setting("groups", "The ID token claim listing a staff member's groups.")
    oidc_staff_admin_group: str = setting("wallet-admin", "The group whose members sign in as `admin`.")
    oidc_staff_finance_group: str = setting("wallet-finance", "The group whose members sign in as `finance`.")
    oidc_given_name_claim: str = setting("given_name", "The ID token claim holding a person's given name.")
    oidc_family_name_claim: str = setting("family_name", "The ID token claim holding a person's family name.")
    oidc_http_timeout_seconds: int = setting(10, "Each request to an identity provider (discovery, keys, token).")
    oidc_response_max_bytes: int = setting(
        1_048_576, "The largest answer read from an identity provider (discovery, keys, token); larger is refused."
    )
    oidc_metadata_ttl_seconds: int = setting(
        3600, "An identity provider's discovery document and keys are fetched again after this."
    )
    oidc_keys_refresh_min_seconds: int = setting(
        10,
        "An ID token signed by an unknown key fetches the provider's keys again, at most once in this interval "
        "(a flood of forged tokens cannot make us flood the provider).",
    )
    oidc_login_ttl_seconds: int = setting(600, "How long a sign-in begun at an identity provider may take.")
    oidc_clock_skew_seconds: int = setting(60, "The leeway on an ID token's `exp` and `iat`.")
    session_idle_seconds: int = setting(900, "A page session unused for this long has ended.")
    session_absolute_seconds: int = setting(28_800, "A page session ends this long after sign-in, used or not.")
    sms_login: bool = setting(
        True,
        "Whether clients and representatives may sign in with a phone and an SMS code (`POST /v1/login`); SMS "
        "codes to confirm charges stay either way.",
    )
    desk_query_max_length: int = setting(
        100, "`GET /v1/clients?query=` and `GET /v1/providers?query=`: the longest query (characters)."
    )
    admin_token_form: bool = setting(
        False,
        "Development only: `/admin` also offers the form to paste a token minted with `wallet token`.",
    )

    @property
    def uses_postgres(self) -> bool:
        """``WALLET_DB`` is a PostgreSQL DSN rather than a SQLite file path."""
        return is_postgres(self.db)

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

    @property
    def payer_configured(self) -> bool:
        return bool(self.payer_name and self.payer_iban and self.payer_bic)

    def _validate_payer(self) -> None:
        given = [bool(value) for value in (self.payer_name, self.payer_iban, self.payer_bic)]
        if not any(given):
            return
        if not all(given):
            raise SettingsError("WALLET_PAYER_NAME, WALLET_PAYER_IBAN and WALLET_PAYER_BIC go together: set all three")
        if not stdnum_iban.is_valid(self.payer_iban) or stdnum_iban.compact(self.payer_iban) != self.payer_iban:
            raise SettingsError(f"WALLET_PAYER_IBAN must be a valid IBAN, compact (no spaces), not {self.payer_iban!r}")
        if not re.fullmatch(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?", self.payer_bic):
            raise SettingsError(f"WALLET_PAYER_BIC must be a BIC of 8 or 11 characters, not {self.payer_bic!r}")
        if len(self.payer_name) > 70 or not self.payer_name.isprintable() or not self.payer_name.strip():
            raise SettingsError("WALLET_PAYER_NAME must be printable text of at most 70 characters")

    def _validate_oidc(self) -> None:
        for audience in ("client", "staff"):
            prefix = f"WALLET_OIDC_{audience.upper()}"
            issuer = getattr(self, f"oidc_{audience}_issuer")
            if not issuer:
                continue
            if not issuer.startswith(("https://", "http://")):
                raise SettingsError(f"{prefix}_ISSUER must be an http(s) URL, not {issuer!r}")
            if not getattr(self, f"oidc_{audience}_client_id"):
                raise SettingsError(f"{prefix}_ISSUER needs {prefix}_CLIENT_ID")
            secret, key = getattr(self, f"oidc_{audience}_client_secret"), getattr(self, f"oidc_{audience}_private_key")
            if bool(secret) == bool(key):
                raise SettingsError(f"{prefix}_ISSUER needs one of {prefix}_CLIENT_SECRET and {prefix}_PRIVATE_KEY")
            for name in ("private_key", "encryption_key"):
                path = getattr(self, f"oidc_{audience}_{name}")
                if path and not Path(path).is_file():
                    raise SettingsError(f"{prefix}_{name.upper()}: no such file {path!r}")
            if "none" in getattr(self, f"oidc_{audience}_algorithms").split():
                raise SettingsError(f"{prefix}_ALGORITHMS must not admit unsigned ID tokens (none)")
        if not self.public_url.startswith(("https://", "http://")) or self.public_url.endswith("/"):
            raise SettingsError(
                f"WALLET_PUBLIC_URL must be an http(s) URL without a trailing slash, not {self.public_url!r}"
            )
        if self.session_idle_seconds > self.session_absolute_seconds:
            raise SettingsError("WALLET_SESSION_IDLE_SECONDS must not exceed WALLET_SESSION_ABSOLUTE_SECONDS")

    @staticmethod
    def from_env(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for declared in fields(Settings):
            name = f"WALLET_{declared.name.upper()}"
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            values[declared.name] = _convert(name, raw, declared.default)
        values.update(overrides)
        settings = Settings(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        for declared in fields(self):
            value, variable = getattr(self, declared.name), f"WALLET_{declared.name.upper()}"
            if type(value) is not type(declared.default):
                raise SettingsError(f"{variable} must be a {type(declared.default).__name__}, not {value!r}")
            if isinstance(value, int) and not isinstance(value, bool) and declared.metadata["may_be_zero"]:
                if value < 0:
                    raise SettingsError(f"{variable} must not be negative")
            elif isinstance(value, int) and not isinstance(value, bool) and value <= 0:
                raise SettingsError(f"{variable} must be a positive integer")  # every number is a limit
            if isinstance(value, str) and not declared.metadata["may_be_empty"] and not value.strip():
                raise SettingsError(f"{variable} must not be empty")
            if isinstance(value, str) and declared.metadata["may_be_empty"] and value and not value.strip():
                raise SettingsError(f"{variable} must be empty or a value, not only blanks")
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
        if self.max_request_line_bytes == self.max_header_field_bytes:
            raise SettingsError("WALLET_MAX_REQUEST_LINE_BYTES must differ from WALLET_MAX_HEADER_FIELD_BYTES")
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
        self._validate_payer()
        self._validate_oidc()
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


@dataclass(frozen=True)
class Setting:
    """One declared setting, as ``wallet --help`` and the docs show it."""

    name: str
    default: object
    help: str

    @property
    def variable(self) -> str:
        return f"WALLET_{self.name.upper()}"

    @property
    def shown_default(self) -> str:
        """The default as the environment would spell it: ``true``, ``86400``, or ``(none)`` when empty."""
        if isinstance(self.default, bool):
            return str(self.default).lower()
        return str(self.default) if self.default != "" else "(none)"


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(declared.name, declared.default, declared.metadata["help"]) for declared in fields(Settings)
)


def describe() -> list[tuple[str, object]]:
    """Every variable with its default, for ``wallet --help``."""
    return [(declared.variable, declared.default) for declared in SETTINGS]


# The generated table sits between these two lines in README.md and docs/configuration.md.
TABLE_BEGINS = "<!-- settings table: generated from wallet/settings.py by `python -m wallet.settings --update` -->"
TABLE_ENDS = "<!-- end of the settings table -->"
DOCUMENTS = ("README.md", "docs/configuration.md")


def markdown_table() -> str:
    """Every variable with its default and help, one row each, as a Markdown table."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for declared in SETTINGS:
        default = declared.shown_default if declared.default == "" else f"`{declared.shown_default}`"
        meaning = declared.help.replace("|", r"\|")
        rows.append(f"| `{declared.variable}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


def with_table(document: str) -> str:
    """``document`` with the text between its table markers replaced by the generated table."""
    start, end = document.find(TABLE_BEGINS), document.find(TABLE_ENDS)
    if start < 0 or end < start:
        raise ValueError(f"the document has no {TABLE_BEGINS!r} ... {TABLE_ENDS!r} markers")
    return document[: start + len(TABLE_BEGINS)] + "\n" + markdown_table() + document[end:]


def main(arguments: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wallet.settings", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--markdown", action="store_true", help="print the settings table")
    action.add_argument("--update", action="store_true", help=f"rewrite the table in {' and '.join(DOCUMENTS)}")
    options = parser.parse_args(arguments)
    if options.markdown:
        sys.stdout.write(markdown_table())
        return 0
    root = Path(__file__).resolve().parent.parent
    for name in DOCUMENTS:
        path = root / name
        path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
