"""An in-memory token bucket per key: throttles a storm of attempts from one provider.

Per process: with several nodes each node throttles its own share.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from wallet.ledger.errors import RateLimited

MAX_TRACKED_KEYS = 100_000


class Throttle:
    def __init__(self, rate_per_second: int, burst: int, what: str) -> None:
        self._rate = float(rate_per_second)
        self._burst = float(burst)
        self._what = what
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, at)

    def take(self, key: str, now_seconds: float) -> None:
        tokens, at = self._buckets.pop(key, (self._burst, now_seconds))
        tokens = min(self._burst, tokens + max(now_seconds - at, 0.0) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now_seconds)
            raise RateLimited(
                f"too many {self._what}; slow down",
                retry_after_seconds=max(math.ceil((1.0 - tokens) / self._rate), 1),
            )
        self._buckets[key] = (tokens - 1.0, now_seconds)
        if len(self._buckets) > MAX_TRACKED_KEYS:
            self._buckets.popitem(last=False)
