"""asyncpg, for what runs on the event loop: the pool of readers, the LISTEN connection, migrations.

Reads stay on asyncpg: they are awaited on the loop, many at once, and asyncpg's pool and its
LISTEN support serve that well; the writer's thread uses psycopg's synchronous API instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from wallet.storage.postgres.connection import integral, require_storable
from wallet.storage.postgres.dialect import render_numbered


async def prepare_connection(connection: asyncpg.Connection) -> None:
    """What every asyncpg connection needs before use (the pool's ``init`` hook, too)."""
    await connection.set_type_codec("numeric", encoder=str, decoder=integral, schema="pg_catalog", format="text")


def connect_arguments(
    dsn: str, *, lock_timeout_seconds: int | None = None, application_name: str = "wallet"
) -> dict[str, Any]:
    settings: dict[str, str] = {"application_name": application_name, "timezone": "UTC"}
    if lock_timeout_seconds is not None:
        settings["lock_timeout"] = f"{lock_timeout_seconds}s"
    return {"dsn": dsn, "server_settings": settings}


class PostgresReader:
    """A pooled connection inside one read-only snapshot, as the shared reads use it."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def execute_fetchall(self, sql: str, parameters: Iterable[Any] | None = None) -> list[asyncpg.Record]:
        values = tuple(parameters) if parameters is not None else ()
        require_storable(values)
        return list(await self._connection.fetch(render_numbered(sql), *values))
