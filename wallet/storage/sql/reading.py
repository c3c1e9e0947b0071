"""What the read queries need of a connection: an aiosqlite reader thread, or the event loop's own
connection (``adapter._LoopReader``) answering at once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from wallet.storage.sql.connection import Row


class Reader(Protocol):
    async def execute_fetchall(self, sql: str, parameters: Iterable[Any] | None = None) -> Iterable[Row]: ...
