"""Sending SMS: a port with a file-outbox adapter for development and tests.

The outbox appends one JSON line per message, ``{"to": "+358...", "text": "..."}``. A real
operator's gateway is another ``SmsSender``.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Protocol


class SmsSender(Protocol):
    async def send(self, to: str, text: str) -> None: ...


class OutboxSender:
    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._lock = asyncio.Lock()

    async def send(self, to: str, text: str) -> None:
        line = json.dumps({"to": to, "text": text}, ensure_ascii=False) + "\n"
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, line.encode())
        finally:
            os.close(descriptor)
