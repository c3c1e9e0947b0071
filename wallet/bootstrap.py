"""Wiring: build the service from settings. Used by the HTTP app and by the CLI alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from wallet.auth.crypto import PhoneCipher
from wallet.auth.hashing import Hasher
from wallet.auth.keys import (
    HMAC_SECRET_FILENAME,
    PHONE_KEY_FILENAME,
    load_or_create_secret,
    load_or_create_signing_key,
    load_verification_key,
)
from wallet.auth.tokens import TokenService, key_id
from wallet.clock import Clock, SystemClock
from wallet.service import WalletService
from wallet.settings import Settings
from wallet.sms import OutboxSender, SmsSender
from wallet.storage.sql.storage import SqlStorage
from wallet.storage.sqlite import SqliteStorage


def token_service(settings: Settings) -> TokenService:
    signing_key = load_or_create_signing_key(settings.signing_key)
    earlier = [load_verification_key(path) for path in settings.verification_key_paths]
    return TokenService(
        signing_key,
        settings.token_issuer,
        settings.token_audience,
        settings.token_cache_entries,
        verification_keys={key_id(key): key for key in earlier},
    )


def open_storage(settings: Settings, writer_socket: str | None = None) -> SqlStorage:
    """The adapter ``WALLET_DB`` names: a PostgreSQL DSN, or else a SQLite file (the default)."""
    if settings.uses_postgres:
        from wallet.storage.postgres import PostgresStorage

        return PostgresStorage(
            settings.db,
            queue_max=settings.writer_queue_max,
            batch_max=settings.writer_batch_max,
            readers=settings.reader_connections,
            retry_attempts=settings.postgres_retry_attempts,
            lock_timeout_seconds=settings.postgres_lock_timeout_seconds,
            side_by_side=settings.postgres_side_by_side,
            writer_process=settings.writer_process,
            log_format=settings.log_format,
            log_level=settings.log_level,
        )
    return SqliteStorage(
        settings.db,
        queue_max=settings.writer_queue_max,
        batch_max=settings.writer_batch_max,
        readers=settings.reader_connections,
        writer_process=settings.writer_process,
        log_format=settings.log_format,
        log_level=settings.log_level,
        writer_socket=writer_socket,
    )


@asynccontextmanager
async def open_service(
    settings: Settings, *, clock: Clock | None = None, sms: SmsSender | None = None, writer_socket: str | None = None
) -> AsyncIterator[WalletService]:
    hasher = Hasher(load_or_create_secret(settings.secret_dir, HMAC_SECRET_FILENAME))
    phones = PhoneCipher(load_or_create_secret(settings.secret_dir, PHONE_KEY_FILENAME))
    storage = open_storage(settings, writer_socket)
    await storage.open()
    try:
        yield WalletService(
            settings,
            storage,
            token_service(settings),
            hasher,
            phones,
            sms or OutboxSender(settings.sms_outbox),
            clock or SystemClock(),
        )
    finally:
        await storage.close()  # answers every queued write before closing
