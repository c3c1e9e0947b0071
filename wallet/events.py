"""Live wallet events in one process: who is listening, and waking them after a commit.

The events themselves live in the storage's event log, written in the same transaction as the
change they describe. The hub carries only a wake-up: "client X has events up to id N". Each open
stream keeps a flag, not a queue: a wake-up that finds the flag already set merges into it, so a
publisher never waits and never allocates, however slow a reader is. A woken stream reads the log
above its last sent id, so nothing is lost, repeated or reordered; a stream that cannot keep up
only falls behind in the log (and is cut off by its write timeout), never the writer.

    hub = EventHub(streams_per_client_max=5, streams_max=1000)
    subscription = hub.subscribe("cl_1")     # RateLimited past a limit
    storage.watch_wallet_events(hub.publish) # after each commit, on the event loop
    woken = await subscription.wait(15)      # False on the timeout: time for a heartbeat
    subscription.close()
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Self

from wallet.ledger.errors import RateLimited, Unavailable

STREAM_LIMIT_RETRY_SECONDS = 5


class EventSubscription:
    """One open stream of one client's events."""

    def __init__(self, hub: EventHub, client_id: str) -> None:
        self.client_id = client_id
        self._hub = hub
        self._wake = asyncio.Event()
        self.closed = False

    def notify(self) -> None:
        self._wake.set()

    async def wait(self, timeout_seconds: float) -> bool:
        """Until new events may be in the log (True), the hub closes (True), or the timeout (False)."""
        if not self._wake.is_set() and not self.closed:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout_seconds)
            except TimeoutError:
                return False
        self._wake.clear()
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._hub._remove(self)
        self._wake.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class EventHub:
    def __init__(self, streams_per_client_max: int, streams_max: int) -> None:
        self._streams_per_client_max = streams_per_client_max
        self._streams_max = streams_max
        self._by_client: dict[str, set[EventSubscription]] = {}
        self._count = 0
        self._closed = False

    @property
    def open_streams(self) -> int:
        return self._count

    def subscribe(self, client_id: str) -> EventSubscription:
        if self._closed:
            raise Unavailable("the service is shutting down", retry_after_seconds=1)
        streams = self._by_client.setdefault(client_id, set())
        if len(streams) >= self._streams_per_client_max:
            raise RateLimited(
                f"this wallet has {len(streams)} event streams open, the most allowed; close one first",
                retry_after_seconds=STREAM_LIMIT_RETRY_SECONDS,
                streams_max=self._streams_per_client_max,
            )
        if self._count >= self._streams_max:
            raise RateLimited(
                "too many event streams open; retry shortly", retry_after_seconds=STREAM_LIMIT_RETRY_SECONDS
            )
        subscription = EventSubscription(self, client_id)
        streams.add(subscription)
        self._count += 1
        return subscription

    def publish(self, newest: Mapping[str, int]) -> None:
        """Wake the streams of every client named. Never blocks."""
        for client_id in newest:
            for subscription in self._by_client.get(client_id, ()):
                subscription.notify()

    def close(self) -> None:
        """Refuse new streams and end every open one (at shutdown)."""
        self._closed = True
        for streams in list(self._by_client.values()):
            for subscription in list(streams):
                subscription.close()

    def _remove(self, subscription: EventSubscription) -> None:
        streams = self._by_client.get(subscription.client_id)
        if streams is not None and subscription in streams:
            streams.discard(subscription)
            self._count -= 1
            if not streams:
                del self._by_client[subscription.client_id]
